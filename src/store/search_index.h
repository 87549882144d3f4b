#pragma once
// SearchIndex: the search index of one session's bodies, in a file of its own next to the
// session (<session>.sqlite-search, WAL, 0600), written by one thread (the store's indexer) with
// its own connections, so that its transactions never take the session file's write lock and
// run on the other core beside the row writer. It is derived data: a missing or unreadable file,
// or one that belongs to another session file, is rebuilt from scratch (with a log line).
//
// The index file:
//   fts   FTS5 (trigram, case-insensitive, no column sizes, 16-way merges) over the decoded text
//         bodies (the first 64 KiB of each side; one document per flow, rowid = seq).
//   meta  token: the session's meta 'search_token' (whose index this is); indexed: the cursor;
//         pending_done: the highest fts_pending id indexed. Both are committed with the fts rows
//         they describe, in one transaction.
// Invariant: every body with seq <= indexed is indexed, except the flows that fts_pending (in
// the session file) lists with id > pending_done.
//
// The hand-off with the writer (SessionDb::Write, IndexHandoff), and the race it closes. The
// writer owns a claim: after each commit it raises it to the highest seq it has committed bodies
// for, and hands it over. The indexer reads the claim BEFORE it takes its read snapshot of the
// session, and moves its cursor over bodies with seq <= that claim only: every body committed by
// then is in its snapshot. A body the writer commits after the snapshot at a seq <= the claim
// (a flow that finished late, a flow recorded again) was written with the claim the writer held,
// which was at least as high: the writer listed it in fts_pending (ids AUTOINCREMENT, never
// reused), and the indexer takes it from there in a later slice even though its cursor passed
// the seq. The indexer never writes the session file: the writer deletes the pending rows up to
// the pending_done the indexer last committed, in its own batches. Indexing a seq twice (listed
// and also in the cursor's range) is harmless: INSERT OR REPLACE by rowid.
//
// Crash safety: each file's commits are atomic (WAL). After kill -9, the index holds what its last
// commit says; bodies past its cursor and pending rows past pending_done are indexed after the
// restart (a body: search takes them as candidates meanwhile), and the writer never deleted a
// pending row the index had not committed.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "store/sqlite.h"

namespace mitmd::store {

// The decoded text of a recorded body for the search index (empty for binary bodies): at most
// 64 KiB, cut on a character boundary.
std::string IndexText(std::string_view content, std::string_view codings);

class SearchIndex {
 public:
  // <session>.sqlite-search
  static std::string PathFor(std::string_view session_path) { return std::string(session_path) + "-search"; }

  // Opens the index of the (schema 8) session at |session_path|, creating or rebuilding it when
  // missing, unreadable or another session's (|log|, not owned, may be null, hears why).
  static Result<std::unique_ptr<SearchIndex>> Open(const std::string& session_path, Logger* log);

  // One slice: read from a snapshot of the session (Read), then committed to the index (Commit).
  // Apart so a test can put a writer's commit between the two.
  struct Slice {
    std::vector<std::pair<int64_t, std::string>> docs;  // seq -> text (empty: nothing to index)
    size_t flows = 0;          // flows taken (pending rows and flows past the cursor)
    uint64_t cursor = 0;       // the cursor once committed
    int64_t pending_done = 0;  // the pending id once committed
  };
  // Takes the listed flows (the oldest first), then the bodies in (cursor, |claim|], up to
  // |max_flows| flows, stopping after the flow whose text takes the slice to |max_text| bytes.
  Result<Slice> Read(uint64_t claim, size_t max_flows, size_t max_text = SIZE_MAX);
  Status Commit(const Slice& slice);
  // Read and Commit. Returns the flows taken: 0 when nothing waits up to |claim|.
  Result<size_t> IndexSlice(uint64_t claim, size_t max_flows, size_t max_text = SIZE_MAX);

  uint64_t cursor() const { return cursor_; }
  int64_t pending_done() const { return pending_done_; }
  // How many flows wait up to |claim| (a count over the range: for tests and the benchmark).
  Result<int64_t> Waiting(uint64_t claim);

 private:
  SearchIndex(std::string session_path, SqlitePtr session, SqlitePtr index)
      : session_path_(std::move(session_path)), session_(std::move(session)), index_(std::move(index)) {}
  // Empties the index and records |token| (rebuilds start at cursor 0).
  Status Reset(const std::string& token);
  Status Prepare();
  // The text of flow |seq|'s bodies, each side decoded with its listed Content-Encoding.
  Result<std::string> FlowText(int64_t seq, std::string_view req_ce, std::string_view res_ce);
  // A body written before bodies.ce existed (ce_unknown_upto): its Content-Encoding from the
  // flow's JSON.
  std::string LegacyCodings(int64_t seq, int side);

  std::string session_path_;
  SqlitePtr session_;  // read-only: the bodies and fts_pending
  SqlitePtr index_;    // the index file
  uint64_t cursor_ = 0;
  int64_t pending_done_ = 0;
  int64_t ce_unknown_upto_ = 0;
  Stmt pending_, bodies_, range_, stage_, flush_, clear_, set_meta_, json_;
};

}  // namespace mitmd::store
