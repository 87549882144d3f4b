#include "store/search_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "flow/flow_json.h"
#include "http/body_decoder.h"
#include "store/session_db.h"

namespace mitmd::store {

namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr size_t kTextPerBody = 64 << 10;
constexpr size_t kMaxDecodedForIndex = 8 << 20;

constexpr char kIndexSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(body, tokenize='trigram', detail='none', columnsize=0);
INSERT INTO fts(fts, rank) VALUES('automerge', 16);
)sql";

// Up to |max| bytes of |s| ending on a UTF-8 character boundary.
std::string_view Utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

std::string_view Blob(const Stmt& s, int col) {
  const void* blob = sqlite3_column_blob(s.get(), col);
  return {static_cast<const char*>(blob), static_cast<size_t>(sqlite3_column_bytes(s.get(), col))};
}

Result<SqlitePtr> OpenConnection(const std::string& path, int flags, std::string_view what) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  SqlitePtr db(raw);
  if (rc != SQLITE_OK) {
    return Fail(StrCat("cannot open ", what, " ", path, ": ", raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  return db;
}

Result<std::string> MetaValue(sqlite3* db, std::string_view key) {
  auto s = Stmt::Prepare(db, "SELECT value FROM meta WHERE key=?1");
  if (!s) return std::unexpected(s.error());
  s->Bind(1, key);
  int rc = s->Step();
  if (rc == SQLITE_ROW) return std::string(s->Text(0));
  if (rc == SQLITE_DONE) return std::string();
  return Fail(s->message());
}

// The index file's connection: created 0600, WAL. Fails when the file is not a usable database.
Result<SqlitePtr> OpenIndexFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(StrCat("cannot open the search index ", path, ": ", std::strerror(errno)));
  ::close(fd);
  auto db = OpenConnection(path, SQLITE_OPEN_READWRITE, "the search index");
  if (!db) return db;
  // Reads the header: a file that is not a database fails here, not in the first slice.
  if (auto st = Exec(db->get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                                "PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-8192; "
                                "SELECT count(*) FROM sqlite_schema;",
                     StrCat("cannot use the search index ", path));
      !st) {
    return std::unexpected(st.error());
  }
  return db;
}

}  // namespace

std::string IndexText(std::string_view content, std::string_view codings) {
  if (content.empty()) return {};
  std::string_view text = content;
  std::string decoded;
  if (!codings.empty()) {
    auto d = DecodeBody(content, ParseContentEncoding(codings), kMaxDecodedForIndex);
    if (!d) return {};
    decoded = std::move(d->data);
    text = decoded;
  }
  std::string_view head = Utf8Prefix(text, kTextPerBody);
  if (!IsValidUtf8(head)) return {};
  return std::string(head);
}

