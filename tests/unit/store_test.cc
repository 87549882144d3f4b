// The session store: schema, the batched writer, upserts of live flows, FTS, clear/undo,
// import de-duplication, the JSONL log's torn lines and the migration of an old log.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "flow/flow_json.h"
#include "flow/flow_store.h"
#include "store/filter_sql.h"
#include "store/jsonl_log.h"
#include "store/session_db.h"
#include "support/temp_dir.h"
#include "unit/store_test_search.h"
#include "unit/web_test_flows.h"
#include "flow/filter.h"

namespace mitmd {
namespace {

using store::FlowPut;
using store::ListQuery;
using store::SessionDb;
using testing::BodySearch;
using testing::MakeFlow;
using testing::TempDir;

std::unique_ptr<SessionDb> OpenDb(const std::string& path) {
  auto db = SessionDb::Open(path, SessionDb::Mode::kReadWrite);
  EXPECT_TRUE(db) << db.error().message;
  return db ? std::move(*db) : nullptr;
}

FlowPut Put(uint64_t seq, Flow f) {
  return FlowPut{FlowPut::Mode::kUpsert, seq, std::make_shared<const Flow>(std::move(f)), "", ""};
}

std::vector<std::string> Hosts(const store::ListPage& page) {
  std::vector<std::string> out;
  for (const auto& e : page.flows) out.push_back(e.row.host);
  return out;
}

TEST(SessionDbTest, CreatesAVersionedPrivateSchemaAndRefusesANewerOne) {
  TempDir dir;
  std::string path = dir.File("s.sqlite");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(db);
    auto v = db->GetMeta("schema");
    ASSERT_TRUE(v && *v);
    EXPECT_EQ(**v, std::to_string(store::kSchemaVersion));
    ASSERT_TRUE(db->SetMeta("schema", "99"));
  }
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = SessionDb::Open(path, SessionDb::Mode::kReadWrite);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("newer mitmd"), std::string::npos) << again.error().message;
}

