// ConsoleView writes finished flows in batches: the thread that prints them is woken once per
// batch, not once per flow, and a flow after a quiet spell is printed at once.

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "cli/console.h"
#include "core/strings.h"
#include "unit/web_test_flows.h"

namespace mitmd {
namespace {

using testing::MakeFlow;

// Reads |fd| until |text| has arrived or |timeout| passes.
bool ReadUntil(int fd, std::string& got, const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (got.find(text) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  return true;
}

TEST(ConsoleViewTest, BurstsArePrintedWholeAndAFlowAfterAQuietSpellAtOnce) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string got;
  {
    cli::ConsoleView view(fds[1], false, 10'000);
    // Bursts with short and long gaps: some end inside the printing thread's pause between
    // batches, some after it.
    for (int burst = 0; burst < 4; ++burst) {
      for (int i = 0; i < 50; ++i) {
        view.OnFlow(std::make_shared<const Flow>(MakeFlow({.path = StrCat("/b", burst, "-", i, "/")})));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(burst % 2 == 0 ? 5 : 100));
    }
    ASSERT_TRUE(ReadUntil(fds[0], got, "/b3-49/", std::chrono::seconds(10))) << got;
    // Quiet for several pauses; then one flow is printed without waiting for another (bounded
    // wait; the view is not destroyed, which would print it anyway).
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    view.OnFlow(std::make_shared<const Flow>(MakeFlow({.path = "/after-quiet/"})));
    EXPECT_TRUE(ReadUntil(fds[0], got, "/after-quiet/", std::chrono::seconds(10))) << got;
  }
  ::close(fds[1]);
  ::close(fds[0]);
  for (int burst = 0; burst < 4; ++burst) {
    for (int i = 0; i < 50; ++i) {
      std::string path = StrCat("/b", burst, "-", i, "/");
      size_t at = got.find(path);
      ASSERT_NE(at, std::string::npos) << path;
      EXPECT_EQ(got.find(path, at + 1), std::string::npos) << path << " printed twice";
    }
  }
}

}  // namespace
}  // namespace mitmd
