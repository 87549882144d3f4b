// The search index in its own file (store/search_index.h): slices, the writer/indexer hand-off
// and its race, restarts, missing/unreadable/foreign index files, the schema 7 -> 8 upgrade, and
// deletes that leave text behind in the index.

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "core/strings.h"
#include "flow/filter.h"
#include "store/filter_sql.h"
#include "store/search_index.h"
#include "store/session_db.h"
#include "support/temp_dir.h"
#include "unit/store_test_search.h"
#include "unit/web_test_flows.h"

namespace mitmd {
namespace {

using store::FlowPut;
using store::IndexHandoff;
using store::ListQuery;
using store::SearchIndex;
using store::SessionDb;
using testing::BodySearch;
using testing::MakeFlow;
using testing::TempDir;

std::unique_ptr<SessionDb> OpenDb(const std::string& path, SessionDb::Mode mode = SessionDb::Mode::kReadWrite) {
  auto db = SessionDb::Open(path, mode);
  EXPECT_TRUE(db) << db.error().message;
  return db ? std::move(*db) : nullptr;
}

std::unique_ptr<SearchIndex> OpenIndex(const std::string& path, Logger* log = nullptr) {
  auto index = SearchIndex::Open(path, log);
  EXPECT_TRUE(index) << index.error().message;
  return index ? std::move(*index) : nullptr;
}

FlowPut Put(uint64_t seq, Flow f) {
  return FlowPut{FlowPut::Mode::kUpsert, seq, std::make_shared<const Flow>(std::move(f)), "", ""};
}

int64_t CountRows(SessionDb& db, const std::string& sql) {
  auto s = store::Stmt::Prepare(db.handle(), sql);
  EXPECT_TRUE(s) << s.error().message;
  if (!s || s->Step() != SQLITE_ROW) return -1;
  return s->Int(0);
}

std::string Text(SessionDb& db, const std::string& sql) {
  auto s = store::Stmt::Prepare(db.handle(), sql);
  EXPECT_TRUE(s) << s.error().message;
  if (!s || s->Step() != SQLITE_ROW) return "(none)";
  return s->IsNull(0) ? "" : std::string(s->Text(0));
}

// What the index file itself matches (no candidates, no filter).
std::string Indexed(SessionDb& reader, std::string_view word) {
  return Text(reader, StrCat("SELECT group_concat(rowid) FROM (SELECT rowid FROM temp.search_fts WHERE body LIKE '%", word,
                             "%' ORDER BY rowid)"));
}


// Every row the index's candidates give before the filter (what a stale document could add).
std::vector<uint64_t> Candidates(SessionDb& db, std::string_view text) {
  store::SqlPrefilter pre = store::CompilePrefilter(text);
  ListQuery q;
  q.where = pre.where;
  q.where_args = pre.args;
  auto page = db.List(q);
  EXPECT_TRUE(page) << page.error().message;
  std::vector<uint64_t> seqs;
  if (page) {
    for (const auto& e : page->flows) seqs.push_back(e.row.seq);
  }
  return seqs;
}

size_t IndexAll(SearchIndex& index, uint64_t claim) {
  size_t total = 0;
  for (int i = 0; i < 100; ++i) {
    auto n = index.IndexSlice(claim, 10);
    EXPECT_TRUE(n) << n.error().message;
    if (!n || *n == 0) break;
    total += *n;
  }
  return total;
}

// Rows are committed without their text indexed; the indexer fills its own file in slices, and a
// body: search finds a flow whether its text is indexed or not.
TEST(SearchIndexTest, BodiesAreSearchableBeforeAndAfterTheirTextIsIndexed) {
  TempDir dir;
  const std::string path = dir.File("s.sqlite");
  auto db = OpenDb(path, SessionDb::Mode::kWriter);
  ASSERT_TRUE(db);
  auto index = OpenIndex(path);
  ASSERT_TRUE(index);
  auto reader = OpenDb(path);
  ASSERT_TRUE(reader);
  IndexHandoff h;
  h.claim = 0;
  std::vector<FlowPut> puts;
  for (int i = 1; i <= 5; ++i) {
    puts.push_back(Put(static_cast<uint64_t>(i),
                       MakeFlow({.response_body = i == 2 || i == 4 ? "a Needle here" : "hay", .gzip = i == 4})));
  }
  ASSERT_TRUE(db->Write(puts, &h));
  EXPECT_EQ(h.claim, 5u);
  EXPECT_EQ(h.last_listed, 0);  // past the claim: nothing listed, the cursor will reach them
  EXPECT_EQ(*index->Waiting(h.claim), 5);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{4, 2}));

