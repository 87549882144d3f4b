// The session store with the real binary: kill -9 under load keeps every committed flow, leaves
// an intact database and a log with whole lines, and the next start shows them; Clear survives a
// restart.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
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

TEST(StoreSessionTest, KillDashNineUnderLoadKeepsEverythingCommitted) {
  UpstreamOptions o;
  o.tls = false;
  UpstreamServer upstream(o);
  ASSERT_TRUE(upstream.Start());
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  auto mitmd = std::make_unique<MitmdProcess>();
  ASSERT_TRUE(mitmd->Start(options));

  // Clients send batches of requests on kept-alive connections until mitmd is gone.
  std::atomic<bool> stop{false};
  std::atomic<int> next{0};
  std::atomic<size_t> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        std::vector<std::string> args = {"-s", "-o", "/dev/null"};
        for (int i = 0; i < 40; ++i) args.push_back(upstream.Url(StrCat("/bytes/64?n=", next++)));
        ProcessResult r = mitmd->Curl(args, std::chrono::seconds(20));
        if (r.exit_code != 0) return;  // mitmd is gone
        answered += 40;
      }
    });
  }
  // Load until the session holds enough committed flows (read by a second connection, as the
  // viewer does), bounded at 60 s: how long that takes depends on the machine, and what kill -9
  // must not lose does not.
  constexpr size_t kEnoughCommitted = 200;
  std::set<std::string> committed;
  std::string integrity;
  for (Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
       Clock::now() < deadline && committed.size() < kEnoughCommitted;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (access(SessionDb(*mitmd).c_str(), F_OK) == 0) committed = PathsInSession(SessionDb(*mitmd), &integrity);
  }
  ::kill(mitmd->pid(), SIGKILL);
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_GE(committed.size(), kEnoughCommitted) << "too little load to show anything";

  // Everything committed before the kill is there, in an intact database. (How far behind the
  // writer runs, i.e. what the last moment holds, is a figure for the store's benchmark.)
  std::set<std::string> stored = PathsInSession(SessionDb(*mitmd), &integrity);
  EXPECT_EQ(integrity, "ok");
  {
    // The search index (its own file, written by its own thread when killed) is intact too, and
    // attached as this session's: a reader found its token.
    auto db = store::SessionDb::Open(SessionDb(*mitmd), store::SessionDb::Mode::kReadOnly);
    ASSERT_TRUE(db) << db.error().message;
    auto token = store::Stmt::Prepare((*db)->handle(), "SELECT count(*) FROM search.meta WHERE key='token'");
    ASSERT_TRUE(token) << token.error().message;
    ASSERT_EQ(token->Step(), SQLITE_ROW);
    EXPECT_EQ(token->Int(0), 1);
    auto check = store::Stmt::Prepare((*db)->handle(), "PRAGMA search.integrity_check");
    ASSERT_TRUE(check);
    ASSERT_EQ(check->Step(), SQLITE_ROW);
    EXPECT_EQ(check->Text(0), "ok");
  }
  for (const std::string& p : committed) {
    EXPECT_TRUE(stored.count(p)) << p << " was committed before kill -9 but is not in the session";
  }
  EXPECT_LE(stored.size(), static_cast<size_t>(next)) << "flows the clients never asked for";
  std::printf("kill -9: %zu requests answered, %zu flows in the session\n", answered.load(), stored.size());
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
