// The viewer's live event stream: new flows arrive without polling, per-viewer filters apply,
// and a viewer that stops reading is dropped without ever slowing the recording threads.

#include <barrier>
#include <map>
#include <thread>

#include "core/strings.h"
#include "integration/web_fixture.h"
#include "unit/web_test_flows.h"

namespace mitmd::testing {
namespace {

using nlohmann::json;

TEST_F(WebServerTest, StreamDeliversNewFlowsLive) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EventStream a, b;
  ASSERT_TRUE(a.Open(port_, "/api/events"));
  ASSERT_TRUE(b.Open(port_, "/api/events"));
  ASSERT_TRUE(a.WaitFor("event: hello"));
  ASSERT_TRUE(b.WaitFor("event: hello"));
  EXPECT_NE(a.received().find("text/event-stream"), std::string::npos);

  // A running flow is published, then recorded: two flow events with one seq, so the viewer
  // replaces the row.
  Flow live = MakeFlow({.path = "/live"});
  live.state = FlowState::kLive;
  live.revision = 1;
  auto flow = std::make_shared<const Flow>(live);
  store_->Publish(flow);
  ASSERT_TRUE(a.WaitFor(flow->id)) << a.received();
  ASSERT_TRUE(b.WaitFor(flow->id)) << b.received();
  auto events = a.Events("flow");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["path"], "/live");
  EXPECT_EQ(events[0]["state"], "live");
  EXPECT_GT(events[0]["seq"].get<uint64_t>(), 0u);

  Flow done = live;
  done.state = FlowState::kDone;
  done.revision = 2;
  done.request->path = "/live-again";
  Record(done);
  ASSERT_TRUE(a.WaitFor("/live-again"));
  events = a.Events("flow");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["id"], events[0]["id"]);
  EXPECT_EQ(events[1]["state"], "done");
  EXPECT_EQ(events[1]["seq"], events[0]["seq"]);
}

TEST_F(WebServerTest, StreamDeliversEveryFlowOfBurstsFromManyThreads) {
  // The web thread takes the workers' flows in batches, and stops listening between batches
  // while flows keep coming (Inbox): bursts with gaps between them cross those pauses both ways,
  // and every flow still reaches the stream, each once.
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EventStream stream;
  ASSERT_TRUE(stream.Open(port_, "/api/events"));
  ASSERT_TRUE(stream.WaitFor("event: hello"));
  constexpr int kThreads = 4, kBursts = 6, kPerBurst = 50;
  std::vector<std::vector<std::string>> ids(kThreads);
  // All threads pause together: a short gap falls within the web thread's pause, a long one
  // outlasts it (the web thread listens again, and the next burst must wake it).
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBursts; ++b) {
        for (int i = 0; i < kPerBurst; ++i) {
          ids[t].push_back(Record(MakeFlow({.path = StrCat("/burst/", t, "/", b, "/", i)}))->id);
        }
        sync.arrive_and_wait();
        std::this_thread::sleep_for(std::chrono::milliseconds(b % 2 == 0 ? 5 : 100));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& list : ids) ASSERT_TRUE(stream.WaitFor(list.back(), std::chrono::seconds(20)));
  std::map<std::string, int> seen;
  for (const auto& e : stream.Events("flow")) ++seen[e["id"].get<std::string>()];
  for (const auto& list : ids) {
    for (const std::string& id : list) EXPECT_EQ(seen[id], 1) << id;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kBursts * kPerBurst));
}

TEST_F(WebServerTest, StreamFollowsEachViewersFilter) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EventStream posts;
  ASSERT_TRUE(posts.Open(port_, "/api/events?filter=method%3APOST"));
  ASSERT_TRUE(posts.WaitFor("event: hello"));
  auto get = Record(MakeFlow({.method = "GET"}));
  auto post = Record(MakeFlow({.method = "POST"}));
  ASSERT_TRUE(posts.WaitFor(post->id));
  EXPECT_EQ(posts.received().find(get->id), std::string::npos);

  EventStream bad;
  ASSERT_TRUE(bad.Open(port_, "/api/events?filter=nope%3A1"));
  ASSERT_TRUE(bad.WaitFor("unknown field"));
  EXPECT_NE(bad.received().find("400"), std::string::npos);
}

TEST_F(WebServerTest, StreamAnnouncesClearsAndCarriesConnections) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EventStream s;
  ASSERT_TRUE(s.Open(port_, "/api/events?conns=1"));
  ASSERT_TRUE(s.WaitFor("event: conns"));
  uint64_t id = conns_.OpenClient("127.0.0.1:41000", "127.0.0.1:8080");
  ASSERT_TRUE(s.WaitFor("127.0.0.1:41000", std::chrono::seconds(3)));
  conns_.Close(id, ClosedBy::kMitmd, "idle timeout");
  ASSERT_TRUE(s.WaitFor("\"closed_by\":\"mitmd\"", std::chrono::seconds(3)));
  ASSERT_EQ(Post("/api/clear", "").status, 200);
  ASSERT_TRUE(s.WaitFor("event: clear"));
}