Result<std::unique_ptr<SearchIndex>> SearchIndex::Open(const std::string& session_path, Logger* log) {
  // The indexer never writes the session file (the writer prunes fts_pending): query_only says
  // so to SQLite. Not SQLITE_OPEN_READONLY: a read-only connection that is the last to close a
  // WAL file leaves its -wal and -shm behind, and the next read-only open cannot recover them.
  auto session = OpenConnection(session_path, SQLITE_OPEN_READWRITE, "the session database");
  if (!session) return std::unexpected(session.error());
  if (auto st = Exec(session->get(), "PRAGMA query_only=1", "cannot read the session database"); !st) {
    return std::unexpected(st.error());
  }
  auto token = MetaValue(session->get(), "search_token");
  if (!token) return Fail(StrCat("cannot read the session database ", session_path, ": ", token.error().message));
  if (token->empty()) return Fail(StrCat(session_path, " has no search token (not schema 8)"));

  const std::string path = PathFor(session_path);
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  auto index = OpenIndexFile(path);
  std::string why;
  if (!index) {
    // Unreadable (not a database, torn beyond repair): derived data, so it goes.
    why = index.error().message;
    for (const std::string& f : {path, path + "-wal", path + "-shm"}) ::unlink(f.c_str());
    index = OpenIndexFile(path);
    if (!index) return std::unexpected(index.error());
  }
  auto out = std::unique_ptr<SearchIndex>(new SearchIndex(session_path, std::move(*session), std::move(*index)));
  sqlite3* db = out->index_.get();
  auto has_meta = Stmt::Prepare(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('meta','fts')");
  if (!has_meta || has_meta->Step() != SQLITE_ROW) return Fail(StrCat("cannot read the search index ", path));
  const bool complete = has_meta->Int(0) == 2;
  has_meta = Stmt();
  std::string theirs;
  if (complete) {
    auto t = MetaValue(db, "token");
    if (!t) return Fail(StrCat("cannot read the search index ", path, ": ", t.error().message));
    theirs = *t;
  }
  if (theirs != *token) {
    if (why.empty()) {
      why = !existed ? "there was none" : theirs.empty() ? "it was incomplete" : "it belongs to another session file";
    }
    if (auto st = out->Reset(*token); !st) return std::unexpected(st.error());
    auto flows = Stmt::Prepare(out->session_.get(), "SELECT EXISTS(SELECT 1 FROM bodies)");
    // A new session has nothing to rebuild: no line for it.
    if (log && flows && flows->Step() == SQLITE_ROW && flows->Int(0) != 0) {
      log->Info("rebuilding the session's search index in the background",
                {{"index", path}, {"why", why}, {"note", "body: filters stay complete meanwhile, and slower"}});
    }
  }
  auto cursor = MetaValue(db, "indexed");
  auto done = MetaValue(db, "pending_done");
  auto legacy = MetaValue(out->session_.get(), "ce_unknown_upto");
  if (!cursor || !done || !legacy) return Fail(StrCat("cannot read the search index ", path));
  out->cursor_ = std::strtoull(cursor->c_str(), nullptr, 10);
  out->pending_done_ = std::strtoll(done->c_str(), nullptr, 10);
  out->ce_unknown_upto_ = std::strtoll(legacy->c_str(), nullptr, 10);
  if (auto st = out->Prepare(); !st) return std::unexpected(st.error());
  return out;
}

Status SearchIndex::Reset(const std::string& token) {
  sqlite3* db = index_.get();
  const std::string what = StrCat("cannot create the search index ", PathFor(session_path_));
  if (auto st = Exec(db, "BEGIN IMMEDIATE", what); !st) return st;
  Status st = Exec(db, "DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS meta;", what);
  if (st) st = Exec(db, kIndexSchema, what);
  if (st) {
    auto s = Stmt::Prepare(db, "INSERT INTO meta(key,value) VALUES('token',?1),('indexed','0'),('pending_done','0')");
    st = s ? s->Bind(1, token).Run() : Status(std::unexpected(s.error()));
  }
  if (st) st = Exec(db, "COMMIT", what);
  if (!st) (void)Exec(db, "ROLLBACK");
  return st;
}

Status SearchIndex::Prepare() {
  auto prep = [](sqlite3* db, Stmt& s, const char* sql) -> Status {
    auto p = Stmt::Prepare(db, sql);
    if (!p) return std::unexpected(p.error());
    s = std::move(*p);
    return {};
  };
  sqlite3* session = session_.get();
  sqlite3* index = index_.get();
  Status st = prep(session, pending_, "SELECT id,seq,req_ce,res_ce FROM fts_pending WHERE id>?1 ORDER BY id LIMIT ?2");
  if (st) st = prep(session, bodies_, "SELECT side,content FROM bodies WHERE seq=?1");
  // In the primary key's order: a range of the table, each flow's sides together.
  if (st) st = prep(session, range_, "SELECT seq,side,content,ce FROM bodies WHERE seq>?1 AND seq<=?2 ORDER BY seq,side");
  if (st) {
    st = prep(session, json_,
              "SELECT CASE WHEN f.json<>'' THEN f.json ELSE j.json END FROM flows f "
              "LEFT JOIN flow_json j ON j.seq=f.seq WHERE f.seq=?1");
  }
  // A slice goes into fts from a staging table, in one statement: FTS5 flushes its pending terms
  // into a new segment at every statement, so rows added one statement each cost a segment (and
  // its merges) each.
  if (st) {
    st = Exec(index, "CREATE TEMP TABLE IF NOT EXISTS fts_stage(seq INTEGER NOT NULL, body TEXT NOT NULL)",
              "cannot prepare the search index");
  }
  if (st) st = prep(index, stage_, "INSERT INTO temp.fts_stage(seq,body) VALUES(?1,?2)");
  if (st) st = prep(index, flush_, "INSERT OR REPLACE INTO fts(rowid,body) SELECT seq,body FROM temp.fts_stage");
  if (st) st = prep(index, clear_, "DELETE FROM temp.fts_stage");
  if (st) st = prep(index, set_meta_, "INSERT OR REPLACE INTO meta(key,value) VALUES(?1,?2)");
  return st;
}

std::string SearchIndex::LegacyCodings(int64_t seq, int side) {
  json_.Bind(1, seq);
  std::string json;
  if (json_.Step() == SQLITE_ROW) json = json_.Text(0);
  json_.Reset();
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded()) return {};
  auto flow = FlowFromJson(j);
  if (!flow) return {};
  if (side == 0) return flow->request ? ContentCodings(flow->request->headers) : std::string();
  return flow->response ? ContentCodings(flow->response->headers) : std::string();
}

