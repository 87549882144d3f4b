// The session store with the real binary: kill -9 under load loses at most the last moment,
// leaves an intact database and a log with whole lines, and the next start shows everything
// older than that; Clear survives a restart.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "store/session_db.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/upstream_server.h"

namespace mitmd::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// What FlowStore promises (batch interval plus one batch's write, see flow_store.h), with room
// for a loaded test machine.
constexpr auto kKillLossBound = std::chrono::seconds(1);

std::string SessionDb(const MitmdProcess& m) { return m.confdir() + "/sessions/default.sqlite"; }

std::set<std::string> PathsInSession(const std::string& db_path, std::string* integrity) {
  std::set<std::string> paths;
  auto db = store::SessionDb::Open(db_path, store::SessionDb::Mode::kReadOnly);
  EXPECT_TRUE(db) << db.error().message;
  if (!db) return paths;
  auto check = store::Stmt::Prepare((*db)->handle(), "PRAGMA integrity_check");
  if (check && check->Step() == SQLITE_ROW) *integrity = std::string(check->Text(0));
  auto rows = store::Stmt::Prepare((*db)->handle(), "SELECT path FROM flows");
  while (rows && rows->Step() == SQLITE_ROW) paths.insert(std::string(rows->Text(0)));
  return paths;
}

TEST(StoreSessionTest, KillDashNineUnderLoadLosesOnlyTheLastMoment) {
  UpstreamOptions o;
  o.tls = false;
  UpstreamServer upstream(o);
  ASSERT_TRUE(upstream.Start());
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  auto mitmd = std::make_unique<MitmdProcess>();
  ASSERT_TRUE(mitmd->Start(options));

  // Clients send batches of requests on kept-alive connections; a batch's requests all got
  // their answers when curl returns.
  struct Batch {
    std::vector<std::string> paths;
    Clock::time_point done;
  };
  std::mutex mu;
  std::vector<Batch> completed;
  std::atomic<bool> stop{false};
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        Batch b;
        std::vector<std::string> args = {"-s", "-o", "/dev/null"};
        for (int i = 0; i < 40; ++i) {
          b.paths.push_back(StrCat("/bytes/64?n=", next++));
          args.push_back(upstream.Url(b.paths.back()));
        }
        ProcessResult r = mitmd->Curl(args, std::chrono::seconds(20));
        if (r.exit_code != 0) return;  // mitmd is gone
        b.done = Clock::now();
        std::lock_guard lock(mu);
        completed.push_back(std::move(b));
      }
    });
  }
  // Load until enough requests were answered longer ago than the loss bound (how long that takes
  // depends on the machine: a fixed time gave too little load on a busy one), bounded at 60 s.
  auto answered_before = [&](Clock::time_point t) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const Batch& b : completed) n += b.done <= t ? b.paths.size() : 0;
    return n;
  };
  constexpr size_t kEnoughLoad = 200;
  for (Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
       Clock::now() < deadline && answered_before(Clock::now() - kKillLossBound) < kEnoughLoad;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Clock::time_point killed = Clock::now();
  ::kill(mitmd->pid(), SIGKILL);
  stop = true;
  for (auto& t : clients) t.join();

  std::string integrity;
  std::set<std::string> stored = PathsInSession(SessionDb(*mitmd), &integrity);
  EXPECT_EQ(integrity, "ok");
  size_t must_have = 0;
  for (const Batch& b : completed) {
    if (b.done > killed - kKillLossBound) continue;
    for (const std::string& p : b.paths) {
      ++must_have;
      EXPECT_TRUE(stored.count(p)) << p << " answered well before kill -9 but not in the session";
    }
  }
  EXPECT_GE(must_have, kEnoughLoad) << "too little load to show anything";
  // The log holds whole lines only (each batch is one write).
  auto lines = ReadJsonLines(mitmd->flows_path());
  EXPECT_TRUE(lines) << (lines ? "" : lines.error().message);

  // The next start opens the same session and lists what was stored.
  std::string conf = mitmd->confdir();
  std::string flows = mitmd->flows_path();
  MitmdOptions again = options;
  again.extra_args = {"--confdir", conf, "--flows", flows, "--web", "127.0.0.1:0"};
  auto second = std::make_unique<MitmdProcess>();
  ASSERT_TRUE(second->Start(again));
  std::smatch m;
  std::string out = second->StdoutText();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("viewer listening on (\\S+)/"))) << out;
  std::string base = m[1];
  json info = json::parse(RunCurl({"-s", base + "/api/info"}).out, nullptr, false);
  ASSERT_TRUE(info.is_object());
  EXPECT_EQ(info["flows"].get<size_t>(), stored.size());

  // Clear is persisted: after a restart the cleared flows stay gone.
  ProcessResult cleared = RunCurl({"-s", "-X", "POST", "-H", "X-Mitmd: 1", base + "/api/clear"});
  EXPECT_NE(cleared.out.find("\"undo\""), std::string::npos) << cleared.out;
  EXPECT_EQ(second->Stop(), 0);
  auto third = std::make_unique<MitmdProcess>();
  ASSERT_TRUE(third->Start(again));
  out = third->StdoutText();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("viewer listening on (\\S+)/"))) << out;
  info = json::parse(RunCurl({"-s", std::string(m[1]) + "/api/info"}).out, nullptr, false);
  EXPECT_EQ(info["flows"], 0);
  EXPECT_EQ(third->Stop(), 0);
}