  auto n = index->IndexSlice(h.claim, 2);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 2u);  // the oldest two
  EXPECT_EQ(index->cursor(), 2u);
  EXPECT_EQ(*index->Waiting(h.claim), 3);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{4, 2}));  // half indexed
  EXPECT_EQ(IndexAll(*index, h.claim), 3u);
  EXPECT_EQ(*index->Waiting(h.claim), 0);
  EXPECT_EQ(Indexed(*reader, "needle"), "2,4");  // the gzipped one decoded
  EXPECT_EQ(CountRows(*reader, "SELECT count(*) FROM temp.search_pending"), 0);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{4, 2}));
  // The session file holds no index of its own.
  EXPECT_EQ(CountRows(*reader, "SELECT count(*) FROM main.sqlite_schema WHERE name='fts'"), 0);

  // The search hands FTS5 its LIKE (no ESCAPE, which FTS5 cannot take: it read every document);
  // LIKE's own wildcards in the value find more rows, and the filter keeps the right ones.
  store::SqlPrefilter pre = store::CompilePrefilter("body:needle");
  auto plan = store::Stmt::Prepare(reader->handle(), StrCat("EXPLAIN QUERY PLAN SELECT seq FROM flows WHERE ", pre.where));
  ASSERT_TRUE(plan);
  plan->Bind(1, pre.args[0]);
  std::string steps;
  while (plan->Step() == SQLITE_ROW) steps += StrCat(plan->Text(3), "\n");
  EXPECT_NE(steps.find("VIRTUAL TABLE INDEX 0:L"), std::string::npos) << steps;
  plan = store::Stmt();
  ASSERT_TRUE(db->Write({Put(7, MakeFlow({.response_body = "now 50%_off"})), Put(8, MakeFlow({.response_body = "50a_off"}))}, &h));
  EXPECT_EQ(IndexAll(*index, h.claim), 2u);
  EXPECT_EQ(BodySearch(*reader, "body:50%_off"), std::vector<uint64_t>{7});

  // A slice stops after the flow whose text takes it past its byte budget.
  ASSERT_TRUE(db->Write({Put(9, MakeFlow({.response_body = "ten bytes9"})), Put(10, MakeFlow({.response_body = "tenbytes10"})),
                         Put(11, MakeFlow({.response_body = "tenbytes11"}))}, &h));
  EXPECT_EQ(*index->IndexSlice(h.claim, 10, 15), 2u);  // 10 bytes, then 20: past the budget
  EXPECT_EQ(*index->Waiting(h.claim), 1);
  EXPECT_EQ(BodySearch(*reader, "body:bytes11"), std::vector<uint64_t>{11});  // waiting: still found
  EXPECT_EQ(*index->IndexSlice(h.claim, 10, 15), 1u);
  EXPECT_EQ(*index->IndexSlice(h.claim, 10, 15), 0u);

  // A read-only open (another session's view, sessions export) attaches the index read-only.
  auto other = OpenDb(path, SessionDb::Mode::kReadOnly);
  ASSERT_TRUE(other);
  EXPECT_EQ(Indexed(*other, "needle"), "2,4");
  EXPECT_EQ(BodySearch(*other, "body:needle"), (std::vector<uint64_t>{4, 2}));
  // The index merges 16 segments a level and keeps no column sizes.
  EXPECT_EQ(CountRows(*reader, "SELECT v FROM search.fts_config WHERE k='automerge'"), 16);
  EXPECT_EQ(CountRows(*reader, "SELECT count(*) FROM search.sqlite_schema WHERE name='fts_docsize'"), 0);
}

