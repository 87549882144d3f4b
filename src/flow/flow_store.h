#pragma once
// FlowStore: where flows go. Implements FlowSink for the proxy's workers and keeps the session:
// a SQLite database (store/session_db.h) that is the viewer's index, and the JSONL session log
// for `tail -f | jq` users.
//
// Workers never wait on disk: Record and Publish assign the flow its seq, tell the subscribers
// (the viewer's live stream) and enqueue it. One writer thread takes the queue every
// batch_interval (or as soon as batch_max flows wait) and writes it in one transaction, plus the
// done flows' lines to the JSONL log. A running flow has at most one pending write: a newer
// snapshot replaces the queued one. When the queue is full (max_queue) a flow is dropped from
// the store (the viewer still saw it), counted, and the writer says so in the log.
//
// The bodies' search index is another file, filled by another thread, "store-indexer"
// (store/search_index.h), so it runs on the other core beside the writer and never takes the
// session file's write lock. After each commit the writer hands it a claim (the highest seq it
// has committed bodies for); the indexer wakes when the claim is 2,000 seqs past its cursor and
// indexes full slices (2,000 flows or 256 KiB of text: each slice is a segment FTS5 merges
// later), and otherwise every second, when it indexes whatever waits down to the last flow (the
// flows the writer listed too). Under a load the index lags by about a slice; a body: search
// takes what it has not indexed as candidates, so it never misses a recorded flow.
//
// Teardown (the destructor, one path): the writer writes what is queued and stops; then the
// indexer finishes the slice under way and stops, leaving the rest to the next start (its
// cursor and the pending list are in the files). A backlog can be a million flows after an
// upgrade (seconds to tens of seconds of indexing): a quit must not wait for it, and nothing is
// lost.
//
// What kill -9 can lose: the flows enqueued since the last committed batch, i.e. at most
// batch_interval plus the time one batch takes to write (the indexer no longer holds a batch up).
// The index loses at most its slice under way, which the next start indexes again. SQLite's WAL
// makes each commit atomic and durable against a process crash; synchronous=NORMAL leaves only
// an OS crash able to lose the newest commits.

#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "flow/flow.h"
#include "flow/flow_sink.h"
#include "store/jsonl_log.h"
#include "store/search_index.h"
#include "store/session_db.h"
#include "store/session_lock.h"

namespace mitmd {

struct FlowStoreOptions {
  std::string db_path;     // the session database; created when missing
  std::string jsonl_path;  // the JSONL log ("" for none)
  // A JSONL log to import in the background when the database is new (the log of a mitmd from
  // before the session store), read in bounded chunks.
  std::string migrate_from;
  size_t max_queue = 200'000;
  // Body copies waiting for the writer. Past this, queued flows are kept without their body
  // copies (marked truncated, with a note) instead of growing memory while the writer is behind.
  size_t max_queue_bytes = 64u << 20;
  std::chrono::milliseconds batch_interval{50};
  size_t batch_max = 2'000;
  Logger* log = nullptr;  // not owned; may be null
};

class FlowStore : public FlowSink {
 public:
  // Fails when another process records into the same session (store/session_lock.h).
  static Result<std::unique_ptr<FlowStore>> Open(FlowStoreOptions options);
  // Writes what is queued, stops the writer, then the indexer (after its slice under way).
  ~FlowStore() override;

  void Record(std::shared_ptr<const Flow> flow) override;
  void Publish(std::shared_ptr<const Flow> snapshot) override;

  // Called on the recording thread after each Record and Publish, with the flow's seq (a running
  // flow keeps its seq when it completes); the flow's state says which. Returns a token.
  using Listener = std::function<void(const std::shared_ptr<const Flow>&, uint64_t seq)>;
  uint64_t Subscribe(Listener listener);
  void Unsubscribe(uint64_t token);

  // Adds flows read from a file to the session (not the JSONL log), each with |source|; a flow
  // whose id or content is already in the session is skipped. |stable_ids|: the file's ids are
  // the flows' own (JSONL), so they take part in recognising a flow; HAR readers make them up.
  // Returns when they are written: how many were added.
  Result<size_t> Import(std::vector<Flow> flows, const std::string& source, bool stable_ids = false);

  // Waits until everything enqueued before the call is written.
  void Flush();

  // A recorded or published flow whose row is not committed yet (queued, or in the batch being
  // written), with its seq; nullopt when there is none (committed, dropped, or never seen). The
  // stream announces flows before their rows exist: the viewer answers those from here. Never
  // waits for the writer.
  struct Queued {
    std::shared_ptr<const Flow> flow;
    uint64_t seq = 0;
  };
  std::optional<Queued> FindQueued(const std::string& id) const;