TEST_F(WebServerTest, ClosedViewersAreForgotten) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  {
    EventStream s;
    ASSERT_TRUE(s.Open(port_, "/api/events"));
    ASSERT_TRUE(s.WaitFor("event: hello"));
    EXPECT_EQ(Fetch("/api/info").Json()["viewers"], 1);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int viewers = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    Record(MakeFlow({}));  // writing to a closed peer also surfaces the close
    viewers = Fetch("/api/info").Json()["viewers"];
    if (viewers == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(viewers, 0);
}

TEST_F(WebServerTest, SlowViewerIsDroppedAndNeverSlowsRecording) {
  web::WebOptions options;
  // The healthy viewer's reader thread shares two cores with the test's producer and the rest of
  // a parallel test run: it gets room (512 KiB behind for up to 3 s) that a stalled one, ~5 MB
  // behind for good, exceeds anyway.
  options.max_viewer_backlog = 512 * 1024;
  options.viewer_stall_seconds = 3;
  options.max_viewer_buffer = 64 << 20;
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(options)));
  EventStream stalled;
  ASSERT_TRUE(stalled.Open(port_, "/api/events", /*receive_buffer=*/4096));
  ASSERT_TRUE(stalled.WaitFor("event: hello"));
  EventStream healthy;
  ASSERT_TRUE(healthy.Open(port_, "/api/events"));
  ASSERT_TRUE(healthy.WaitFor("event: hello"));

  // The stalled viewer never reads again. Each summary is ~1.2 KB: 4000 of them are ~5 MB,
  // far beyond its socket buffers plus the 256 KiB backlog allowed.
  constexpr int kFlows = 4000;
  std::vector<Flow> burst;
  for (int i = 0; i < kFlows; ++i) burst.push_back(MakeFlow({.path = StrCat("/bulk/", i, "/", std::string(800, 'p'))}));
  const std::string last_id = burst.back().id;
  // The healthy viewer reads the whole burst as it comes.
  bool healthy_got_all = false;
  std::thread reader([&] { healthy_got_all = healthy.WaitFor(last_id, std::chrono::seconds(30)); });
  int slow_records = 0;
  for (Flow& f : burst) {
    auto start = std::chrono::steady_clock::now();
    Record(std::move(f));
    if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(50)) ++slow_records;
  }
  reader.join();
  // Recording never waited for the viewers: a Record blocked on the stalled stream would stay
  // blocked for every later flow. A loaded machine may deschedule a few single calls.
  EXPECT_LE(slow_records, kFlows / 100);
  ASSERT_TRUE(healthy_got_all) << Fetch("/api/info").body << " received " << healthy.received().size();
  // The stalled viewer stays stalled beyond the allowed second and is dropped; the healthy one
  // keeps receiving.
  json info;
  for (int i = 0; i < 200; ++i) {
    info = Fetch("/api/info").Json();
    if (info["dropped_viewers"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(info["dropped_viewers"], 1) << info.dump();
  EXPECT_EQ(info["viewers"], 1) << info.dump();
  auto after = Record(MakeFlow({.path = "/after"}));
  EXPECT_TRUE(healthy.WaitFor(after->id, std::chrono::seconds(5)));
  EXPECT_FALSE(stalled.ReadFor(std::chrono::seconds(10))) << "the stalled stream was not closed";
}

TEST_F(WebServerTest, AViewerHoldingTooMuchIsDroppedAtOnce) {
  web::WebOptions options;
  options.max_viewer_backlog = 64 * 1024;
  options.viewer_stall_seconds = 600;  // only the hard cap can drop it within this test
  options.max_viewer_buffer = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(options)));
  EventStream stalled;
  ASSERT_TRUE(stalled.Open(port_, "/api/events", /*receive_buffer=*/4096));
  ASSERT_TRUE(stalled.WaitFor("event: hello"));
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 500; ++i) Record(MakeFlow({.path = StrCat("/r", round, "/", std::string(800, 'q'))}));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  json info;
  for (int i = 0; i < 200; ++i) {
    info = Fetch("/api/info").Json();
    if (info["dropped_viewers"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(info["dropped_viewers"], 1) << info.dump();
  EXPECT_EQ(info["viewers"], 0) << info.dump();
}

}  // namespace
}  // namespace mitmd::testing