// host: filters find their rows by the reversed host: a new file scans its narrow list table in
// seq order (no index since schema 7), a file written by schema 1, which the upgrade fills in,
// walks an index on it; method: likewise scans (no index since schema 5), and keeps the index an
// upgraded file has.
TEST(SessionDbTest, HostFiltersUseAnIndexAlsoAfterUpgradingAVersion1File) {
  TempDir dir;
  std::string path = dir.File("s.sqlite");
  auto filtered = [](SessionDb& db, std::string_view text) {
    store::SqlPrefilter pre = store::CompilePrefilter(text);
    auto filter = Filter::Parse(text);
    EXPECT_TRUE(filter);
    ListQuery q;
    q.limit = 100;
    q.where = pre.where;
    q.where_args = pre.args;
    if (!pre.exact) q.match = [&](const Flow& f) { return filter->Matches(f); };
    auto page = db.List(q);
    EXPECT_TRUE(page) << page.error().message;
    std::vector<uint64_t> seqs;
    for (const auto& e : page->flows) seqs.push_back(e.row.seq);
    return seqs;
  };
  auto plan = [](SessionDb& db, std::string_view text) {
    store::SqlPrefilter pre = store::CompilePrefilter(text);
    auto s = store::Stmt::Prepare(db.handle(), StrCat("EXPLAIN QUERY PLAN SELECT seq FROM flows WHERE ",
                                                      pre.where, " ORDER BY seq DESC LIMIT 50"));
    EXPECT_TRUE(s);
    for (size_t i = 0; i < pre.args.size(); ++i) s->Bind(static_cast<int>(i + 1), pre.args[i]);
    std::string out;
    while (s->Step() == SQLITE_ROW) out += StrCat(s->Text(3), "\n");
    return out;
  };
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(db);
    std::vector<FlowPut> puts;
    const char* hosts[] = {"Api.Example.com", "example.com", "www-example.com", "other.test"};
    for (int i = 1; i <= 8; ++i) {
      puts.push_back(Put(static_cast<uint64_t>(i),
                         MakeFlow({.method = i % 2 ? "GET" : "post", .host = hosts[(i - 1) % 4]})));
    }
    ASSERT_TRUE(db->Write(puts));
    EXPECT_EQ(filtered(*db, "host:example.com"), (std::vector<uint64_t>{6, 5, 2, 1}));
    EXPECT_EQ(filtered(*db, "host:*.example.com"), (std::vector<uint64_t>{5, 1}));
    EXPECT_EQ(filtered(*db, "method:POST"), (std::vector<uint64_t>{8, 6, 4, 2}));
    EXPECT_EQ(plan(*db, "host:example.com").find("flows_rhost"), std::string::npos)
        << plan(*db, "host:example.com");
    EXPECT_EQ(plan(*db, "host:example.com").find("TEMP B-TREE"), std::string::npos) << plan(*db, "host:example.com");
    EXPECT_EQ(plan(*db, "method:post").find("TEMP B-TREE"), std::string::npos) << plan(*db, "method:post");
    // Back to what schema 1 wrote: no rhost column, no index on it or on method, one on host.
    ASSERT_TRUE(store::Exec(db->handle(), "DROP INDEX IF EXISTS flows_rhost; "
                                          "ALTER TABLE flows DROP COLUMN rhost; "
                                          "CREATE INDEX flows_host ON flows(host COLLATE NOCASE);"));
    ASSERT_TRUE(db->SetMeta("schema", "1"));
  }
  auto db = OpenDb(path);
  ASSERT_TRUE(db);
  auto v = db->GetMeta("schema");
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(**v, std::to_string(store::kSchemaVersion));
  EXPECT_EQ(filtered(*db, "host:example.com"), (std::vector<uint64_t>{6, 5, 2, 1}));
  // Schema 3 dropped the index rhost made useless (a b-tree insert per flow for nothing).
  auto host_index = store::Stmt::Prepare(db->handle(), "SELECT name FROM sqlite_schema WHERE name='flows_host'");
  ASSERT_TRUE(host_index);
  EXPECT_EQ(host_index->Step(), SQLITE_DONE);
  EXPECT_EQ(filtered(*db, "host:API.example.COM"), (std::vector<uint64_t>{5, 1}));
  EXPECT_NE(plan(*db, "host:example.com").find("flows_rhost"), std::string::npos);
  EXPECT_EQ(filtered(*db, "method:POST"), (std::vector<uint64_t>{8, 6, 4, 2}));
  EXPECT_NE(plan(*db, "method:post").find("flows_method"), std::string::npos) << plan(*db, "method:post");
}

// Schema 5: the list's table holds no JSON (a scan of it reads ~250-byte rows, not ~1.4 KiB);
// each flow's JSON is in flow_json, follows the row's revision and goes with a delete. A row
// written before schema 5, with its JSON in flows, still loads.
TEST(SessionDbTest, NewRowsKeepTheirJsonOutOfTheListTableAndOldRowsStillLoad) {
  TempDir dir;
  auto db = OpenDb(dir.File("s.sqlite"));
  ASSERT_TRUE(db);
  auto count = [&](const char* sql) {
    auto s = store::Stmt::Prepare(db->handle(), sql);
    EXPECT_TRUE(s);
    return s && s->Step() == SQLITE_ROW ? s->Int(0) : -1;
  };
  std::vector<FlowPut> puts;
  for (int i = 1; i <= 3; ++i) {
    Flow f = MakeFlow({.path = StrCat("/p", i), .response_body = StrCat("body ", i)});
    f.id = StrCat("f", i);
    puts.push_back(Put(static_cast<uint64_t>(i), std::move(f)));
  }
  ASSERT_TRUE(db->Write(puts));
  EXPECT_EQ(count("SELECT count(*) FROM flows WHERE json<>''"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM flow_json"), 3);
  auto got = db->Get("f2");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->flow->request->path, "/p2");
  EXPECT_EQ((*got)->flow->response->body.content, "body 2");
  // Move f1's JSON back into its row, as schema 4 wrote it.
  ASSERT_TRUE(store::Exec(db->handle(), "UPDATE flows SET json=(SELECT json FROM flow_json WHERE seq=1) WHERE seq=1; "
                                        "DELETE FROM flow_json WHERE seq=1;"));
  got = db->Get("f1");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->flow->request->path, "/p1");
  ListQuery q;
  q.full_flows = true;
  auto page = db->List(q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->flows.size(), 3u);
  EXPECT_EQ(page->flows[2].flow->request->path, "/p1");
  EXPECT_EQ(page->flows[0].flow->request->path, "/p3");
  ASSERT_TRUE(*db->Delete("f3"));
  EXPECT_EQ(count("SELECT count(*) FROM flow_json WHERE seq=3"), 0);
  // A new file has no status or method index (each cost the writer a b-tree insert per flow).
  EXPECT_EQ(count("SELECT count(*) FROM sqlite_schema WHERE name IN ('flows_status','flows_method')"), 0);
}

