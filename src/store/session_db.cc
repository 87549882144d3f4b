#include "store/session_db.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "flow/flow_json.h"
#include "http/body_decoder.h"
#include "http/headers.h"
#include "store/filter_sql.h"

namespace mitmd::store {

namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr size_t kMaxDecodedForIndex = 8 << 20;

// Version 0 -> 1: everything.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE flows(
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, t REAL NOT NULL, kind TEXT NOT NULL,
  state TEXT NOT NULL, revision INTEGER NOT NULL, method TEXT NOT NULL, scheme TEXT NOT NULL,
  host TEXT NOT NULL, port INTEGER NOT NULL, path TEXT NOT NULL, ver TEXT NOT NULL,
  status INTEGER NOT NULL, type TEXT NOT NULL, size INTEGER NOT NULL, wire_size INTEGER NOT NULL,
  dur REAL NOT NULL, tls TEXT NOT NULL, alpn TEXT NOT NULL, up_alpn TEXT NOT NULL,
  conn INTEGER NOT NULL, up INTEGER NOT NULL, reused INTEGER NOT NULL, insecure INTEGER NOT NULL,
  trunc INTEGER NOT NULL, err_phase TEXT NOT NULL, err TEXT NOT NULL, client TEXT NOT NULL,
  marked INTEGER NOT NULL DEFAULT 0, comment TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '', hash TEXT, json TEXT NOT NULL);
CREATE UNIQUE INDEX flows_hash ON flows(hash) WHERE hash IS NOT NULL;
CREATE INDEX flows_status ON flows(status);
CREATE INDEX flows_host ON flows(host COLLATE NOCASE);
CREATE TABLE bodies(seq INTEGER NOT NULL, side INTEGER NOT NULL, content BLOB NOT NULL,
  PRIMARY KEY(seq, side)) WITHOUT ROWID;
CREATE VIRTUAL TABLE fts USING fts5(body, tokenize='trigram', detail='none');
)sql";

// Version 1 -> 2: filters on host and method walk an index instead of the table. host:H matches H
// and its subdomains, a suffix; rhost holds the host lower-cased and reversed, which turns the
// suffix into a prefix an index range can find.
constexpr char kSchemaV2[] = R"sql(
ALTER TABLE flows ADD COLUMN rhost TEXT NOT NULL DEFAULT '';
CREATE INDEX flows_rhost ON flows(rhost);
CREATE INDEX flows_method ON flows(method COLLATE NOCASE);
)sql";

// Version 2 -> 3: flows_host served no query once rhost answered host: (a NOCASE index orders
// neither the host sort nor a LIKE '%...'), and cost the writer a b-tree insert per flow.
constexpr char kSchemaV3[] = R"sql(
DROP INDEX IF EXISTS flows_host;
)sql";

// Version 3 -> 4: the search index is filled off the insert path. fts_pending lists the recorded
// flows with bodies whose text is not indexed yet, with the Content-Encoding of each side (the
// bodies table holds the bytes as recorded); the indexer moved them into fts in slices.
constexpr char kSchemaV4[] = R"sql(
CREATE TABLE IF NOT EXISTS fts_pending(seq INTEGER PRIMARY KEY, req_ce TEXT NOT NULL,
  res_ce TEXT NOT NULL);
)sql";

// Version 4 -> 5: the list's table holds the listed columns only. A flow's JSON goes to
// flow_json, so a filter no index answers (path:, a rare status) scans rows of ~250 bytes
// instead of ~1.4 KiB (1.4 GiB for a million flows). Rows written before keep their JSON in
// flows.json; new rows have '' there (LoadFlow reads flow_json then).
constexpr char kSchemaV5[] = R"sql(
CREATE TABLE IF NOT EXISTS flow_json(seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
)sql";

// A new file (schema 5 from the start) has no index on status or method: with narrow rows, a
// scan answers those filters over a million flows in a fraction of a second, and each index
// cost the writer a b-tree insert per flow (5,200 instructions, 7% of its work). A file
// upgraded from an older schema keeps them: its old rows are wide, and a scan of them is not.
constexpr char kDropFacetIndexes[] = R"sql(
DROP INDEX IF EXISTS flows_status;
DROP INDEX IF EXISTS flows_method;
)sql";

// Version 6 -> 7: what waits for the search index is a cursor, not a row per flow. Every body
// with seq > meta 'indexed' waits (bodies.ce keeps each body's Content-Encoding for the
// decoding); fts_pending lists only the flows recorded at a seq the cursor had already passed
// (a flow live while later ones were indexed, a flow recorded again). The per-flow insert into
// fts_pending and its later delete cost the writer two b-tree changes a flow. A file upgraded
// from an older schema starts its cursor after its last flow: its pending flows are listed.
constexpr char kSchemaV7[] = R"sql(
INSERT OR IGNORE INTO meta(key,value) SELECT 'indexed', coalesce(max(seq),0) FROM flows;
)sql";
constexpr char kBodiesEncoding[] = "ALTER TABLE bodies ADD COLUMN ce TEXT NOT NULL DEFAULT ''";

// A new file (schema 7 from the start) has no index on rhost either: host: tests the range on
// rhost while it scans the narrow list table, like status: and method: (a host with no match in
// a million flows: 0.2 s), and the index cost the writer a b-tree insert per flow (4,600
// instructions, 8% of its work). Older files keep theirs, as they keep their other indexes.
constexpr char kDropHostIndex[] = "DROP INDEX IF EXISTS flows_rhost";