  // Has the writer delete what the session's Clear hid (SessionDb::Purge), soon, off the
  // caller's thread.
  void PurgeSoon();

  // A new connection to the session database for another thread (the viewer).
  Result<std::unique_ptr<store::SessionDb>> OpenReader() const;

  struct Stats {
    uint64_t recorded = 0;     // Record calls
    uint64_t written = 0;      // rows written by the writer
    uint64_t dropped = 0;      // flows the full queue turned away
    uint64_t bodies_shed = 0;  // flows kept without body copies: the queue's bytes were full
    size_t queued = 0;
    std::string log_error;     // the JSONL log's latest failure, "" when fine
    std::string db_error;      // the database's latest failure, "" when fine
    bool migrating = false;    // a background import of an old JSONL log is running
    // The search index: the claim handed to the indexer minus its cursor (seqs not indexed
    // yet), and whether anything waits (that lag, or flows the writer listed that it has not
    // taken; an Import's own connection lists its flows too, which the indexer takes within a
    // second but this does not count).
    uint64_t index_lag = 0;
    bool index_behind = false;
  };
  Stats stats() const;
  uint64_t recorded_count() const;
  uint64_t last_seq() const;
  // CPU time the writer and the indexer threads have used so far, seconds (per-thread clocks: the
  // benchmark's figures).
  std::pair<double, double> ThreadCpuSeconds() const;
  const std::string& db_path() const { return options_.db_path; }
  const std::string& jsonl_path() const { return options_.jsonl_path; }

 private:
  using ListenerList = std::vector<std::pair<uint64_t, Listener>>;
  struct Migration;

  explicit FlowStore(FlowStoreOptions options);
  // Queues |put|, coalescing with a queued write of the same live flow. Returns false when full.
  bool Enqueue(store::FlowPut put);
  void Notify(const std::shared_ptr<const Flow>& flow, uint64_t seq);
  void WriterLoop();
  void WriteBatch(std::vector<store::FlowPut>& batch);
  // The writer's hand-off after a commit: the new claim, and a wake-up when a slice waits.
  void HandClaim();
  void IndexerLoop();
  // Imports the next chunk of the old log; false when the migration is over.
  bool MigrateChunk();
  void LogError(std::string_view what, const std::string& message);

  FlowStoreOptions options_;
  std::optional<store::SessionLock> lock_;     // this process writes the session; released last
  std::unique_ptr<store::SessionDb> db_;       // the writer thread's connection
  std::unique_ptr<store::SearchIndex> index_;  // the indexer thread's connections
  std::unique_ptr<store::JsonlLog> jsonl_;     // writer thread only
  std::unique_ptr<Migration> migration_;       // writer thread only
  std::string log_piece_;                      // writer thread only: lines for the JSONL log

  mutable std::mutex mu_;
  std::condition_variable wake_;   // the writer: work to do
  std::condition_variable done_;   // Flush: a batch was written
  std::vector<store::FlowPut> queue_;
  size_t queued_bytes_ = 0;  // body copies held by queue_
  std::unordered_map<std::string, size_t> queued_index_;  // id -> position in queue_ (upserts)
  // The batch the writer is writing, until it is committed: the writer reads it without mu_,
  // and changes only the entries' json; its size and flows change under mu_ only.
  std::vector<store::FlowPut> writing_;
  std::unordered_map<std::string, size_t> writing_index_;  // id -> position in writing_
  std::unordered_map<std::string, uint64_t> live_seq_;    // running flows' seqs
  uint64_t next_seq_ = 1;
  // The hand-off to the indexer (store/search_index.h). handoff_ is the writer's; the atomics
  // cross threads: the claim (writer -> indexer, stored after the commit it covers), the last
  // pending id listed (writer), the cursor and the pending id indexed (indexer -> writer, which
  // prunes fts_pending up to it).
  store::IndexHandoff handoff_;
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> listed_{0};
  std::atomic<uint64_t> indexed_{0};
  std::atomic<int64_t> pending_done_{0};
  std::condition_variable index_wake_;  // the indexer: a slice waits, or stop (under mu_)
  bool index_stop_ = false;
  uint64_t passes_started_ = 0;  // writer passes that took the queue
  uint64_t passes_done_ = 0;     // the last pass whose writes are committed
  int flush_waiters_ = 0;
  bool purge_ = false;
  bool stop_ = false;
  Stats stats_;
  uint64_t dropped_reported_ = 0;
  uint64_t shed_reported_ = 0;
  uint64_t next_token_ = 1;
  std::shared_ptr<const ListenerList> listeners_ = std::make_shared<ListenerList>();
  std::thread writer_;
  std::thread indexer_;
};

}  // namespace mitmd