TEST(SessionDbTest, LiveSnapshotsUpdateOneRowAndKeepTheHighestRevision) {
  TempDir dir;
  auto db = OpenDb(dir.File("s.sqlite"));
  Flow live = MakeFlow({.host = "live.test"});
  live.id = "flow-1";
  live.state = FlowState::kLive;
  live.revision = 2;
  live.response.reset();
  ASSERT_TRUE(db->Write({Put(7, live)}));
  Flow older = live;
  older.revision = 1;
  older.request->path = "/stale";
  ASSERT_TRUE(db->Write({Put(7, older)}));  // out of order: ignored
  auto got = db->Get("flow-1");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->row.state, "live");
  EXPECT_EQ((*got)->row.path, live.request->path);
  EXPECT_EQ((*got)->flow->request->path, live.request->path);  // the JSON too
  Flow done = MakeFlow({.host = "live.test", .response_body = "final body"});
  done.id = "flow-1";
  done.revision = 3;
  ASSERT_TRUE(db->Write({Put(7, done)}));
  got = db->Get("flow-1");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->row.seq, 7u);
  EXPECT_EQ((*got)->row.state, "done");
  EXPECT_EQ((*got)->flow->response->body.content, "final body");  // bodies come back
  // The same id written again under another seq updates its row, and the bodies follow the row.
  Flow again = MakeFlow({.host = "live.test", .response_body = "newer body"});
  again.id = "flow-1";
  again.revision = 4;
  ASSERT_TRUE(db->Write({Put(9, again)}));
  got = db->Get("flow-1");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->row.seq, 7u);
  EXPECT_EQ((*got)->flow->response->body.content, "newer body");
  auto counts = db->Counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->flows, 1u);
}

