// Out of file descriptors: mitmd stops accepting for a moment instead of spinning, logs once a
// second, and serves again as soon as descriptors are free. And it raises its own soft limit.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "integration/proxy_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

// User plus system CPU time of |pid| in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in(StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The soft "Max open files" of |pid|.
std::string SoftFdLimit(pid_t pid) {
  std::ifstream in(StrCat("/proc/", pid, "/limits"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Max open files")) {
      std::istringstream words(line.substr(14));
      std::string soft;
      words >> soft;
      return soft;
    }
  }
  return "";
}

int ConnectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

size_t CountOccurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(ProxyTest, OutOfDescriptorsBacksOffThenServesAgain) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer runtimes probe memory through a pipe (UBSan's vptr check does so for each new
  // dynamic type it meets): with no descriptor left the probe fails and every virtual call is
  // reported as an invalid vptr. The normal build runs this test.
  GTEST_SKIP() << "descriptor exhaustion cannot run under the sanitizers (they need descriptors)";
#endif
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  // Start mitmd with a soft limit below the hard one: it raises its own.
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit lowered = saved;
  lowered.rlim_cur = std::min<rlim_t>(saved.rlim_max, 256);
  setrlimit(RLIMIT_NOFILE, &lowered);
  StartMitmd();
  setrlimit(RLIMIT_NOFILE, &saved);
  ASSERT_TRUE(mitmd_.running());
  pid_t pid = mitmd_.pid();
  EXPECT_EQ(SoftFdLimit(pid), std::to_string(saved.rlim_max));

  // Then squeeze it to a few descriptors more than it holds idle, and fill them with clients.
  int baseline = CountOpenFds(pid);
  ASSERT_GT(baseline, 0);
  rlimit tight{static_cast<rlim_t>(baseline + 8), static_cast<rlim_t>(baseline + 8)};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &tight, nullptr), 0) << std::strerror(errno);
  std::vector<int> clients;
  for (int i = 0; i < 40; ++i) {
    int fd = ConnectTo(mitmd_.port());
    if (fd >= 0) clients.push_back(fd);
  }
  auto squeezed = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  double cpu_before = CpuSeconds(pid);
  auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  double cpu = CpuSeconds(pid) - cpu_before;
  std::string err = mitmd_.StderrText();
  auto now = std::chrono::steady_clock::now();
  double wall = std::chrono::duration<double>(now - wall_before).count();
  // The spinning accept loop burned a whole core (CPU time = wall time) and logged ~700,000
  // lines. Backing off, mitmd is nearly idle; a quarter of the wall time leaves room for a slow
  // (sanitizer) build on a busy machine, where a spinning loop still gets far more.
  EXPECT_LT(cpu, 0.25 * wall) << "CPU seconds while out of descriptors, over " << wall << " s";
  // One line a second (plus the first): counted against the time that really passed, which a
  // loaded machine stretches.
  double since_squeeze = std::chrono::duration<double>(now - squeezed).count();
  size_t lines = CountOccurrences(err, "accept failed");
  EXPECT_GE(lines, 1u) << err.substr(0, 2000);
  EXPECT_LE(lines, static_cast<size_t>(since_squeeze) + 2) << err.substr(0, 2000);
  EXPECT_NE(err.find("Too many open files"), std::string::npos);

  // Peers leave; descriptors come back; the next request is served.
  for (int fd : clients) ::close(fd);
  rlimit roomy{4096, 4096};
  prlimit(pid, RLIMIT_NOFILE, &roomy, nullptr);
  int fds = -1;
  // Bounded wait: the listener retries accept after its back-off (at most 1 s), then each
  // accepted peer is found closed; a loaded machine takes longer than an idle one.
  for (int i = 0; i < 200; ++i) {
    fds = CountOpenFds(pid);
    if (fds <= baseline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LE(fds, baseline) << "descriptors not released within 10 s";
  ProcessResult r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", up->Url("/bytes/10")});
  EXPECT_EQ(r.out, "200") << r.err;
}

}  // namespace
}  // namespace mitmd::testing