Result<std::string> SearchIndex::FlowText(int64_t seq, std::string_view req_ce, std::string_view res_ce) {
  // One document per flow, the request's text first (rows come in side order); the body: filter
  // itself says which side matched.
  std::string text;
  bodies_.Bind(1, seq);
  int rc;
  while ((rc = bodies_.Step()) == SQLITE_ROW) {
    const int side = static_cast<int>(bodies_.Int(0));
    std::string_view ce = side == 0 ? req_ce : res_ce;
    std::string part = IndexText(Blob(bodies_, 1), ce);
    if (part.empty() && ce.empty() && seq <= ce_unknown_upto_) {
      part = IndexText(Blob(bodies_, 1), LegacyCodings(seq, side));
    }
    if (part.empty()) continue;
    if (!text.empty()) text.push_back('\n');
    text += part;
  }
  bodies_.Reset();
  if (rc != SQLITE_DONE) return Fail(sqlite3_errmsg(session_.get()));
  return text;
}

Result<SearchIndex::Slice> SearchIndex::Read(uint64_t claim, size_t max_flows, size_t max_text) {
  sqlite3* db = session_.get();
  auto fail = [&](std::string m) -> Result<Slice> {
    (void)Exec(db, "ROLLBACK");
    return Fail(StrCat("cannot read the session for its search index: ", m));
  };
  // One read transaction: the pending rows and the bodies from the same snapshot, taken after
  // the caller read |claim|.
  if (auto st = Exec(db, "BEGIN", "cannot read the session for its search index"); !st) {
    return std::unexpected(st.error());
  }
  Slice slice;
  slice.cursor = cursor_;
  slice.pending_done = pending_done_;
  size_t text_bytes = 0;
  auto take = [&](int64_t seq, std::string text) {
    ++slice.flows;
    text_bytes += text.size();
    slice.docs.emplace_back(seq, std::move(text));
  };

  // First the listed flows (written at a seq the cursor may have passed).
  struct Listed {
    int64_t id, seq;
    std::string req_ce, res_ce;
  };
  std::vector<Listed> listed;
  pending_.Bind(1, pending_done_).Bind(2, static_cast<int64_t>(std::min<size_t>(max_flows, INT64_MAX)));
  int rc;
  while ((rc = pending_.Step()) == SQLITE_ROW) {
    listed.push_back({pending_.Int(0), pending_.Int(1), std::string(pending_.Text(2)), std::string(pending_.Text(3))});
  }
  pending_.Reset();
  if (rc != SQLITE_DONE) return fail(sqlite3_errmsg(db));
  for (const Listed& p : listed) {
    if (text_bytes >= max_text) break;
    auto text = FlowText(p.seq, p.req_ce, p.res_ce);
    if (!text) return fail(text.error().message);
    take(p.seq, std::move(*text));
    slice.pending_done = p.id;
  }

  // Then the bodies past the cursor up to the claim, in seq order, one range read; the cursor
  // moves past the last flow taken, or to the claim when the range is done.
  const int64_t upto = static_cast<int64_t>(std::min<uint64_t>(claim, INT64_MAX));
  if (slice.flows < max_flows && text_bytes < max_text && static_cast<int64_t>(cursor_) < upto) {
    int64_t current = 0;  // the flow whose sides are being read (seqs start at 1)
    std::string text;
    bool done = true;
    range_.Bind(1, static_cast<int64_t>(cursor_)).Bind(2, upto);
    while ((rc = range_.Step()) == SQLITE_ROW) {
      const int64_t seq = range_.Int(0);
      if (seq != current) {
        if (current != 0) {
          take(current, std::move(text));
          text.clear();
          slice.cursor = static_cast<uint64_t>(current);
        }
        if (slice.flows >= max_flows || text_bytes >= max_text) {
          done = false;
          break;
        }
        current = seq;
      }
      const int side = static_cast<int>(range_.Int(1));
      std::string_view ce = range_.Text(3);
      std::string part = IndexText(Blob(range_, 2), ce);
      if (part.empty() && ce.empty() && seq <= ce_unknown_upto_) part = IndexText(Blob(range_, 2), LegacyCodings(seq, side));
      if (part.empty()) continue;
      if (!text.empty()) text.push_back('\n');
      text += part;
    }
    range_.Reset();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail(sqlite3_errmsg(db));
    if (done) {
      if (current != 0) take(current, std::move(text));
      slice.cursor = static_cast<uint64_t>(upto);
    }
  }
  if (auto st = Exec(db, "COMMIT", "cannot read the session for its search index"); !st) {
    return fail(st.error().message);
  }
  return slice;
}