TEST(SessionDbTest, ListsPagesFiltersSortsAndSearchesBodies) {
  TempDir dir;
  auto db = OpenDb(dir.File("s.sqlite"));
  std::vector<FlowPut> puts;
  for (int i = 1; i <= 30; ++i) {
    Flow f = MakeFlow({.method = i % 3 == 0 ? "POST" : "GET",
                       .host = i % 2 ? "odd.example.com" : "even.test",
                       .status = i % 5 == 0 ? 404 : 200,
                       .response_body = i == 17 ? "needle in a gzipped haystack" : "hay",
                       .gzip = i == 17});
    puts.push_back(Put(static_cast<uint64_t>(i), std::move(f)));
  }
  ASSERT_TRUE(db->Write(puts));

  ListQuery q;
  q.limit = 10;
  auto page = db->List(q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->flows.size(), 10u);
  EXPECT_EQ(page->flows.front().row.seq, 30u);
  EXPECT_EQ(page->next_before, 21u);
  q.before = page->next_before;
  page = db->List(q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->flows.front().row.seq, 20u);

  auto run = [&](std::string_view text) {
    auto filter = Filter::Parse(text);
    EXPECT_TRUE(filter);
    store::SqlPrefilter pre = store::CompilePrefilter(text);
    ListQuery fq;
    fq.limit = 100;
    fq.where = pre.where;
    fq.where_args = pre.args;
    fq.full_flows = pre.needs_full_flow;
    if (!pre.exact) fq.match = [&](const Flow& f) { return filter->Matches(f); };
    auto p = db->List(fq);
    EXPECT_TRUE(p) << p.error().message;
    return *p;
  };
  EXPECT_EQ(run("status:404 method:GET").flows.size(), 4u);  // 5, 10, 20, 25
  EXPECT_EQ(run("host:example.com status:4xx").flows.size(), 3u);  // 5, 15, 25
  EXPECT_EQ(run("-host:example.com").flows.size(), 15u);
  auto found = run("body:NEEDLE");
  ASSERT_EQ(found.flows.size(), 1u);  // decoded from gzip, case-insensitive
  EXPECT_EQ(found.flows[0].row.seq, 17u);
  EXPECT_EQ(found.flows[0].row.size, 28);  // the decoded size beside the wire size
  EXPECT_NE(found.flows[0].row.wire_size, 28);

  ListQuery sorted;
  sorted.sort = "host";
  sorted.descending = false;
  sorted.limit = 16;
  page = db->List(sorted);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->flows.front().row.host, "even.test");
  EXPECT_EQ(page->flows.back().row.host, "odd.example.com");
  EXPECT_EQ(page->next_offset, 16u);

  ListQuery bounded;
  bounded.match = [](const Flow&) { return false; };
  bounded.max_scan = 12;
  page = db->List(bounded);
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->flows.empty());
  EXPECT_EQ(page->scanned, 12u);
  EXPECT_EQ(page->next_before, 19u);  // continue below the last row looked at
  // No index file: every body is a candidate, and the next batch's bodies are found beside the
  // first's.
  ASSERT_TRUE(db->Write({Put(31, MakeFlow({.response_body = "a second needle"}))}));
  EXPECT_EQ(run("body:needle").flows.size(), 2u);
}

int64_t CountRows(SessionDb& db, const std::string& sql) {
  auto s = store::Stmt::Prepare(db.handle(), sql);
  EXPECT_TRUE(s) << s.error().message;
  if (!s || s->Step() != SQLITE_ROW) return -1;
  return s->Int(0);
}


TEST(SessionDbTest, ClearHidesEvenLateWritesUndoRestoresPurgeDeletes) {
  TempDir dir;
  auto db = OpenDb(dir.File("s.sqlite"));
  ASSERT_TRUE(db->Write({Put(1, MakeFlow({.host = "a.test"})), Put(2, MakeFlow({.host = "b.test"}))}));
  auto cleared = db->Clear(111, 3);
  ASSERT_TRUE(cleared);
  EXPECT_EQ(*cleared, 2u);
  ASSERT_TRUE(db->Write({Put(3, MakeFlow({.host = "queued.test"})), Put(4, MakeFlow({.host = "new.test"}))}));
  auto page = db->List({});
  ASSERT_TRUE(page);
  EXPECT_EQ(Hosts(*page), std::vector<std::string>{"new.test"});
  EXPECT_FALSE(db->Undo(222));  // not the latest clear
  auto restored = db->Undo(111);
  ASSERT_TRUE(restored);
  EXPECT_EQ(*restored, 3u);
  page = db->List({});
  EXPECT_EQ(page->flows.size(), 4u);

  ASSERT_TRUE(db->Clear(333, 2));
  auto purged = db->Purge();
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 2u);
  auto late = db->Undo(333);
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().message.find("too late"), std::string::npos);
  EXPECT_EQ(db->List({})->flows.size(), 2u);
}