// The race the single-thread design could not have: the indexer reads the claim and takes its
// snapshot; the writer then commits the late body of a flow at a seq <= that claim (a flow that
// was live while later ones finished); the indexer commits its slice, its cursor past that seq.
// The late flow was listed, and the next slice indexes it.
TEST(SearchIndexTest, ALateBodyCommittedAfterTheIndexersSnapshotIsListedAndIndexed) {
  TempDir dir;
  const std::string path = dir.File("s.sqlite");
  auto db = OpenDb(path, SessionDb::Mode::kWriter);
  ASSERT_TRUE(db);
  auto index = OpenIndex(path);
  ASSERT_TRUE(index);
  auto reader = OpenDb(path);
  ASSERT_TRUE(reader);
  IndexHandoff h;
  h.claim = 0;
  Flow live = MakeFlow({.host = "slow.test"});
  live.id = "slow";
  live.state = FlowState::kLive;
  live.response.reset();
  ASSERT_TRUE(db->Write({Put(1, live), Put(2, MakeFlow({.response_body = "quick hay"})),
                         Put(3, MakeFlow({.response_body = "more hay", .gzip = true}))}, &h));
  EXPECT_EQ(h.claim, 3u);
  const uint64_t claim = h.claim;  // what the indexer reads before its snapshot

  auto slice = index->Read(claim, 100);
  ASSERT_TRUE(slice) << slice.error().message;
  EXPECT_EQ(slice->flows, 2u);
  EXPECT_EQ(slice->cursor, 3u);
  // The writer, between the indexer's snapshot and its commit: the live flow finishes at seq 1,
  // behind the claim, so it is listed.
  Flow done = MakeFlow({.host = "slow.test", .response_body = "late needle", .gzip = true});
  done.id = "slow";
  done.revision = 1;
  h.prune_upto = index->pending_done();
  ASSERT_TRUE(db->Write({Put(1, done)}, &h));
  EXPECT_EQ(h.last_listed, 1);
  EXPECT_EQ(CountRows(*reader, "SELECT count(*) FROM fts_pending"), 1);
  ASSERT_TRUE(index->Commit(*slice));
  EXPECT_EQ(index->cursor(), 3u);  // past seq 1, whose late body the snapshot did not hold
  EXPECT_EQ(Indexed(*reader, "needle"), "");
  // Not indexed yet, still found: the listed flow is a candidate.
  EXPECT_EQ(BodySearch(*reader, "body:needle"), std::vector<uint64_t>{1});
  EXPECT_EQ(*index->Waiting(h.claim), 1);

  EXPECT_EQ(IndexAll(*index, h.claim), 1u);
  EXPECT_EQ(index->pending_done(), 1);
  EXPECT_EQ(Indexed(*reader, "needle"), "1");  // decoded from gzip
  EXPECT_EQ(Indexed(*reader, "hay"), "2,3");
  EXPECT_EQ(CountRows(*reader, "SELECT count(*) FROM temp.search_pending"), 0);
  // The writer prunes what the indexer has committed, in its next batch; ids are never reused.
  h.prune_upto = index->pending_done();
  Flow again = done;
  again.revision = 2;
  ASSERT_TRUE(db->Write({Put(1, again)}, &h));
  EXPECT_EQ(CountRows(*reader, "SELECT group_concat(id) FROM fts_pending"), 2);
  // Indexing seq 1 twice is harmless: one document for it.
  EXPECT_EQ(IndexAll(*index, h.claim), 1u);
  EXPECT_EQ(CountRows(*reader, "SELECT count(*) FROM search.fts WHERE rowid=1"), 1);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), std::vector<uint64_t>{1});
}