// Version 7 -> 8: the search index moves to a file of its own (<session>.sqlite-search), written
// by its own thread with its own connection, so that indexing never holds this file's write lock
// and runs beside the row writer. Its fts (and shadow tables) go, later (DropOldIndex: freeing
// the pages of a million flows' index took 0.8 s, before the proxy would listen); fts_pending
// gets an id that is never reused, the unit of the hand-off between the writer and the indexer
// (search_index.h); the rows an older schema had pending stay listed. The new index starts empty
// at cursor 0 and the indexer rebuilds it in the background; body: stays correct meanwhile
// (every unindexed body is a candidate the filter decides on). A file upgraded from schema 1-7
// may hold compressed bodies written before bodies.ce existed (schema 7), with ce '';
// ce_unknown_upto tells the indexer up to which seq to look their Content-Encoding up in the
// flow's JSON.
constexpr char kSchemaV8[] = R"sql(
ALTER TABLE fts_pending RENAME TO fts_pending_v7;
CREATE TABLE fts_pending(id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL,
  req_ce TEXT NOT NULL, res_ce TEXT NOT NULL);
INSERT INTO fts_pending(seq,req_ce,res_ce) SELECT seq,req_ce,res_ce FROM fts_pending_v7 ORDER BY seq;
DROP TABLE fts_pending_v7;
DELETE FROM meta WHERE key='indexed';
INSERT OR REPLACE INTO meta(key,value) VALUES('search_token', lower(hex(randomblob(16))));
)sql";
constexpr char kUnknownEncodings[] =
    "INSERT OR REPLACE INTO meta(key,value) SELECT 'ce_unknown_upto', coalesce(max(seq),0) FROM bodies";

constexpr char kInsertColumns[] =
    "seq,id,t,kind,state,revision,method,scheme,host,port,path,ver,status,type,size,wire_size,"
    "dur,tls,alpn,up_alpn,conn,up,reused,insecure,trunc,err_phase,err,client,source,hash,json,rhost";
constexpr char kInsertValues[] =
    "?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,"
    "?26,?27,?28,?29,?30,?31,?32";

// Binds without copying: |r| and |rhost| outlive the statement's step.
void BindRow(Stmt& s, const FlowRow& r, const std::string& rhost) {
  s.Bind(1, static_cast<int64_t>(r.seq)).BindRef(2, r.id).Bind(3, r.t).BindRef(4, r.kind).BindRef(5, r.state);
  s.Bind(6, static_cast<int64_t>(r.revision)).BindRef(7, r.method).BindRef(8, r.scheme).BindRef(9, r.host);
  s.Bind(10, r.port).BindRef(11, r.path).BindRef(12, r.ver).Bind(13, r.status).BindRef(14, r.type);
  s.Bind(15, r.size).Bind(16, r.wire_size).Bind(17, r.dur).BindRef(18, r.tls).BindRef(19, r.alpn);
  s.BindRef(20, r.up_alpn).Bind(21, r.conn).Bind(22, r.up).Bind(23, int64_t{r.reused});
  s.Bind(24, int64_t{r.insecure}).Bind(25, int64_t{r.trunc}).BindRef(26, r.err_phase).BindRef(27, r.err);
  s.BindRef(28, r.client);
  s.BindRef(32, rhost);
}

// The decoded size of a recorded body with |codings| (-1 when it cannot be known: cut by the
// record cap, undecodable, or beyond what the writer decodes).
int64_t DecodedSize(const BodyRecord& body, const std::string& codings) {
  if (codings.empty() || body.content.empty() || body.truncated) return -1;
  auto d = DecodeBody(body.content, ParseContentEncoding(codings), kMaxDecodedForIndex);
  return d && !d->partial ? static_cast<int64_t>(d->data.size()) : -1;
}

// |text| as an SQL string literal.
std::string SqlQuote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  return out + "'";
}

// Rows a Clear has not hidden.
constexpr char kVisible[] =
    "seq>coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key='floor'),0)";

}  // namespace

std::string ContentCodings(const HeaderList& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    if (!EqualsIgnoreCase(name, "content-encoding")) continue;
    if (!out.empty()) out += ", ";
    out += value;
  }
  return out;
}