TEST(SessionDbTest, MarkCommentDelete) {
  TempDir dir;
  auto db = OpenDb(dir.File("s.sqlite"));
  Flow f = MakeFlow({});
  f.id = "x1";
  ASSERT_TRUE(db->Write({Put(1, f)}));
  EXPECT_TRUE(*db->SetMarked("x1", true));
  EXPECT_TRUE(*db->SetComment("x1", "look here"));
  EXPECT_FALSE(*db->SetMarked("nope", true));
  auto got = db->Get("x1");
  EXPECT_TRUE((*got)->row.marked);
  EXPECT_EQ((*got)->row.comment, "look here");
  // A later snapshot of the same flow keeps what the user added.
  f.revision = 9;
  ASSERT_TRUE(db->Write({Put(1, f)}));
  EXPECT_TRUE((*db->Get("x1"))->row.marked);
  EXPECT_TRUE(*db->Delete("x1"));
  EXPECT_FALSE(db->Get("x1")->has_value());
}

TEST(FlowStoreTest, BatchesCoalescesLiveFlowsAndImportsOnce) {
  TempDir dir;
  // The writer waits out a long interval, so only Flush makes it write: what coalesces does not
  // depend on when the writer thread happens to run.
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .jsonl_path = dir.File("f.jsonl"),
                                .batch_interval = std::chrono::milliseconds(60'000)});
  ASSERT_TRUE(store) << store.error().message;
  (*store)->Flush();  // start-up's pass is done: from here the writer waits out the interval
  std::vector<uint64_t> seqs;
  (*store)->Subscribe([&](const std::shared_ptr<const Flow>&, uint64_t seq) { seqs.push_back(seq); });
  Flow f = MakeFlow({.host = "live.test"});
  f.id = "live-1";
  for (uint64_t rev = 1; rev <= 5; ++rev) {
    Flow s = f;
    s.state = FlowState::kLive;
    s.revision = rev;
    (*store)->Publish(std::make_shared<const Flow>(s));
  }
  f.revision = 6;
  (*store)->Record(std::make_shared<const Flow>(f));
  (*store)->Record(std::make_shared<const Flow>(MakeFlow({.host = "other.test"})));
  (*store)->Flush();
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 1, 1, 1, 1, 1, 2}));  // a live flow keeps its seq
  auto db = (*store)->OpenReader();
  ASSERT_TRUE(db);
  auto got = (*db)->Get("live-1");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->row.state, "done");
  EXPECT_EQ((*store)->stats().written, 2u);  // the five snapshots and the record: one write
  // Only recorded flows reach the JSONL log.
  EXPECT_EQ(testing::ReadFile(dir.File("f.jsonl")).find("\"state\":\"live\""), std::string::npos);

  std::vector<Flow> file = {MakeFlow({.host = "har1.test"}), MakeFlow({.host = "har2.test"})};
  auto added = (*store)->Import(file, "har:x.har");
  ASSERT_TRUE(added);
  EXPECT_EQ(*added, 2u);
  EXPECT_EQ(*(*store)->Import(file, "jsonl:x.jsonl", true), 0u);  // same ids
  for (Flow& g : file) g.id = NewFlowId();  // re-imported: new ids, same content
  added = (*store)->Import(file, "har:x.har");
  ASSERT_TRUE(added);
  EXPECT_EQ(*added, 0u);
  EXPECT_EQ((*db)->Counts()->flows, 4u);
}