// --session NAME records into sessions/NAME.sqlite (and its own JSONL log), --console prints a
// line per finished flow on stdout, a second mitmd on the same session is refused with a
// message, and `mitmd sessions` lists and exports what was recorded.
TEST(StoreSessionTest, NamedSessionWithConsoleLinesAndOneWriter) {
  UpstreamOptions o;
  o.tls = false;
  UpstreamServer upstream(o);
  ASSERT_TRUE(upstream.Start());
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  options.default_confdir = true;
  options.extra_args = {"--session", "bug-42", "--console"};
  MitmdProcess mitmd;
  ASSERT_TRUE(mitmd.Start(options));
  ProcessResult r = mitmd.Curl({"-s", "-o", "/dev/null", upstream.Url("/bytes/10?console=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string line;
  for (auto end = Clock::now() + std::chrono::seconds(10); Clock::now() < end;) {
    std::string out = mitmd.StdoutText();
    if (size_t at = out.find("/bytes/10?console=1"); at != std::string::npos) {
      line = out.substr(out.rfind('\n', at) + 1);
      line = line.substr(0, line.find('\n'));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(line.find(StrCat("GET ", upstream.Url("/bytes/10?console=1"), " << 200")), std::string::npos)
      << mitmd.StdoutText();

  const std::string conf = mitmd.confdir();
  const std::string db = conf + "/sessions/bug-42.sqlite";
  EXPECT_EQ(::access(db.c_str(), F_OK), 0);
  // The session has its own log: the default session's is untouched.
  EXPECT_EQ(::access((conf + "/flows.jsonl").c_str(), F_OK), -1);

  ProcessResult second = RunProcess({MITMD_BINARY, "--confdir", conf, "--listen", "127.0.0.1:0", "--no-web",
                                     "--session", "bug-42"},
                                    std::chrono::seconds(10));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("session 'bug-42' is in use by another mitmd"), std::string::npos) << second.err;

  EXPECT_EQ(mitmd.Stop(), 0);
  ProcessResult list = RunProcess({MITMD_BINARY, "sessions", "list", "--confdir", conf}, std::chrono::seconds(10));
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("bug-42"), std::string::npos) << list.out;
  ProcessResult har = RunProcess({MITMD_BINARY, "sessions", "export", "bug-42", "--confdir", conf},
                                 std::chrono::seconds(10));
  EXPECT_EQ(har.exit_code, 0) << har.err;
  json doc = json::parse(har.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << har.out.substr(0, 300);
  ASSERT_EQ(doc["log"]["entries"].size(), 1u);
  EXPECT_EQ(doc["log"]["entries"][0]["response"]["status"], 200);
}

}  // namespace
}  // namespace mitmd::testing
