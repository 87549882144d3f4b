#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "net/listener.h"
#include "support/temp_dir.h"

namespace mitmd::net {
namespace {

using std::chrono::milliseconds;

TEST(AcceptBackoffTest, PauseDoublesToOneSecondAndResetsAfterASuccess) {
  AcceptBackoff b;
  EXPECT_EQ(b.OnError(), milliseconds(100));
  EXPECT_EQ(b.OnError(), milliseconds(200));
  EXPECT_EQ(b.OnError(), milliseconds(400));
  EXPECT_EQ(b.OnError(), milliseconds(800));
  EXPECT_EQ(b.OnError(), milliseconds(1000));
  EXPECT_EQ(b.OnError(), milliseconds(1000));
  b.OnAccepted();
  EXPECT_EQ(b.OnError(), milliseconds(100));
}

TEST(AcceptBackoffTest, ErrorsAreLoggedOncePerSecondWithTheirCount) {
  testing::TempDir dir;
  std::string path = dir.File("log");
  FILE* f = std::fopen(path.c_str(), "w+");
  ASSERT_NE(f, nullptr);
  {
    Logger log(fileno(f), LogLevel::kInfo);
    AcceptErrorLog errors(log);
    // 1,000 failures spread over 2.5 s: three lines (at 0, 1000 and 2000 ms).
    for (int i = 0; i < 1000; ++i) errors.Failed(EMFILE, 10'000 + i * 5 / 2, milliseconds(100));
  }
  std::fflush(f);
  std::string text = testing::ReadFile(path);
  std::fclose(f);
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 3u) << text;
  EXPECT_NE(text.find("\"failures\":1,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"failures\":400,"), std::string::npos) << text;
  EXPECT_NE(text.find("Too many open files"), std::string::npos) << text;
}

TEST(AcceptBackoffTest, RaisesTheSoftOpenFileLimitToTheHardOne) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max < 512) GTEST_SKIP() << "hard limit too low to lower the soft one";
  rlimit lowered = saved;
  lowered.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  auto raised = RaiseOpenFileLimit();
  rlimit now{};
  getrlimit(RLIMIT_NOFILE, &now);
  setrlimit(RLIMIT_NOFILE, &saved);
  ASSERT_TRUE(raised) << raised.error().message;
  EXPECT_EQ(*raised, static_cast<uint64_t>(saved.rlim_max));
  EXPECT_EQ(now.rlim_cur, saved.rlim_max);
}

}  // namespace
}  // namespace mitmd::net
