#pragma once
// SessionDb: one session's flows in SQLite (<confdir>/sessions/<NAME>.sqlite, WAL).
//
// Schema version 8 (the "meta" table holds "schema"; Open migrates explicitly, step by step, and
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
//   fts_pending  (id AUTOINCREMENT, seq, each side's Content-Encoding): flows whose text the
//           search index must (re)index although its cursor may have passed their seq (schema
//           8; see store/search_index.h for the hand-off). Ids are never reused, so "every row
//           with id <= N" names the same rows forever.
//   meta    schema, created; floor (flows with seq <= floor are cleared), prev_floor and
//           clear_token (for Undo), purged (the floor up to which rows are deleted);
//           search_token (schema 8: names this file to its search index, which records it);
//           ce_unknown_upto (an upgraded file: bodies up to this seq may have ce '' although
//           compressed, written before schema 7; the indexer reads their encoding from the JSON).
// The search index (FTS5 over the bodies' text) is not in this file since schema 8: it lives in
// <session>.sqlite-search, written by its own thread (store/search_index.h). A reading
// connection (kReadWrite, kReadOnly) ATTACHes it read-only as "search" and makes temp views of
// it for body: filters (temp.search_fts, temp.search_pending); when it is missing, unreadable or
// another session's, an empty temp index instead (every body is then a candidate the filter
// itself decides on). Read-only opens of files from before schema 8 attach the file itself as
// "search" (its own fts and cursor).
// A connection is confined to one thread. One connection writes flows (the store's writer
// thread, kWriter: no search index attached); the viewer reads through its own and makes the
// user's small edits (mark, comment, delete, clear) there, waiting at most busy_timeout for the
// writer's short transactions. The index is attached read-only, so those edits' BEGIN IMMEDIATE
// never takes the index file's write lock.

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

inline constexpr int kSchemaVersion = 8;

// The search index's hand-off on the writer's side (store/search_index.h has the whole story).
struct IndexHandoff {
  // In: a flow written with bodies at seq <= claim is listed in fts_pending (the indexer may
  // already have passed that seq). Out: raised to the highest seq written with bodies once the
  // transaction is committed; the writer then hands it to the indexer.
  uint64_t claim = UINT64_MAX;
  // In: fts_pending rows with id <= this are deleted (the indexer has committed them).
  int64_t prune_upto = 0;
  // Out: the highest fts_pending id this connection listed (0: none yet).
  int64_t last_listed = 0;
};

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
  // kWriter: the store's writer (no search index attached); kReadWrite: a reader that also
  // edits (the viewer, an import); kReadOnly: never writes, never migrates.
  enum class Mode { kWriter, kReadWrite, kReadOnly };
  // Opens (kWriter, kReadWrite: creating, mode 0600, and migrating) the session file at |path|.
  static Result<std::unique_ptr<SessionDb>> Open(const std::string& path, Mode mode);

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_.get(); }

  // Writes |puts| in one transaction. Returns how many rows were inserted or updated. The bodies'
  // text is indexed later, by the search index's thread. Without |handoff| (an import on its own
  // connection, which knows no claim) every flow written with bodies is listed in fts_pending.
  Result<size_t> Write(const std::vector<FlowPut>& puts, IndexHandoff* handoff = nullptr);

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

  // Drops the search index a file from before schema 8 kept inside it (the upgrade leaves it:
  // freeing its pages takes about a second for a million flows, so the writer does it after
  // start-up). True when there was one.
  Result<bool> DropOldIndex();

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
  // ATTACHes the search index as "search" and defines temp.search_pending (filter_sql.cc).
  Status AttachSearch();
  Status FillReversedHosts();  // rhost for the rows a version 1 file already holds
  Status PrepareWriter();
  Result<std::shared_ptr<const Flow>> LoadFlow(uint64_t seq, std::string_view json);
  Result<size_t> DeleteWhere(const std::string& condition, const std::function<void(Stmt&)>& bind);
  Result<uint64_t> MetaNumber(std::string_view key);

  std::string path_;
  SqlitePtr db_;
  // The writer's statements, prepared once.
  Stmt upsert_, import_, body_, json_, pending_, prune_, seq_of_id_, get_body_, get_json_;
  int64_t pruned_ = 0;  // fts_pending ids up to this are deleted
  std::optional<SessionCounts> counts_;
  std::chrono::steady_clock::time_point counts_at_;
};

// The columns List selects, in FlowRow order (for callers that build their own SELECT).
extern const char kRowColumns[];
// Reads a FlowRow from a statement that selected kRowColumns first.
FlowRow RowFromStmt(const Stmt& s);

// Every Content-Encoding of |headers| as one list ("" for none): what decoding a body needs.
std::string ContentCodings(const HeaderList& headers);

// |path| as a read-only SQLite URI (for ATTACH on a connection opened with SQLITE_OPEN_URI).
std::string ReadOnlyUri(std::string_view path);

}  // namespace mitmd::store
