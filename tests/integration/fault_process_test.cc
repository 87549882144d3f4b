// mitmd stopped under load: SIGTERM ends it cleanly, kill -9 loses at most the flows in flight.
// Either way every flow in the session log is readable and a restarted mitmd serves at once.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "flow/flow_loader.h"
#include "integration/proxy_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

// Each client downloads at most this many times: the session log (bodies included) stays
// bounded whatever the machine's speed. Unbounded, six clients wrote 3.4 GB in ten minutes at
// load 20 while the test re-read the growing log.
constexpr int kMaxDownloadsEach = 50;

// Clients downloading through mitmd, each in a loop, until Stop() or kMaxDownloadsEach.
class Load {
 public:
  Load(const MitmdProcess& mitmd, const std::string& url, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, &mitmd, url] {
        for (int n = 0; n < kMaxDownloadsEach && !stop_; ++n) {
          ProcessResult r = mitmd.Curl({"-s", "-o", "/dev/null", "-m", "20", url},
                                       std::chrono::seconds(30));
          if (r.exit_code == 0) ++done_;
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int done() const { return done_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> done_{0};
  std::vector<std::thread> threads_;
};

using Clock = std::chrono::steady_clock;

// The waits below end at a time on the clock, not after a number of sleeps: at load 20 a sleep
// of 20 ms can last far longer, so 3,000 of them were no bound within ctest's 300 s.
constexpr auto kWait = std::chrono::seconds(60);

// Waits (bounded by kWait, for a sanitizer build on a busy machine) until |load| has completed
// |n| requests.
bool WaitForDone(const Load& load, int n) {
  for (auto end = Clock::now() + kWait; load.done() < n && Clock::now() < end;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return load.done() >= n;
}

// Whether |path| holds a whole line yet. Reads up to the first line break only: the log grows
// while the load runs, and parsing all of it on every check never caught up.
bool HasWholeLine(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char buf[64 * 1024];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    if (std::memchr(buf, '\n', static_cast<size_t>(in.gcount()))) return true;
  }
  return false;
}

// A line on stderr (unbuffered) for each step, so that a run stopped by ctest's timeout shows
// where it was.
void Step(const char* what) { std::fprintf(stderr, "[ step     ] %s\n", what); }

TEST_F(ProxyTest, SigtermUnderLoadExitsCleanlyWithEveryFlowReadable) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Load load(mitmd_, up->Url("/stream/131072"), 6);
  ASSERT_TRUE(WaitForDone(load, 6));
  EXPECT_EQ(mitmd_.Stop(std::chrono::seconds(30), SIGTERM), 0);
  load.Stop();
  // Every line parses (a torn line fails ReadJsonLines).
  auto lines = ReadJsonLines(mitmd_.flows_path());
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_GE(lines->size(), 6u);
}

TEST_F(ProxyTest, KillNineUnderLoadThenRestartServesAndShowsTheLog) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  options.extra_args = {"--flows", dir_.File("session.jsonl")};
  const std::string log = dir_.File("session.jsonl");
  int completed_before_kill = 0;
  {
    MitmdProcess first;  // its destructor reaps it without asserting an exit code
    ASSERT_TRUE(first.Start(options));
    Load load(first, up->Url("/stream/131072"), 6);
    ASSERT_TRUE(WaitForDone(load, 6));
    // The session log is written off the proxy path (a writer thread, behind on a busy
    // machine): wait (bounded) until it holds a flow while the load goes on, then kill.
    Step("downloads completed; waiting for the session log's first flow");
    for (auto end = Clock::now() + kWait; !HasWholeLine(log) && Clock::now() < end;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    completed_before_kill = load.done();
    Step("kill -9");
    ::kill(first.pid(), SIGKILL);
    load.Stop();
  }
  Step("reading the session log");
  auto before = LoadFlowsFile(log, 100000);
  ASSERT_TRUE(before) << before.error().message;
  // Flows completed in the last moments may still be queued for the writer thread (on a busy
  // machine, seconds behind): the figure goes to the test log, the assertion is that the log
  // holds flows and reads cleanly.
  std::printf("kill -9: %d downloads completed, %zu flows in the session log\n",
              completed_before_kill, before->flows.size());
  EXPECT_GE(before->flows.size(), 1u);
  EXPECT_LE(before->skipped, 1u) << "at most the last line is torn by the kill";

  Step("restarting mitmd on the same session log");
  MitmdProcess again;
  ASSERT_TRUE(again.Start(options));
  ProcessResult r = again.Curl({"-s", "-o", "/dev/null", "-w", "%{http_code}", up->Url("/bytes/10")});
  EXPECT_EQ(r.out, "200") << r.err;
  EXPECT_EQ(again.Stop(), 0);
  auto after = LoadFlowsFile(log, 100000);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->flows.size(), before->flows.size() + 1)
      << "the flow recorded after the restart is readable, not glued onto a torn line; "
      << "skipped before " << before->skipped << ", after " << after->skipped << ": "
      << (after->warnings.empty() ? "" : after->warnings.front());
}

}  // namespace
}  // namespace mitmd::testing