Status SearchIndex::Commit(const Slice& slice) {
  if (slice.docs.empty() && slice.cursor == cursor_ && slice.pending_done == pending_done_) return {};
  sqlite3* db = index_.get();
  const std::string what = "cannot write the search index";
  // The index file only: no other database is attached to this connection.
  if (auto st = Exec(db, "BEGIN IMMEDIATE", what); !st) return st;
  auto fail = [&](std::string m) -> Status {
    (void)Exec(db, "ROLLBACK");  // the staged rows too: temp tables share the transaction
    return Fail(StrCat(what, ": ", m));
  };
  bool staged = false;
  for (const auto& [seq, text] : slice.docs) {
    // A flow with no text leaves what the index held for its seq: a stale document is a
    // candidate the filter rejects, never a miss.
    if (text.empty()) continue;
    stage_.Bind(1, seq).BindRef(2, text);
    if (auto st = stage_.Run(); !st) return fail(st.error().message);
    staged = true;
  }
  if (staged) {
    auto flushed = flush_.Run();
    if (flushed) flushed = clear_.Run();
    if (!flushed) return fail(flushed.error().message);
  }
  const std::string cursor = std::to_string(slice.cursor);
  const std::string done = std::to_string(slice.pending_done);
  if (auto st = set_meta_.Bind(1, std::string_view("indexed")).BindRef(2, cursor).Run(); !st) {
    return fail(st.error().message);
  }
  if (auto st = set_meta_.Bind(1, std::string_view("pending_done")).BindRef(2, done).Run(); !st) {
    return fail(st.error().message);
  }
  if (auto st = Exec(db, "COMMIT", what); !st) return fail(st.error().message);
  cursor_ = slice.cursor;
  pending_done_ = slice.pending_done;
  return {};
}

Result<size_t> SearchIndex::IndexSlice(uint64_t claim, size_t max_flows, size_t max_text) {
  auto slice = Read(claim, max_flows, max_text);
  if (!slice) return std::unexpected(slice.error());
  if (auto st = Commit(*slice); !st) return std::unexpected(st.error());
  return slice->flows;
}

Result<int64_t> SearchIndex::Waiting(uint64_t claim) {
  auto s = Stmt::Prepare(session_.get(),
                         "SELECT (SELECT count(*) FROM fts_pending WHERE id>?1) + "
                         "(SELECT count(DISTINCT seq) FROM bodies WHERE seq>?2 AND seq<=?3)");
  if (!s) return std::unexpected(s.error());
  s->Bind(1, pending_done_).Bind(2, static_cast<int64_t>(cursor_))
      .Bind(3, static_cast<int64_t>(std::min<uint64_t>(claim, INT64_MAX)));
  if (s->Step() != SQLITE_ROW) return Fail(StrCat("cannot read the session database: ", s->message()));
  return s->Int(0);
}

}  // namespace mitmd::store
