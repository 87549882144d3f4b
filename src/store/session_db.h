#pragma once
// SessionDb: one session's flows in SQLite (<confdir>/sessions/<NAME>.sqlite, WAL).
//
// Schema version 7 (the "meta" table holds "schema"; Open migrates explicitly, step by step, and
// refuses a file from a newer mitmd; a new file gets 8 KiB pages):
//   flows   one row per flow: the FlowRow columns the list shows, sorts and filters on, what the
//           user added (marked, comment), where it came from (source, a content hash for
//           imports), rhost (the host reversed, for host:). Rows written before schema 5 also
//           hold the flow's JSON (json); newer ones have '' there. Indexes: id (unique), hash;
//           files created before schema 7 also keep theirs on rhost, before schema 5 on status
//           and method (their rows are wide, and a scan of them is not cheap).
//   flow_json  seq -> the flow's JSON without body contents (schema 5 on), out of the list's
//           table so that a scan of it reads narrow rows.
//   bodies  (seq, side 0 request | 1 response) -> the recorded bytes, stored once, and their
//           Content-Encoding (ce, schema 7; what indexing the text needs to decode them).
//   fts     FTS5 (trigram, case-insensitive) over the decoded text bodies (the first 64 KiB of
//           each), rowid = seq, for body: filters; the URL columns answer the rest. Merges 16
//           segments a level (schema 6); a new file's keeps no column sizes.
//   Pending text: Write commits a flow's row and bodies at once; IndexPending indexes the text
//           later, when the writer has time. What waits is every body with seq > meta
//           'indexed' (a cursor, schema 7), plus the flows fts_pending lists (seq, each side's
//           Content-Encoding): those recorded at a seq the cursor had passed (a flow live
//           while later ones were indexed, or recorded again), and those a file upgraded from
//           schema 4-6 had pending. A body: filter takes the flows fts matches plus every
//           pending one, and the filter itself decides on those.
//   meta    schema, created; floor (flows with seq <= floor are cleared), prev_floor and
//           clear_token (for Undo), purged (the floor up to which rows are deleted).
// A connection is confined to one thread. One connection writes flows (the store's writer
// thread); the viewer reads through its own and makes the user's small edits (mark, comment,
// delete, clear) there, waiting at most busy_timeout for the writer's short transactions.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "flow/flow.h"
#include "store/flow_row.h"
#include "store/sqlite.h"

namespace mitmd::store {

inline constexpr int kSchemaVersion = 7;

// One flow to write.
struct FlowPut {
  enum class Mode {
    kUpsert,  // a live snapshot or a recorded flow: insert, or update the row of the same id
              // unless it already holds a higher revision
    kImport,  // from a file: skipped when its id or content hash is already in the session
  };
  Mode mode = Mode::kUpsert;
  uint64_t seq = 0;
  std::shared_ptr<const Flow> flow;
  std::string source;
  std::string hash;     // kImport: content hash (ContentHash)
  // The flow's JSON without body contents (AppendFlowJsonLine with BodyContent::kOmit), when the
  // caller already made it; empty: Write makes it.
  std::string json;
};

// A hash of what a flow says (its JSON without state and revision), so the same exchange
// imported twice is recognised. |with_id| false leaves the id out too, for formats whose reader
// makes up ids (HAR).
std::string ContentHash(const Flow& flow, bool with_id);

struct ListQuery {
  // Sorting: "time" (by seq) or one of method, host, path, status, type, size, dur.
  std::string sort = "time";
  bool descending = true;
  // Time order: rows with seq < before (0: from the newest) when descending, seq > after when
  // ascending. Other orders: skip |offset| rows.
  uint64_t before = 0;
  uint64_t after = 0;
  uint64_t offset = 0;
  size_t limit = 500;
  // A SQL condition over the flows columns (with ? placeholders) that every match satisfies;
  // empty for none.
  std::string where;
  std::vector<std::string> where_args;
  // When set, rows are confirmed by this predicate (on the row's flow, or the full flow when
  // |full_flows|); at most |max_scan| rows are examined per call.
  std::function<bool(const Flow&)> match;
  bool full_flows = false;  // load each flow's JSON and bodies (for the predicate or the caller)
  size_t max_scan = SIZE_MAX;
  double budget_seconds = 0;  // > 0: stop after about this long (returns what it has)
};

struct ListedFlow {
  FlowRow row;
  std::shared_ptr<const Flow> flow;  // ListQuery::full_flows only
};

struct ListPage {
  std::vector<ListedFlow> flows;
  uint64_t next_before = 0;  // time order, descending: continue with before=this (0: done)
  uint64_t next_after = 0;   // time order, ascending
  uint64_t next_offset = 0;  // other orders (0: done)
  size_t scanned = 0;
  bool timed_out = false;
};

struct StoredFlow {
  FlowRow row;
  std::shared_ptr<const Flow> flow;  // with body contents
};

struct SessionCounts {
  uint64_t flows = 0;     // visible (not cleared)
  uint64_t max_seq = 0;   // every row, cleared too
  double first = 0, last = 0;  // start times of the oldest and newest visible flow
};

class SessionDb {
 public:
  enum class Mode { kReadWrite, kReadOnly };
  // Opens (kReadWrite: creating, mode 0600, and migrating) the session file at |path|.
  static Result<std::unique_ptr<SessionDb>> Open(const std::string& path, Mode mode);

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_.get(); }