// The writer indexes bodies for search when it has nothing else to do: a store left alone
// indexes everything (bounded polling: how soon depends on the machine, not whether).
TEST(FlowStoreTest, IndexesBodiesForSearchOnItsOwnThread) {
  TempDir dir;
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .batch_interval = std::chrono::milliseconds(20)});
  ASSERT_TRUE(store) << store.error().message;
  auto db = (*store)->OpenReader();
  ASSERT_TRUE(db);
  constexpr int kFlows = 2'500;  // more than one slice (2,000), and a rest indexed after a pause
  // A viewer searches while the writer writes and the indexer indexes (TSan: the hand-off).
  std::thread viewer([&] {
    auto reader = (*store)->OpenReader();
    ASSERT_TRUE(reader);
    for (int i = 0; i < 20; ++i) {
      auto found = BodySearch(**reader, "body:body-7-end");
      EXPECT_LE(found.size(), 1u);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  for (int i = 0; i < kFlows; ++i) {
    (*store)->Record(std::make_shared<const Flow>(MakeFlow({.response_body = StrCat("body-", i, "-end")})));
  }
  (*store)->Flush();
  viewer.join();
  for (int i = 0; i < 600 && (*store)->stats().index_behind; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE((*store)->stats().index_behind);
  EXPECT_EQ((*store)->stats().index_lag, 0u);
  // The index file, not the session's, holds the text.
  EXPECT_EQ(CountRows(**db, "SELECT count(*) FROM search.fts"), kFlows);
  EXPECT_EQ(CountRows(**db, "SELECT count(*) FROM sqlite_schema WHERE name='fts'"), 0);
  EXPECT_EQ(CountRows(**db, "SELECT count(*) FROM temp.search_pending"), 0);
  EXPECT_EQ(BodySearch(**db, "body:body-599-end"), std::vector<uint64_t>{600});
  EXPECT_EQ(BodySearch(**db, "body:body-2499-end"), std::vector<uint64_t>{2'500});
}

// A batch's session log lines go out in pieces of about 256 KiB (one reused buffer, not one the
// size of the batch): a batch of several pieces, with a body of a megabyte among them, still
// leaves every line whole, once and in order.
TEST(FlowStoreTest, ABatchBiggerThanALogPieceLeavesEveryLineWholeAndInOrder) {
  TempDir dir;
  const std::string log = dir.File("flows.jsonl");
  std::vector<std::string> ids;
  {
    // One batch: nothing is written before the Flush.
    auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .jsonl_path = log,
                                  .batch_interval = std::chrono::seconds(30), .batch_max = 100'000});
    ASSERT_TRUE(store) << store.error().message;
    for (int i = 0; i < 400; ++i) {
      std::string body = i == 200 ? std::string(1 << 20, 'b') : StrCat(i, std::string(2'000, 'x'));
      auto f = std::make_shared<Flow>(MakeFlow({.response_body = body}));
      ids.push_back(f->id);
      (*store)->Record(f);
    }
    (*store)->Flush();
    EXPECT_EQ((*store)->stats().written, 400u);
  }
  std::ifstream in(log);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "line " << n + 1 << " is not whole";
    ASSERT_LT(n, ids.size());
    EXPECT_EQ(j["id"], ids[n]);
    ++n;
  }
  EXPECT_EQ(n, ids.size());
}

// A slice of the search index stops after the flow whose text reaches the byte budget, so a
// batch that comes due never waits for megabytes of text; the rest stays pending, searchable.
// What the stream announced is findable before its row is committed, without waiting for the
// writer: from the queue, then from the database.
TEST(FlowStoreTest, FindsQueuedFlowsUntilTheirRowsAreCommitted) {
  TempDir dir;
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .batch_interval = std::chrono::milliseconds(60'000)});
  ASSERT_TRUE(store);
  (*store)->Flush();  // start-up's pass is done: the writer now waits out the interval
  auto flow = std::make_shared<const Flow>(MakeFlow({.path = "/queued"}));
  (*store)->Record(flow);
  auto queued = (*store)->FindQueued(flow->id);
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->flow->request->path, "/queued");
  EXPECT_EQ(queued->seq, 1u);
  EXPECT_FALSE((*store)->FindQueued("no-such-id"));
  auto db = (*store)->OpenReader();
  ASSERT_TRUE(db);
  EXPECT_FALSE((*db)->Get(flow->id)->has_value());
  (*store)->Flush();
  EXPECT_FALSE((*store)->FindQueued(flow->id));
  EXPECT_TRUE((*db)->Get(flow->id)->has_value());
}

TEST(FlowStoreTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  TempDir dir;
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .max_queue = 3,
                                .batch_interval = std::chrono::milliseconds(60'000), .batch_max = 1000});
  ASSERT_TRUE(store);
  (*store)->Flush();  // start-up's pass is done: the writer now waits out the interval
  for (int i = 0; i < 10; ++i) (*store)->Record(std::make_shared<const Flow>(MakeFlow({})));
  // Every flow beyond the queue's three is counted as dropped, never waited for.
  EXPECT_EQ((*store)->stats().dropped, 7u);
  (*store)->Flush();
  EXPECT_EQ((*store)->stats().written, 3u);
}

TEST(JsonlLogTest, TerminatesATornLastLineAndNeverGluesOntoOne) {
  TempDir dir;
  std::string path = dir.File("f.jsonl");
  testing::WriteFile(path, "{\"whole\":1}\n{\"torn");
  {
    auto log = store::JsonlLog::Open(path);
    ASSERT_TRUE(log) << log.error().message;
    ASSERT_TRUE((*log)->Append("{\"next\":2}\n"));
  }
  EXPECT_EQ(testing::ReadFile(path), "{\"whole\":1}\n{\"torn\n{\"next\":2}\n");
}

TEST(JsonlLogTest, AFullDiskIsAnErrorAndTheNextLineStartsFresh) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  auto log = store::JsonlLog::Open("/dev/full");
  ASSERT_TRUE(log) << log.error().message;
  auto st = (*log)->Append("{\"a\":1}\n");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("No space left on device"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("free some disk space"), std::string::npos);
  EXPECT_EQ((*log)->failures(), 1u);
}

// A write that stops mid-line (here at a file size limit, as on a full disk) leaves the log
// with whole lines only; the next append, once there is room, is a line of its own.
TEST(JsonlLogTest, AShortWriteCutsItsPartOfALineOffAgain) {
  TempDir dir;
  std::string path = dir.File("f.jsonl");
  auto log = store::JsonlLog::Open(path);
  ASSERT_TRUE(log);
  const std::string line(59, 'a');
  ASSERT_TRUE((*log)->Append(line + "\n"));
  struct sigaction ignore{}, saved_action{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGXFSZ, &ignore, &saved_action);
  rlimit saved{};
  getrlimit(RLIMIT_FSIZE, &saved);
  rlimit small{100, saved.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  auto st = (*log)->Append(line + "\n" + line + "\n");  // 40 of the next 120 bytes fit
  setrlimit(RLIMIT_FSIZE, &saved);
  sigaction(SIGXFSZ, &saved_action, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(testing::ReadFile(path), line + "\n");
  ASSERT_TRUE((*log)->Append("{\"b\":2}\n"));
  EXPECT_EQ(testing::ReadFile(path), line + "\n{\"b\":2}\n");
}

TEST(FlowStoreTest, ImportsAnOldLogOnceInTheBackgroundBelowLiveFlows) {
  TempDir dir;
  std::string old_log = dir.File("flows.jsonl");
  std::string text;
  for (int i = 0; i < 2500; ++i) {
    Flow f = MakeFlow({.host = "old.test"});
    f.id = "old-" + std::to_string(i);
    text += FlowToJsonLine(f) + "\n";
  }
  text += "{\"torn";  // a crash's last line
  testing::WriteFile(old_log, text);
  {
    auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .jsonl_path = old_log, .migrate_from = old_log});
    ASSERT_TRUE(store) << store.error().message;
    (*store)->Record(std::make_shared<const Flow>(MakeFlow({.host = "live.test"})));
    EXPECT_EQ((*store)->last_seq(), 2502u);  // after the old lines
    for (int i = 0; i < 3000 && (*store)->stats().migrating; ++i) {  // at most 60 s
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_FALSE((*store)->stats().migrating);
  }
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .jsonl_path = old_log, .migrate_from = old_log});
  ASSERT_TRUE(store);
  EXPECT_FALSE((*store)->stats().migrating);  // once
  auto db = (*store)->OpenReader();
  EXPECT_EQ((*db)->Counts()->flows, 2501u);
  auto newest = (*db)->List({.limit = 1});
  EXPECT_EQ(newest->flows[0].row.host, "live.test");
}

}  // namespace
}  // namespace mitmd

namespace mitmd {
namespace {

// A writer that is behind never makes the queue hold more body copies than its byte budget:
// later flows are kept whole except their body copies, and say so.
TEST(FlowStoreTest, QueueBoundedByBytesShedsBodyCopiesNotFlows) {
  TempDir dir;
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"),
                                .jsonl_path = dir.File("f.jsonl"),
                                .max_queue_bytes = 1u << 20,
                                .batch_interval = std::chrono::milliseconds(60'000)});
  ASSERT_TRUE(store) << store.error().message;
  (*store)->Flush();  // start-up's pass is done: from here the writer waits out the interval
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Flow f = testing::MakeFlow({.host = "big.test"});
    f.response->body.content.assign(600u << 10, 'x');
    f.response->body.size = 600u << 10;
    ids.push_back(f.id);
    (*store)->Record(std::make_shared<const Flow>(std::move(f)));
  }
  (*store)->Flush();
  // The writer may take a batch between two Records (a flush's last pass races the loop), which
  // empties the budget; at least the last flow finds it full.
  const uint64_t shed = (*store)->stats().bodies_shed;
  EXPECT_GE(shed, 1u);
  auto db = (*store)->OpenReader();
  ASSERT_TRUE(db);
  for (int i = 0; i < 3; ++i) {
    auto got = (*db)->Get(ids[i]);
    ASSERT_TRUE(got && *got) << i;
    const Flow& f = *(*got)->flow;
    ASSERT_TRUE(f.response);
    EXPECT_EQ(f.response->body.size, 600u << 10) << "the size on the wire is kept";
    if (i == 0 || !f.response->body.content.empty()) {
      EXPECT_EQ(f.response->body.content.size(), 600u << 10);
    } else {
      EXPECT_TRUE(f.response->body.truncated);
      EXPECT_NE(f.note.find("writer was behind"), std::string::npos) << f.note;
    }
  }
}

}  // namespace
}  // namespace mitmd

namespace mitmd {
namespace {

// "Jump to the oldest 404" over a million flows: an exact status pages in seq order without a
// sort: a new file scans its narrow list table, a file from before schema 5 (wide rows) walks
// the status index it keeps, touching only the matches.
TEST(FilterSqlTest, AnExactStatusPagesInSeqOrderWithoutASort) {
  TempDir dir;
  const std::string path = dir.File("s.sqlite");
  store::SqlPrefilter pre = store::CompilePrefilter("status:404");
  EXPECT_TRUE(pre.exact);
  auto plans = [&](SessionDb& db) {
    std::string details;
    for (const char* order : {"DESC", "ASC"}) {
      auto plan = store::Stmt::Prepare(
          db.handle(), StrCat("EXPLAIN QUERY PLAN SELECT seq FROM flows WHERE (", pre.where,
                              ") AND seq<?1 ORDER BY seq ", order));
      EXPECT_TRUE(plan) << plan.error().message;
      while (plan && plan->Step() == SQLITE_ROW) details += StrCat(order, ": ", plan->Text(3), "\n");
    }
    return details;
  };
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(db);
    std::string details = plans(*db);
    EXPECT_EQ(details.find("TEMP B-TREE"), std::string::npos) << details;  // no sort
    EXPECT_EQ(details.find("flows_status"), std::string::npos) << details;
    // What schema 4 left: the status index.
    ASSERT_TRUE(store::Exec(db->handle(), "CREATE INDEX flows_status ON flows(status)"));
    ASSERT_TRUE(db->SetMeta("schema", "4"));
  }
  auto db = OpenDb(path);
  ASSERT_TRUE(db);
  std::string details = plans(*db);
  EXPECT_EQ(details.find("TEMP B-TREE"), std::string::npos) << details;
  EXPECT_NE(details.find("INDEX flows_status"), std::string::npos) << details;
}

}  // namespace
}  // namespace mitmd