// kill -9 between commits: each file holds what its last commit says. The index lags, the
// process dies (nothing more is committed), a new indexer opens both files and everything becomes
// searchable; body: finds every flow in between.
TEST(SearchIndexTest, AfterACrashTheLaggingIndexCatchesUpAndFindsEverything) {
  TempDir dir;
  const std::string path = dir.File("s.sqlite");
  IndexHandoff h;
  {
    auto db = OpenDb(path, SessionDb::Mode::kWriter);
    ASSERT_TRUE(db);
    auto index = OpenIndex(path);
    ASSERT_TRUE(index);
    h.claim = std::max<uint64_t>(*db->MaxSeq(), index->cursor());
    std::vector<FlowPut> puts;
    for (int i = 1; i <= 30; ++i) puts.push_back(Put(static_cast<uint64_t>(i), MakeFlow({.response_body = StrCat("word", i, "x")})));
    ASSERT_TRUE(db->Write(puts, &h));
    EXPECT_EQ(*index->IndexSlice(h.claim, 10), 10u);
    // A rewrite behind the cursor, listed; the index has not taken it when the process dies.
    Flow f = MakeFlow({.response_body = "rewritten needle"});
    f.id = puts[4].flow->id;  // seq 5
    f.revision = 9;
    h.prune_upto = index->pending_done();
    ASSERT_TRUE(db->Write({Put(5, f)}, &h));
    // The indexer's next slice is read but never committed: the crash.
    ASSERT_TRUE(index->Read(h.claim, 10));
  }
  auto reader = OpenDb(path);
  ASSERT_TRUE(reader);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), std::vector<uint64_t>{5});
  EXPECT_EQ(BodySearch(*reader, "body:word25x"), std::vector<uint64_t>{25});
  EXPECT_EQ(Indexed(*reader, "word25x"), "");

  // The restart: the writer's claim starts at the highest seq in the file.
  auto db = OpenDb(path, SessionDb::Mode::kWriter);
  auto index = OpenIndex(path);
  ASSERT_TRUE(db && index);
  EXPECT_EQ(index->cursor(), 10u);
  const uint64_t claim = std::max<uint64_t>(*db->MaxSeq(), index->cursor());
  EXPECT_EQ(*index->Waiting(claim), 21);  // 11..30 and the listed rewrite
  EXPECT_EQ(IndexAll(*index, claim), 21u);
  EXPECT_EQ(*index->Waiting(claim), 0);
  EXPECT_EQ(Indexed(*reader, "needle"), "5");
  EXPECT_EQ(Indexed(*reader, "word25x"), "25");
  EXPECT_EQ(CountRows(*reader, "SELECT count(*) FROM search.fts"), 30);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), std::vector<uint64_t>{5});
  EXPECT_EQ(BodySearch(*reader, "body:word5x"), std::vector<uint64_t>{});  // rewritten
}