  // Writes |puts| in one transaction. Returns how many rows were inserted or updated. The bodies'
  // text is indexed later, by IndexPending.
  Result<size_t> Write(const std::vector<FlowPut>& puts);
  // Indexes the text of up to |max_flows| pending flows (the oldest first), in one transaction,
  // stopping after the flow whose text takes the slice to |max_text| bytes. Returns how many it
  // took off the pending list: 0 when none are left.
  Result<size_t> IndexPending(size_t max_flows, size_t max_text = SIZE_MAX);
  // How many flows wait for IndexPending (a count over the pending range: for tests and the
  // benchmark, not the writer's path).
  Result<int64_t> PendingIndex();

  Result<ListPage> List(const ListQuery& query);
  // The flow with |id| (not cleared), bodies included; nullopt when there is none.
  Result<std::optional<StoredFlow>> Get(std::string_view id);

  // The user's edits. Each returns false when no visible flow has |id|.
  Result<bool> SetMarked(std::string_view id, bool marked);
  Result<bool> SetComment(std::string_view id, std::string_view comment);
  Result<bool> Delete(std::string_view id);
  // Clear hides every flow with seq <= |upto|, including those written later with such a seq
  // (flows still queued when the user cleared): the session's "floor" moves up, in O(1).
  // Returns how many flows it hid. Undo(|token|) puts the floor back while |token| names the
  // latest clear and Purge has not run. Purge deletes what lies under the floor for good.
  Result<size_t> Clear(int64_t token, uint64_t upto);
  Result<size_t> Undo(int64_t token);
  Result<size_t> Purge();

  // Counts the visible flows (walks an index: tens of milliseconds for a million).
  Result<SessionCounts> Counts();
  // Counts() no older than |max_age| (this connection's own edits refresh it): the list's total
  // without counting a million rows on every page.
  Result<SessionCounts> RecentCounts(std::chrono::milliseconds max_age);
  // The highest seq written, cleared rows included; O(log n).
  Result<uint64_t> MaxSeq();
  Result<std::optional<std::string>> GetMeta(std::string_view key);
  Status SetMeta(std::string_view key, std::string_view value);

 private:
  SessionDb(std::string path, SqlitePtr db) : path_(std::move(path)), db_(std::move(db)) {}
  Status Migrate();
  Status FillReversedHosts();  // rhost for the rows a version 1 file already holds
  Status PrepareWriter();
  Result<std::shared_ptr<const Flow>> LoadFlow(uint64_t seq, std::string_view json);
  Result<size_t> DeleteWhere(const std::string& condition, const std::function<void(Stmt&)>& bind);
  Result<uint64_t> MetaNumber(std::string_view key);

  std::string path_;
  SqlitePtr db_;
  // The writer's statements, prepared once.
  Stmt upsert_, import_, body_, json_, pending_, pending_any_, pending_count_, pending_slice_, pending_done_,
      cursor_, cursor_set_, unindexed_, fts_, fts_flush_, fts_clear_, seq_of_id_, get_body_, get_json_;
  std::optional<SessionCounts> counts_;
  std::chrono::steady_clock::time_point counts_at_;
};

// The columns List selects, in FlowRow order (for callers that build their own SELECT).
extern const char kRowColumns[];
// Reads a FlowRow from a statement that selected kRowColumns first.
FlowRow RowFromStmt(const Stmt& s);

}  // namespace mitmd::store