std::string ReadOnlyUri(std::string_view path) {
  // The characters a URI's path cannot hold as they are; the rest (UTF-8 too) passes.
  std::string out = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      static const char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      out.push_back(kHex[static_cast<unsigned char>(c) & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out + "?mode=ro";
}

const char kRowColumns[] =
    "seq,id,t,kind,state,revision,method,scheme,host,port,path,ver,status,type,size,wire_size,"
    "dur,tls,alpn,up_alpn,conn,up,reused,insecure,trunc,err_phase,err,client,marked,comment,"
    "source";

FlowRow RowFromStmt(const Stmt& s) {
  FlowRow r;
  r.seq = static_cast<uint64_t>(s.Int(0));
  r.id = s.Text(1);
  r.t = s.Double(2);
  r.kind = s.Text(3);
  r.state = s.Text(4);
  r.revision = static_cast<uint64_t>(s.Int(5));
  r.method = s.Text(6);
  r.scheme = s.Text(7);
  r.host = s.Text(8);
  r.port = s.Int(9);
  r.path = s.Text(10);
  r.ver = s.Text(11);
  r.status = s.Int(12);
  r.type = s.Text(13);
  r.size = s.Int(14);
  r.wire_size = s.Int(15);
  r.dur = s.Double(16);
  r.tls = s.Text(17);
  r.alpn = s.Text(18);
  r.up_alpn = s.Text(19);
  r.conn = s.Int(20);
  r.up = s.Int(21);
  r.reused = s.Int(22) != 0;
  r.insecure = s.Int(23) != 0;
  r.trunc = s.Int(24) != 0;
  r.err_phase = s.Text(25);
  r.err = s.Text(26);
  r.client = s.Text(27);
  r.marked = s.Int(28) != 0;
  r.comment = s.Text(29);
  r.source = s.Text(30);
  return r;
}

std::string ContentHash(const Flow& flow, bool with_id) {
  Flow copy = flow;
  if (!with_id) copy.id.clear();
  copy.state = FlowState::kDone;
  copy.revision = 0;
  std::string line;
  AppendFlowJsonLine(copy, line);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(line.data()), line.size(), digest);
  return HexEncode(digest, sizeof(digest));
}

Result<std::unique_ptr<SessionDb>> SessionDb::Open(const std::string& path, Mode mode) {
  // SQLite's memory statistics (nothing here reads them) take a process-wide mutex around each
  // of its allocations and frees: a lock and an unlock each, thousands a batch. Settable only
  // before SQLite initializes (the first connection); if something opened one earlier, this
  // fails harmlessly and the statistics stay.
  static const int kNoMemoryStatistics = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kNoMemoryStatistics;
  const bool writes = mode != Mode::kReadOnly;
  if (writes) {
    // Created here rather than by SQLite so that it is private from the start.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(StrCat("cannot open the session database ", path, ": ", std::strerror(errno)));
    ::close(fd);
  }
  sqlite3* raw = nullptr;
  // URIs: the search index is attached read-only (ReadOnlyUri).
  int flags = (writes ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  SqlitePtr db(raw);
  if (rc != SQLITE_OK) {
    return Fail(StrCat("cannot open the session database ", path, ": ",
                       raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  auto out = std::unique_ptr<SessionDb>(new SessionDb(path, std::move(db)));
  if (writes) {
    // page_size applies to a new file only (before WAL): a flow's row is 1 to 2 KiB, and a
    // 4 KiB page holds two of them with a third's room left empty (a third of the table).
    if (auto st = Exec(out->handle(), "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                       "PRAGMA journal_size_limit=67108864; PRAGMA temp_store=MEMORY; "
                       // 8 MiB instead of 2: the indexes' hot pages stay cached, and the
                       // writer stops re-reading them from the file on every batch.
                       "PRAGMA cache_size=-8192;",
                       StrCat("cannot use the session database ", path));
        !st) {
      return std::unexpected(st.error());
    }
    if (auto st = out->Migrate(); !st) return std::unexpected(st.error());
    if (auto st = out->PrepareWriter(); !st) return std::unexpected(st.error());
    if (mode == Mode::kReadWrite) {
      if (auto st = out->AttachSearch(); !st) return std::unexpected(st.error());
    }
  } else {
    auto version = out->GetMeta("schema");
    if (!version) return std::unexpected(version.error());
    if (!*version) return Fail(StrCat(path, " is not a mitmd session (no schema version)"));
    if (std::atoi((*version)->c_str()) > kSchemaVersion) {
      return Fail(StrCat(path, " was written by a newer mitmd (schema ", **version, ")"));
    }
    if (auto st = out->AttachSearch(); !st) return std::unexpected(st.error());
  }
  return out;
}

Status SessionDb::Migrate() {
  sqlite3* db = handle();
  if (auto st = Exec(db, "BEGIN IMMEDIATE", StrCat("cannot lock the session database ", path_)); !st) {
    return st;
  }
  auto rollback = [&](Error e) -> Status {
    (void)Exec(db, "ROLLBACK");
    return std::unexpected(std::move(e));
  };
  if (auto st = Exec(db, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
      !st) {
    return rollback(st.error());
  }
  auto current = GetMeta("schema");
  if (!current) return rollback(current.error());
  int version = *current ? std::atoi((*current)->c_str()) : 0;
  if (version > kSchemaVersion) {
    return rollback(Error{StrCat(path_, " was written by a newer mitmd (schema ", version,
                                 "); this one knows schema ", kSchemaVersion)});
  }
  // Each step takes the file from version N to N+1; add new steps at the end.
  if (version < 1) {
    if (auto st = Exec(db, kSchemaV1, StrCat("cannot create the session database ", path_)); !st) {
      return rollback(st.error());
    }
    double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (auto st = SetMeta("created", std::to_string(now)); !st) return rollback(st.error());
  }
  if (version < 2) {
    if (auto st = Exec(db, kSchemaV2, StrCat("cannot upgrade the session database ", path_)); !st) {
      return rollback(st.error());
    }
    if (version >= 1) {
      if (auto st = FillReversedHosts(); !st) return rollback(st.error());
    }
  }
  if (version < 3) {
    if (auto st = Exec(db, kSchemaV3, StrCat("cannot upgrade the session database ", path_)); !st) {
      return rollback(st.error());
    }
  }
  if (version < 4) {
    // Earlier versions indexed every body as they wrote it: nothing is pending.
    if (auto st = Exec(db, kSchemaV4, StrCat("cannot upgrade the session database ", path_)); !st) {
      return rollback(st.error());
    }
  }
  if (version < 5) {
    if (auto st = Exec(db, kSchemaV5, StrCat("cannot upgrade the session database ", path_)); !st) {
      return rollback(st.error());
    }
    if (version == 0) {
      if (auto st = Exec(db, kDropFacetIndexes, StrCat("cannot create the session database ", path_)); !st) {
        return rollback(st.error());
      }
    }
  }
  // Step 6 (16-way merges) tuned the in-file fts, which step 8 drops: the index file has them.
  if (version < 7) {
    auto has_ce = Stmt::Prepare(db, "SELECT count(*) FROM pragma_table_info('bodies') WHERE name='ce'");
    if (!has_ce) return rollback(has_ce.error());
    if (has_ce->Step() != SQLITE_ROW) return rollback(Error{StrCat("cannot read the session database ", path_)});
    const bool add_ce = has_ce->Int(0) == 0;
    has_ce->Reset();
    if (add_ce) {
      if (auto st = Exec(db, kBodiesEncoding, StrCat("cannot upgrade the session database ", path_)); !st) {
        return rollback(st.error());
      }
    }
    if (auto st = Exec(db, kSchemaV7, StrCat("cannot upgrade the session database ", path_)); !st) {
      return rollback(st.error());
    }
    if (version == 0) {
      if (auto st = Exec(db, kDropHostIndex, StrCat("cannot create the session database ", path_)); !st) {
        return rollback(st.error());
      }
    }
  }
  if (version < 8) {
    if (version > 0) {
      if (auto st = Exec(db, kUnknownEncodings, StrCat("cannot upgrade the session database ", path_)); !st) {
        return rollback(st.error());
      }
    }
    if (auto st = Exec(db, kSchemaV8, StrCat("cannot upgrade the session database ", path_)); !st) {
      return rollback(st.error());
    }
    if (version == 0) {
      // A new file's fts (step 1) is empty: it goes at once.
      if (auto st = Exec(db, "DROP TABLE fts", StrCat("cannot create the session database ", path_)); !st) {
        return rollback(st.error());
      }
    }
  }
  if (version != kSchemaVersion) {
    if (auto st = SetMeta("schema", std::to_string(kSchemaVersion)); !st) return rollback(st.error());
  }
  return Exec(db, "COMMIT", StrCat("cannot write the session database ", path_));
}

Status SessionDb::AttachSearch() {
  sqlite3* db = handle();
  auto version = GetMeta("schema");
  if (!version) return std::unexpected(version.error());
  const int v = *version ? std::atoi((*version)->c_str()) : 0;
  const std::string what = StrCat("cannot read the session database ", path_);
  // body: filters (filter_sql.cc) name temp.search_fts (the index's documents, rowid = seq) and
  // temp.search_pending (the seqs it does not hold yet): temp objects, because a read-only
  // connection can create nothing anywhere else.
  constexpr char kIndexView[] = "CREATE TEMP VIEW search_fts AS SELECT rowid, body FROM search.fts";
  std::string pending;
  if (v < 8) {
    // Read-only, not upgraded: the file's own fts and cursor (schema 7) are the index; before
    // schema 4 every body was indexed as it was written and there is no fts_pending.
    if (auto st = Exec(db, StrCat("ATTACH ", SqlQuote(ReadOnlyUri(path_)), " AS search"), what); !st) return st;
    if (auto st = Exec(db, kIndexView, what); !st) return st;
    if (v < 4) {
      if (auto st = Exec(db, "CREATE TEMP TABLE fts_pending(seq INTEGER PRIMARY KEY)", what); !st) return st;
    }
    pending = "SELECT seq FROM main.fts_pending UNION ALL SELECT seq FROM main.bodies WHERE seq>"
              "coalesce((SELECT CAST(value AS INTEGER) FROM search.meta WHERE key='indexed'),9223372036854775807)";
    return Exec(db, StrCat("CREATE TEMP VIEW search_pending AS ", pending), what);
  }
  // The index file when it is there and this session's (the token), attached read-only: the
  // edits' BEGIN IMMEDIATE then takes no lock on it.
  const std::string index_path = StrCat(path_, "-search");
  bool attached = false;
  if (::access(index_path.c_str(), F_OK) == 0 &&
      Exec(db, StrCat("ATTACH ", SqlQuote(ReadOnlyUri(index_path)), " AS search"))) {
    {
      auto token = GetMeta("search_token");
      auto theirs = Stmt::Prepare(db, "SELECT value FROM search.meta WHERE key='token'");
      attached = token && *token && theirs && theirs->Step() == SQLITE_ROW && theirs->Text(0) == **token;
    }
    if (!attached) (void)Exec(db, "DETACH search");
  }
  if (attached) {
    if (auto st = Exec(db, kIndexView, what); !st) return st;
    pending = "SELECT seq FROM main.fts_pending WHERE id>"
              "coalesce((SELECT CAST(value AS INTEGER) FROM search.meta WHERE key='pending_done'),0) "
              "UNION ALL SELECT seq FROM main.bodies WHERE seq>"
              "coalesce((SELECT CAST(value AS INTEGER) FROM search.meta WHERE key='indexed'),0)";
  } else {
    // Missing, unreadable or another session's: never an error (the index is derived data). An
    // empty index: every body is a candidate the filter decides on.
    if (auto st = Exec(db, "CREATE VIRTUAL TABLE temp.search_fts USING fts5(body, tokenize='trigram', detail='none')", what);
        !st) {
      return st;
    }
    pending = "SELECT seq FROM main.fts_pending UNION ALL SELECT seq FROM main.bodies";
  }
  return Exec(db, StrCat("CREATE TEMP VIEW search_pending AS ", pending), what);
}

Status SessionDb::FillReversedHosts() {
  auto select = Stmt::Prepare(handle(), "SELECT seq, host FROM flows");
  if (!select) return std::unexpected(select.error());
  auto update = Stmt::Prepare(handle(), "UPDATE flows SET rhost=?2 WHERE seq=?1");
  if (!update) return std::unexpected(update.error());
  while (true) {
    int rc = select->Step();
    if (rc == SQLITE_DONE) return {};
    if (rc != SQLITE_ROW) return Fail(StrCat("cannot upgrade the session database ", path_, ": ", select->message()));
    update->Bind(1, select->Int(0)).Bind(2, ReversedHost(select->Text(1)));
    if (auto st = update->Run(); !st) return std::unexpected(st.error());
  }
}

Status SessionDb::PrepareWriter() {
  auto prep = [&](Stmt& s, const std::string& sql) -> Status {
    auto p = Stmt::Prepare(handle(), sql);
    if (!p) return std::unexpected(p.error());
    s = std::move(*p);
    return {};
  };
  std::string upsert = StrCat("INSERT INTO flows(", kInsertColumns, ") VALUES(", kInsertValues,
                              ") ON CONFLICT(id) DO UPDATE SET t=excluded.t,state=excluded.state,"
                              "revision=excluded.revision,method=excluded.method,scheme=excluded.scheme,"
                              "host=excluded.host,port=excluded.port,path=excluded.path,ver=excluded.ver,"
                              "status=excluded.status,type=excluded.type,size=excluded.size,"
                              "wire_size=excluded.wire_size,dur=excluded.dur,tls=excluded.tls,"
                              "alpn=excluded.alpn,up_alpn=excluded.up_alpn,conn=excluded.conn,"
                              "up=excluded.up,reused=excluded.reused,insecure=excluded.insecure,"
                              "trunc=excluded.trunc,err_phase=excluded.err_phase,err=excluded.err,"
                              "client=excluded.client,json=excluded.json,rhost=excluded.rhost "
                              "WHERE excluded.revision>=flows.revision");
  std::string import = StrCat("INSERT INTO flows(", kInsertColumns, ") VALUES(", kInsertValues,
                              ") ON CONFLICT DO NOTHING");
  if (auto st = prep(upsert_, upsert); !st) return st;
  if (auto st = prep(import_, import); !st) return st;
  if (auto st = prep(body_, "INSERT OR REPLACE INTO bodies(seq,side,content,ce) VALUES(?1,?2,?3,?4)"); !st) {
    return st;
  }
  if (auto st = prep(json_, "INSERT OR REPLACE INTO flow_json(seq,json) VALUES(?1,?2)"); !st) return st;
  if (auto st = prep(pending_, "INSERT INTO fts_pending(seq,req_ce,res_ce) VALUES(?1,?2,?3)"); !st) return st;
  if (auto st = prep(prune_, "DELETE FROM fts_pending WHERE id<=?1"); !st) return st;
  if (auto st = prep(seq_of_id_, "SELECT seq FROM flows WHERE id=?1"); !st) return st;
  return {};
}

Result<size_t> SessionDb::Write(const std::vector<FlowPut>& puts, IndexHandoff* handoff) {
  counts_.reset();
  sqlite3* db = handle();
  if (auto st = Exec(db, "BEGIN IMMEDIATE", "cannot write the session database"); !st) {
    return std::unexpected(st.error());
  }
  IndexHandoff none;
  IndexHandoff& h = handoff ? *handoff : none;
  // Bodies past the claim wait for the indexer as they are (it indexes no seq above the claim it
  // read); a flow written at a seq the indexer may have passed is listed in fts_pending.
  const int64_t list_upto = static_cast<int64_t>(std::min<uint64_t>(h.claim, INT64_MAX));
  int64_t top = 0;      // the highest seq written with bodies
  int64_t listed = 0;   // the last fts_pending id listed
  int rc;
  if (h.prune_upto > pruned_) {
    prune_.Bind(1, h.prune_upto);
    if (auto st = prune_.Run(); !st) {
      (void)Exec(db, "ROLLBACK");
      return Fail(StrCat("cannot write the session database: ", st.error().message));
    }
  }
  size_t written = 0;
  std::string json;
  for (const FlowPut& p : puts) {
    const Flow& f = *p.flow;
    const bool done = f.state == FlowState::kDone;
    const bool req_body = done && f.request && !f.request->body.content.empty();
    const bool res_body = done && f.response && !f.response->body.content.empty();
    std::string req_ce = req_body ? ContentCodings(f.request->headers) : std::string();
    std::string res_ce = res_body ? ContentCodings(f.response->headers) : std::string();
    const int64_t decoded_size = res_body ? DecodedSize(f.response->body, res_ce) : -1;
    FlowRow row = RowFromFlow(f, p.seq, decoded_size);
    const std::string rhost = ReversedHost(row.host);
    // The JSON without body contents: the bytes live once, in bodies. The caller may have made
    // it already (with the session log's line).
    std::string_view flow_json = p.json;
    if (flow_json.empty()) {
      json.clear();
      AppendFlowJsonLine(f, json, BodyContent::kOmit);
      flow_json = json;
    }
    Stmt& s = p.mode == FlowPut::Mode::kImport ? import_ : upsert_;
    BindRow(s, row, rhost);
    s.BindRef(29, p.source);
    if (p.hash.empty()) {
      s.BindNull(30);
    } else {
      s.BindRef(30, p.hash);
    }
    s.BindRef(31, std::string_view());  // the JSON goes to flow_json, below
    // No RETURNING: SQLite runs it as a trigger program with a table of its own per statement,
    // which cost more than the insert. changes() says whether the row was written.
    rc = s.Step();
    if (rc != SQLITE_DONE) {
      std::string m = s.message();
      s.Reset();
      (void)Exec(db, "ROLLBACK");
      return Fail(StrCat("cannot write the session database: ", m));
    }
    s.Reset();
    const bool changed = sqlite3_changes64(db) > 0;
    int64_t seq = static_cast<int64_t>(p.seq);
    if (changed && sqlite3_last_insert_rowid(db) != seq) {
      // An update, not an insert of seq: the row may hold this id under another seq (a flow
      // published again after it was recorded), and its bodies go with that row.
      seq_of_id_.Bind(1, std::string_view(row.id));
      if (seq_of_id_.Step() == SQLITE_ROW) seq = seq_of_id_.Int(0);
      seq_of_id_.Reset();
    }
    if (!changed) continue;
    ++written;
    json_.Bind(1, seq).BindRef(2, flow_json);
    if (auto st = json_.Run(); !st) {
      (void)Exec(db, "ROLLBACK");
      return Fail(StrCat("cannot write the session database: ", st.error().message));
    }
    if (!done) continue;
    auto put_body = [&](int side, const BodyRecord& b, const std::string& ce) -> bool {
      if (b.content.empty()) return true;
      body_.Bind(1, seq).Bind(2, int64_t{side}).BindBlobRef(3, b.content).BindRef(4, ce);
      return body_.Run().has_value();
    };
    bool ok = (!f.request || put_body(0, f.request->body, req_ce)) &&
              (!f.response || put_body(1, f.response->body, res_ce));
    if (req_body || res_body) top = std::max(top, seq);
    if (ok && (req_body || res_body) && seq <= list_upto) {
      // Indexing the text (FTS5 trigrams: a third of the writer's work) is the indexer's, on its
      // own thread and file; the row, its bodies and every filter but body: are there at the
      // commit. Past the claim, the bodies themselves say so; behind it, the flow is listed.
      pending_.Bind(1, seq).BindRef(2, req_ce).BindRef(3, res_ce);
      ok = pending_.Run().has_value();
      if (ok) listed = sqlite3_last_insert_rowid(db);
    }
    if (!ok) {
      std::string m = sqlite3_errmsg(db);
      (void)Exec(db, "ROLLBACK");
      return Fail(StrCat("cannot write the session database: ", m));
    }
  }
  if (auto st = Exec(db, "COMMIT", "cannot write the session database"); !st) {
    (void)Exec(db, "ROLLBACK");
    return std::unexpected(st.error());
  }
  pruned_ = std::max(pruned_, h.prune_upto);
  if (listed != 0) h.last_listed = listed;
  if (top > 0 && h.claim != UINT64_MAX) h.claim = std::max<uint64_t>(h.claim, static_cast<uint64_t>(top));
  return written;
}

Result<bool> SessionDb::DropOldIndex() {
  auto exists = Stmt::Prepare(handle(), "SELECT count(*) FROM sqlite_schema WHERE name='fts'");
  if (!exists) return std::unexpected(exists.error());
  if (exists->Step() != SQLITE_ROW) return Fail(StrCat("cannot read the session database: ", exists->message()));
  const bool old = exists->Int(0) != 0;
  exists = Stmt();
  if (!old) return false;
  // One statement, its own transaction: FTS5 drops its shadow tables with it.
  if (auto st = Exec(handle(), "DROP TABLE fts", StrCat("cannot drop the old search index of ", path_)); !st) {
    return std::unexpected(st.error());
  }
  return true;
}

Result<std::shared_ptr<const Flow>> SessionDb::LoadFlow(uint64_t seq, std::string_view json) {
  std::string stored;
  if (json.empty()) {
    // Written by schema 5 or later: the row's JSON is in flow_json.
    if (!get_json_) {
      auto p = Stmt::Prepare(handle(), "SELECT json FROM flow_json WHERE seq=?1");
      if (!p) return std::unexpected(p.error());
      get_json_ = std::move(*p);
    }
    get_json_.Bind(1, static_cast<int64_t>(seq));
    int rc = get_json_.Step();
    if (rc == SQLITE_ROW) stored = get_json_.Text(0);
    get_json_.Reset();
    if (rc != SQLITE_ROW) return Fail(StrCat("flow ", seq, " in the session database has no JSON"));
    json = stored;
  }
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded()) return Fail(StrCat("flow ", seq, " in the session database is not valid JSON"));
  auto flow = FlowFromJson(j);
  if (!flow) return std::unexpected(flow.error());
  if (!get_body_) {
    auto p = Stmt::Prepare(handle(), "SELECT side, content FROM bodies WHERE seq=?1");
    if (!p) return std::unexpected(p.error());
    get_body_ = std::move(*p);
  }
  get_body_.Bind(1, static_cast<int64_t>(seq));
  while (get_body_.Step() == SQLITE_ROW) {
    const void* blob = sqlite3_column_blob(get_body_.get(), 1);
    std::string content(static_cast<const char*>(blob),
                        static_cast<size_t>(sqlite3_column_bytes(get_body_.get(), 1)));
    if (get_body_.Int(0) == 0 && flow->request) flow->request->body.content = std::move(content);
    if (get_body_.Int(0) == 1 && flow->response) flow->response->body.content = std::move(content);
  }
  get_body_.Reset();
  return std::make_shared<const Flow>(std::move(*flow));
}

namespace {

const char* SortColumn(std::string_view sort) {
  if (sort == "method") return "method";
  if (sort == "host") return "host";
  if (sort == "path") return "path";
  if (sort == "status") return "status";
  if (sort == "type") return "type";
  if (sort == "size") return "size";
  if (sort == "dur") return "dur";
  return nullptr;
}

struct Deadline {
  std::chrono::steady_clock::time_point end;
  static int Check(void* arg) {
    return std::chrono::steady_clock::now() > static_cast<Deadline*>(arg)->end ? 1 : 0;
  }
};

}  // namespace

Result<ListPage> SessionDb::List(const ListQuery& q) {
  const char* column = q.sort == "time" || q.sort.empty() ? nullptr : SortColumn(q.sort);
  if (column == nullptr && !(q.sort == "time" || q.sort.empty())) {
    return Fail(StrCat("cannot sort by '", q.sort, "' (time, method, host, path, status, type, size or dur)"));
  }
  std::string sql = StrCat("SELECT ", kRowColumns, ", json FROM flows WHERE ", kVisible);
  if (!q.where.empty()) sql += StrCat(" AND (", q.where, ")");
  const int first_arg = 1;
  int n = first_arg + static_cast<int>(q.where_args.size());
  int cursor_arg = 0;
  if (column == nullptr) {
    if (q.descending && q.before > 0) {
      sql += StrCat(" AND seq<?", n);
      cursor_arg = n++;
    } else if (!q.descending && q.after > 0) {
      sql += StrCat(" AND seq>?", n);
      cursor_arg = n++;
    }
    sql += q.descending ? " ORDER BY seq DESC" : " ORDER BY seq ASC";
  } else {
    sql += StrCat(" ORDER BY ", column, q.descending ? " DESC" : " ASC", ", seq DESC LIMIT -1 OFFSET ?", n);
    cursor_arg = n++;
  }
  auto prepared = Stmt::Prepare(handle(), sql);
  if (!prepared) return std::unexpected(prepared.error());
  Stmt& s = *prepared;
  for (size_t i = 0; i < q.where_args.size(); ++i) s.Bind(first_arg + static_cast<int>(i), q.where_args[i]);
  if (cursor_arg != 0) {
    s.Bind(cursor_arg, static_cast<int64_t>(column ? q.offset : (q.descending ? q.before : q.after)));
  }
  Deadline deadline;
  if (q.budget_seconds > 0) {
    deadline.end = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(q.budget_seconds));
    sqlite3_progress_handler(handle(), 10'000, &Deadline::Check, &deadline);
  }
  ListPage page;
  uint64_t last_seq = 0;
  bool more = false;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    if (page.flows.size() >= q.limit || page.scanned >= q.max_scan) {
      more = true;
      break;
    }
    ++page.scanned;
    FlowRow row = RowFromStmt(s);
    last_seq = row.seq;
    std::shared_ptr<const Flow> full;
    if (q.full_flows) {
      auto loaded = LoadFlow(row.seq, s.Text(31));
      if (!loaded) continue;  // an unreadable row is left out, never fatal for the page
      full = std::move(*loaded);
    }
    if (q.match) {
      bool ok = full ? q.match(*full) : q.match(FlowFromRow(row));
      if (!ok) continue;
    }
    page.flows.push_back(ListedFlow{std::move(row), std::move(full)});
    if (q.budget_seconds > 0 && Deadline::Check(&deadline)) {
      page.timed_out = true;
      more = true;
      break;
    }
  }
  if (q.budget_seconds > 0) sqlite3_progress_handler(handle(), 0, nullptr, nullptr);
  if (rc == SQLITE_INTERRUPT) {
    page.timed_out = true;
    more = last_seq != 0;
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return Fail(StrCat("cannot read the session database: ", s.message()));
  }
  if (more) {
    if (column != nullptr) {
      page.next_offset = q.offset + page.scanned;
    } else if (q.descending) {
      page.next_before = last_seq;
    } else {
      page.next_after = last_seq;
    }
  }
  return page;
}

Result<std::optional<StoredFlow>> SessionDb::Get(std::string_view id) {
  auto s = Stmt::Prepare(handle(), StrCat("SELECT ", kRowColumns, ", json FROM flows WHERE id=?1 AND ", kVisible));
  if (!s) return std::unexpected(s.error());
  s->Bind(1, id);
  int rc = s->Step();
  if (rc == SQLITE_DONE) return std::optional<StoredFlow>();
  if (rc != SQLITE_ROW) return Fail(StrCat("cannot read the session database: ", s->message()));
  StoredFlow out;
  out.row = RowFromStmt(*s);
  auto flow = LoadFlow(out.row.seq, s->Text(31));
  if (!flow) return std::unexpected(flow.error());
  out.flow = std::move(*flow);
  return std::optional<StoredFlow>(std::move(out));
}

namespace {

Result<size_t> RunChanges(sqlite3* db, std::string_view sql, const std::function<void(Stmt&)>& bind) {
  auto s = Stmt::Prepare(db, sql);
  if (!s) return std::unexpected(s.error());
  bind(*s);
  if (auto st = s->Run(); !st) return std::unexpected(st.error());
  return static_cast<size_t>(sqlite3_changes64(db));
}

}  // namespace

Result<bool> SessionDb::SetMarked(std::string_view id, bool marked) {
  auto n = RunChanges(handle(), StrCat("UPDATE flows SET marked=?2 WHERE id=?1 AND ", kVisible),
                      [&](Stmt& s) { s.Bind(1, id).Bind(2, int64_t{marked}); });
  if (!n) return std::unexpected(n.error());
  return *n > 0;
}

Result<bool> SessionDb::SetComment(std::string_view id, std::string_view comment) {
  auto n = RunChanges(handle(), StrCat("UPDATE flows SET comment=?2 WHERE id=?1 AND ", kVisible),
                      [&](Stmt& s) { s.Bind(1, id).Bind(2, comment); });
  if (!n) return std::unexpected(n.error());
  return *n > 0;
}

Result<bool> SessionDb::Delete(std::string_view id) {
  counts_.reset();
  auto n = DeleteWhere(StrCat("id=?1 AND ", kVisible), [&](Stmt& s) { s.Bind(1, id); });
  if (!n) return std::unexpected(n.error());
  return *n > 0;
}

Result<size_t> SessionDb::DeleteWhere(const std::string& condition, const std::function<void(Stmt&)>& bind) {
  sqlite3* db = handle();
  if (auto st = Exec(db, "BEGIN IMMEDIATE", "cannot write the session database"); !st) {
    return std::unexpected(st.error());
  }
  auto a = RunChanges(db, StrCat("DELETE FROM bodies WHERE seq IN (SELECT seq FROM flows WHERE ", condition, ")"), bind);
  // The search index (another file, another thread's) keeps the deleted flows' text: a body:
  // filter selects from flows, and the filter confirms every candidate on the full flow.
  auto b = a;
  if (b) b = RunChanges(db, StrCat("DELETE FROM fts_pending WHERE seq IN (SELECT seq FROM flows WHERE ", condition, ")"), bind);
  if (b) b = RunChanges(db, StrCat("DELETE FROM flow_json WHERE seq IN (SELECT seq FROM flows WHERE ", condition, ")"), bind);
  auto c = b ? RunChanges(db, StrCat("DELETE FROM flows WHERE ", condition), bind) : b;
  if (!c) {
    (void)Exec(db, "ROLLBACK");
    return std::unexpected(c.error());
  }
  if (auto st = Exec(db, "COMMIT", "cannot write the session database"); !st) {
    (void)Exec(db, "ROLLBACK");
    return std::unexpected(st.error());
  }
  return *c;
}

Result<uint64_t> SessionDb::MetaNumber(std::string_view key) {
  auto v = GetMeta(key);
  if (!v) return std::unexpected(v.error());
  return *v ? std::strtoull((*v)->c_str(), nullptr, 10) : 0;
}

Result<size_t> SessionDb::Clear(int64_t token, uint64_t upto) {
  counts_.reset();
  auto floor = MetaNumber("floor");
  if (!floor) return std::unexpected(floor.error());
  if (upto <= *floor) return 0;
  auto count = Stmt::Prepare(handle(), "SELECT count(*) FROM flows WHERE +seq>?1 AND +seq<=?2");
  if (!count) return std::unexpected(count.error());
  count->Bind(1, static_cast<int64_t>(*floor)).Bind(2, static_cast<int64_t>(upto));
  size_t hidden = count->Step() == SQLITE_ROW ? static_cast<size_t>(count->Int(0)) : 0;
  count->Reset();
  sqlite3* db = handle();
  if (auto st = Exec(db, "BEGIN IMMEDIATE", "cannot write the session database"); !st) {
    return std::unexpected(st.error());
  }
  Status st = SetMeta("prev_floor", std::to_string(*floor));
  if (st) st = SetMeta("floor", std::to_string(upto));
  if (st) st = SetMeta("clear_token", std::to_string(token));
  if (st) st = Exec(db, "COMMIT", "cannot write the session database");
  if (!st) {
    (void)Exec(db, "ROLLBACK");
    return std::unexpected(st.error());
  }
  return hidden;
}

Result<size_t> SessionDb::Undo(int64_t token) {
  counts_.reset();
  auto current = GetMeta("clear_token");
  if (!current) return std::unexpected(current.error());
  if (!*current || **current != std::to_string(token)) {
    return Fail("nothing to undo: that clear is not the latest one");
  }
  auto floor = MetaNumber("floor");
  auto prev = MetaNumber("prev_floor");
  auto purged = MetaNumber("purged");
  if (!floor || !prev || !purged) return Fail("cannot read the session database");
  if (*purged > *prev) return Fail("too late to undo: the cleared flows are already deleted");
  auto count = Stmt::Prepare(handle(), "SELECT count(*) FROM flows WHERE +seq>?1 AND +seq<=?2");
  if (!count) return std::unexpected(count.error());
  count->Bind(1, static_cast<int64_t>(*prev)).Bind(2, static_cast<int64_t>(*floor));
  size_t shown = count->Step() == SQLITE_ROW ? static_cast<size_t>(count->Int(0)) : 0;
  count->Reset();
  sqlite3* db = handle();
  if (auto st = Exec(db, "BEGIN IMMEDIATE", "cannot write the session database"); !st) {
    return std::unexpected(st.error());
  }
  Status st = SetMeta("floor", std::to_string(*prev));
  if (st) st = SetMeta("clear_token", "");
  if (st) st = Exec(db, "COMMIT", "cannot write the session database");
  if (!st) {
    (void)Exec(db, "ROLLBACK");
    return std::unexpected(st.error());
  }
  return shown;
}

Result<size_t> SessionDb::Purge() {
  counts_.reset();
  auto floor = MetaNumber("floor");
  auto purged = MetaNumber("purged");
  if (!floor || !purged) return Fail("cannot read the session database");
  if (*floor <= *purged) return 0;
  int64_t upto = static_cast<int64_t>(*floor);
  auto n = DeleteWhere("seq<=?1", [&](Stmt& s) { s.Bind(1, upto); });
  if (!n) return std::unexpected(n.error());
  if (auto st = SetMeta("purged", std::to_string(upto)); !st) return std::unexpected(st.error());
  return *n;
}

Result<SessionCounts> SessionDb::Counts() {
  // The first and last flows by seq (the primary key), never a scan of the table: a million-flow
  // session answers at once. count(*) walks the smallest index.
  auto s = Stmt::Prepare(handle(),
                         // "+seq": not a range of the table (2 GiB for a million flows) but a
                         // walk of the smallest index, whose entries carry the seq too.
                         StrCat("SELECT (SELECT count(*) FROM flows WHERE +", kVisible, "), "
                                "(SELECT coalesce(max(seq),0) FROM flows), "
                                "(SELECT t FROM flows WHERE ", kVisible, " ORDER BY seq ASC LIMIT 1), "
                                "(SELECT t FROM flows WHERE ", kVisible, " ORDER BY seq DESC LIMIT 1)"));
  if (!s) return std::unexpected(s.error());
  if (s->Step() != SQLITE_ROW) return Fail(StrCat("cannot read the session database: ", s->message()));
  SessionCounts c;
  c.flows = static_cast<uint64_t>(s->Int(0));
  c.max_seq = static_cast<uint64_t>(s->Int(1));
  c.first = s->Double(2);
  c.last = s->Double(3);
  return c;
}

Result<SessionCounts> SessionDb::RecentCounts(std::chrono::milliseconds max_age) {
  auto now = std::chrono::steady_clock::now();
  if (counts_ && now - counts_at_ <= max_age) return *counts_;
  auto c = Counts();
  if (!c) return c;
  counts_ = *c;
  counts_at_ = now;
  return c;
}

Result<uint64_t> SessionDb::MaxSeq() {
  auto s = Stmt::Prepare(handle(), "SELECT coalesce(max(seq),0) FROM flows");
  if (!s) return std::unexpected(s.error());
  if (s->Step() != SQLITE_ROW) return Fail(StrCat("cannot read the session database: ", s->message()));
  return static_cast<uint64_t>(s->Int(0));
}

Result<std::optional<std::string>> SessionDb::GetMeta(std::string_view key) {
  auto s = Stmt::Prepare(handle(), "SELECT value FROM meta WHERE key=?1");
  if (!s) return std::unexpected(s.error());
  s->Bind(1, key);
  int rc = s->Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(std::string(s->Text(0)));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return Fail(StrCat("cannot read the session database: ", s->message()));
}

Status SessionDb::SetMeta(std::string_view key, std::string_view value) {
  auto n = RunChanges(handle(), "INSERT OR REPLACE INTO meta(key,value) VALUES(?1,?2)",
                      [&](Stmt& s) { s.Bind(1, key).Bind(2, value); });
  if (!n) return std::unexpected(n.error());
  return {};
}

}  // namespace mitmd::store