// The index is derived data: missing, unreadable, or another session file's (a session removed
// and recorded again under its name) is rebuilt from scratch, with a log line, never an error.
// Readers attach it only when it is this session's.
TEST(SearchIndexTest, AMissingUnreadableOrForeignIndexIsRebuilt) {
  TempDir dir;
  const std::string path = dir.File("s.sqlite");
  const std::string index_path = SearchIndex::PathFor(path);
  const std::string log_path = dir.File("log");
  FILE* log_file = std::fopen(log_path.c_str(), "w+");
  ASSERT_NE(log_file, nullptr);
  Logger log(fileno(log_file), LogLevel::kInfo);
  // What the log says since the last call.
  size_t seen = 0;
  auto said = [&] {
    std::ifstream in(log_path);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string fresh = all.substr(std::min(seen, all.size()));
    seen = all.size();
    return fresh;
  };
  {
    auto db = OpenDb(path, SessionDb::Mode::kWriter);
    ASSERT_TRUE(db);
    IndexHandoff h;
    h.claim = 0;
    ASSERT_TRUE(db->Write({Put(1, MakeFlow({.response_body = "first needle"}))}, &h));
  }
  auto rebuilt = [&](std::string_view why) {
    auto index = OpenIndex(path, &log);
    EXPECT_TRUE(index);
    if (!index) return;
    EXPECT_EQ(index->cursor(), 0u);
    EXPECT_EQ(IndexAll(*index, 1), 1u);
    auto reader = OpenDb(path, SessionDb::Mode::kReadOnly);
    EXPECT_EQ(Indexed(*reader, "needle"), "1");
    const std::string text = said();
    EXPECT_NE(text.find("rebuilding the session's search index"), std::string::npos) << text;
    EXPECT_NE(text.find(why), std::string::npos) << text;
  };
  // Missing.
  EXPECT_NE(::access(index_path.c_str(), F_OK), 0);
  rebuilt("there was none");
  struct stat st{};
  ASSERT_EQ(::stat(index_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Opened again: kept as it is.
  {
    auto index = OpenIndex(path, &log);
    ASSERT_TRUE(index);
    EXPECT_EQ(index->cursor(), 1u);
    EXPECT_EQ(said(), "");
  }
  // Unreadable: not a database.
  for (const char* tail : {"", "-wal", "-shm"}) ::unlink(StrCat(index_path, tail).c_str());
  std::ofstream(index_path) << std::string(8192, 'x');
  {
    // A reader before the rebuild: no index, every body a candidate, no error.
    auto reader = OpenDb(path, SessionDb::Mode::kReadOnly);
    ASSERT_TRUE(reader);
    EXPECT_EQ(BodySearch(*reader, "body:needle"), std::vector<uint64_t>{1});
  }
  rebuilt("cannot use the search index");
  // Another session's: the same file name, another session file behind it.
  {
    TempDir other_dir;
    const std::string other = other_dir.File("s.sqlite");
    {
      auto db = OpenDb(other, SessionDb::Mode::kWriter);
      IndexHandoff h;
      h.claim = 0;
      ASSERT_TRUE(db->Write({Put(1, MakeFlow({.response_body = "other text"}))}, &h));
      auto index = OpenIndex(other);
      EXPECT_EQ(IndexAll(*index, 1), 1u);
    }
    for (const char* tail : {"", "-wal", "-shm"}) ::unlink(StrCat(index_path, tail).c_str());
    ASSERT_EQ(::rename(SearchIndex::PathFor(other).c_str(), index_path.c_str()), 0);
    auto reader = OpenDb(path, SessionDb::Mode::kReadOnly);
    ASSERT_TRUE(reader);
    EXPECT_EQ(Indexed(*reader, "other"), "");  // not attached: not this session's
    EXPECT_EQ(Candidates(*reader, "body:other"), std::vector<uint64_t>{1});  // every body
    EXPECT_EQ(BodySearch(*reader, "body:other"), std::vector<uint64_t>{});
  }
  rebuilt("another session file");
  std::fclose(log_file);
}

// Delete, Clear and Purge change the session file only; the index keeps the text of flows that
// are gone (the indexer never learns of them). No stale document makes body: return a wrong
// flow: candidates are rows of flows (the deleted are not there, the cleared are under the
// floor), each confirmed by the filter on the full flow, also when a seq is used again.
TEST(SearchIndexTest, DeletedClearedAndPurgedFlowsNeverMatch) {
  TempDir dir;
  const std::string path = dir.File("s.sqlite");
  auto db = OpenDb(path, SessionDb::Mode::kWriter);
  auto index = OpenIndex(path);
  auto reader = OpenDb(path);
  ASSERT_TRUE(db && index && reader);
  IndexHandoff h;
  h.claim = 0;
  std::vector<FlowPut> puts;
  for (int i = 1; i <= 6; ++i) puts.push_back(Put(static_cast<uint64_t>(i), MakeFlow({.response_body = StrCat("needle ", i)})));
  ASSERT_TRUE(db->Write(puts, &h));
  EXPECT_EQ(IndexAll(*index, h.claim), 6u);
  EXPECT_EQ(Indexed(*reader, "needle"), "1,2,3,4,5,6");

  ASSERT_TRUE(*reader->Delete(puts[5].flow->id));  // seq 6, the newest
  ASSERT_TRUE(*reader->Delete(puts[2].flow->id));  // seq 3
  EXPECT_EQ(*reader->Clear(1, 2), 2u);             // seqs 1, 2
  EXPECT_EQ(Indexed(*reader, "needle"), "1,2,3,4,5,6");  // stale documents
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{5, 4}));
  EXPECT_EQ(*reader->Purge(), 2u);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{5, 4}));
  // Seq 6 used again (the newest flow was deleted; a restart takes max seq + 1) by a flow
  // without the word: the stale document makes it a candidate, the filter rejects it. The claim
  // covers the index's cursor, so its own text is listed and indexed.
  h.claim = std::max<uint64_t>(*db->MaxSeq(), index->cursor());
  ASSERT_TRUE(db->Write({Put(6, MakeFlow({.response_body = "fresh hay"}))}, &h));
  EXPECT_EQ(h.last_listed, 1);
  EXPECT_EQ(Candidates(*reader, "body:needle"), (std::vector<uint64_t>{6, 5, 4}));
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{5, 4}));
  EXPECT_EQ(IndexAll(*index, h.claim), 1u);
  EXPECT_EQ(BodySearch(*reader, "body:fresh"), std::vector<uint64_t>{6});
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{5, 4}));
}

// What a new file of schema 7 held, by the old schema's SQL: the search index inside the session
// file, the cursor in its meta, fts_pending keyed by seq.
constexpr char kSchema7[] = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE flows(
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, t REAL NOT NULL, kind TEXT NOT NULL,
  state TEXT NOT NULL, revision INTEGER NOT NULL, method TEXT NOT NULL, scheme TEXT NOT NULL,
  host TEXT NOT NULL, port INTEGER NOT NULL, path TEXT NOT NULL, ver TEXT NOT NULL,
  status INTEGER NOT NULL, type TEXT NOT NULL, size INTEGER NOT NULL, wire_size INTEGER NOT NULL,
  dur REAL NOT NULL, tls TEXT NOT NULL, alpn TEXT NOT NULL, up_alpn TEXT NOT NULL,
  conn INTEGER NOT NULL, up INTEGER NOT NULL, reused INTEGER NOT NULL, insecure INTEGER NOT NULL,
  trunc INTEGER NOT NULL, err_phase TEXT NOT NULL, err TEXT NOT NULL, client TEXT NOT NULL,
  marked INTEGER NOT NULL DEFAULT 0, comment TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '', hash TEXT, json TEXT NOT NULL, rhost TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX flows_hash ON flows(hash) WHERE hash IS NOT NULL;
CREATE TABLE bodies(seq INTEGER NOT NULL, side INTEGER NOT NULL, content BLOB NOT NULL,
  ce TEXT NOT NULL DEFAULT '', PRIMARY KEY(seq, side)) WITHOUT ROWID;
CREATE VIRTUAL TABLE fts USING fts5(body, tokenize='trigram', detail='none', columnsize=0);
INSERT INTO fts(fts, rank) VALUES('automerge', 16);
CREATE TABLE fts_pending(seq INTEGER PRIMARY KEY, req_ce TEXT NOT NULL, res_ce TEXT NOT NULL);
CREATE TABLE flow_json(seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
INSERT INTO meta(key,value) VALUES('schema','7'),('created','1700000000');
)sql";

// A schema 7 file: read-only opens (not upgraded) search its own index; a read-write open
// upgrades it to 8 (the pending flows kept, a token; the old index and its shadow tables go when
// the writer drops them after start-up);
// the new index file is rebuilt from cursor 0, and body: finds everything throughout, including
// a gzipped body written before bodies.ce existed (ce '': its encoding from the flow's JSON).
TEST(SearchIndexTest, ASchemaSevenFileUpgradesAndItsIndexIsRebuilt) {
  TempDir dir;
  const std::string path = dir.File("s.sqlite");
  {
    // The flows' rows as this version writes them, copied into a file made by schema 7's SQL.
    const std::string scratch = dir.File("scratch.sqlite");
    auto db = OpenDb(scratch, SessionDb::Mode::kWriter);
    ASSERT_TRUE(db->Write({Put(1, MakeFlow({.response_body = "old gzipped needle", .gzip = true})),
                           Put(2, MakeFlow({.response_body = "old plain needle"})),
                           Put(3, MakeFlow({.response_body = "pending needle", .gzip = true})),
                           Put(4, MakeFlow({.response_body = "plain hay"}))}));
    db.reset();
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    store::SqlitePtr old(raw);
    ASSERT_TRUE(store::Exec(old.get(), StrCat("PRAGMA journal_mode=WAL;", kSchema7)));
    ASSERT_TRUE(store::Exec(old.get(), StrCat(
        "ATTACH '", scratch, "' AS s; "
        "INSERT INTO flows SELECT * FROM s.flows; INSERT INTO flow_json SELECT * FROM s.flow_json; "
        "INSERT INTO bodies(seq,side,content,ce) SELECT seq,side,content,ce FROM s.bodies; DETACH s; "
        // Seq 1 was written before schema 7: its encoding is not in bodies. 1 and 2 are indexed,
        // 3 was listed (recorded behind the cursor), 4 waits past the cursor.
        "UPDATE bodies SET ce='' WHERE seq=1; "
        "INSERT INTO fts(rowid,body) VALUES(1,'old gzipped needle'),(2,'old plain needle'); "
        "INSERT INTO fts_pending(seq,req_ce,res_ce) VALUES(3,'','gzip'); "
        "INSERT INTO meta(key,value) VALUES('indexed','3');")));
  }
  {
    auto ro = OpenDb(path, SessionDb::Mode::kReadOnly);
    ASSERT_TRUE(ro);
    EXPECT_EQ(Text(*ro, "SELECT value FROM meta WHERE key='schema'"), "7");
    EXPECT_EQ(Candidates(*ro, "body:needle"), (std::vector<uint64_t>{4, 3, 2, 1}));
    EXPECT_EQ(Candidates(*ro, "body:gzipped"), (std::vector<uint64_t>{4, 3, 1}));  // its own fts
    EXPECT_EQ(BodySearch(*ro, "body:needle"), (std::vector<uint64_t>{3, 2, 1}));
  }
  auto db = OpenDb(path, SessionDb::Mode::kWriter);
  ASSERT_TRUE(db);
  EXPECT_EQ(Text(*db, "SELECT value FROM meta WHERE key='schema'"), "8");
  // The old index goes after start-up (the writer's first act), shadow tables and all.
  EXPECT_GT(CountRows(*db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'fts%' AND name<>'fts_pending'"), 1);
  EXPECT_TRUE(*db->DropOldIndex());
  EXPECT_FALSE(*db->DropOldIndex());
  EXPECT_EQ(CountRows(*db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'fts%' AND name<>'fts_pending'"), 0);
  EXPECT_EQ(Text(*db, "SELECT group_concat(id||':'||seq||':'||res_ce) FROM fts_pending"), "1:3:gzip");
  EXPECT_EQ(Text(*db, "SELECT length(value) FROM meta WHERE key='search_token'"), "32");
  EXPECT_EQ(Text(*db, "SELECT count(*) FROM meta WHERE key='indexed'"), "0");
  auto index = OpenIndex(path);
  ASSERT_TRUE(index);
  auto reader = OpenDb(path);
  ASSERT_TRUE(reader);
  EXPECT_EQ(index->cursor(), 0u);
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{3, 2, 1}));
  const uint64_t claim = *db->MaxSeq();
  EXPECT_EQ(IndexAll(*index, claim), 5u);  // the listed flow, then 1..4
  EXPECT_EQ(Indexed(*reader, "needle"), "1,2,3");
  EXPECT_EQ(Indexed(*reader, "gzipped"), "1");
  EXPECT_EQ(BodySearch(*reader, "body:needle"), (std::vector<uint64_t>{3, 2, 1}));
  EXPECT_EQ(BodySearch(*reader, "body:hay"), std::vector<uint64_t>{4});
}

}  // namespace
}  // namespace mitmd
