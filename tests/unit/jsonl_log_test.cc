// The session log when the disk fills at any point of a write (store_test.cc has the single
// cases). The file size limit stands in for a full disk: write() stops short, then fails with
// EFBIG instead of ENOSPC, through the same path in JsonlLog.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <string>

#include "core/strings.h"
#include "store/jsonl_log.h"
#include "support/temp_dir.h"

namespace mitmd {
namespace {

using testing::TempDir;

// Lets writes to files end at |limit| bytes for its life (SIGXFSZ ignored, so write() says so).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t limit) {
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &ignore, &saved_action_);
    getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit small{limit, saved_.rlim_max};
    ok_ = setrlimit(RLIMIT_FSIZE, &small) == 0;
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    sigaction(SIGXFSZ, &saved_action_, nullptr);
  }
  bool ok() const { return ok_; }

 private:
  struct sigaction saved_action_{};
  rlimit saved_{};
  bool ok_ = false;
};

// The flake this guards against: a flow's line, once in the log, must survive a later batch that
// the full disk cuts anywhere (a truncation at a stale offset would cut into it). Every cut point
// of a two-line batch, after a line that was written whole: the log keeps the earlier line and
// the batch's whole lines only, and the next append is a line of its own.
TEST(JsonlLogTest, WhereverTheDiskFillsEarlierLinesStayAndNoLineIsTorn) {
  const std::string first = "{\"first\":1}\n";
  const std::string batch = "{\"second\":2}\n{\"third\":3}\n";
  const std::string after = "{\"after\":4}\n";
  for (size_t room = 0; room <= batch.size(); ++room) {
    SCOPED_TRACE(StrCat("room for ", room, " bytes of the batch"));
    TempDir dir;
    const std::string path = dir.File("f.jsonl");
    auto log = store::JsonlLog::Open(path);
    ASSERT_TRUE(log) << log.error().message;
    ASSERT_TRUE((*log)->Append(first));
    Status st;
    {
      FileSizeLimit limit(first.size() + room);
      ASSERT_TRUE(limit.ok());
      st = (*log)->Append(batch);
    }
    EXPECT_EQ(static_cast<bool>(st), room == batch.size());
    size_t whole = room == 0 ? std::string::npos : batch.rfind('\n', room - 1);
    std::string kept = first + batch.substr(0, whole == std::string::npos ? 0 : whole + 1);
    EXPECT_EQ(testing::ReadFile(path), kept);
    ASSERT_TRUE((*log)->Append(after));
    EXPECT_EQ(testing::ReadFile(path), kept + after);
  }
}

// The same after a reopen: a log whose last line a crash tore is terminated first, and a full
// disk during that batch still leaves whole lines.
TEST(JsonlLogTest, AFullDiskRightAfterATornLastLineStillLeavesWholeLines) {
  const std::string batch = "{\"second\":2}\n";
  for (size_t room = 0; room <= batch.size() + 1; ++room) {
    SCOPED_TRACE(StrCat("room for ", room, " bytes"));
    TempDir dir;
    const std::string path = dir.File("f.jsonl");
    testing::WriteFile(path, "{\"whole\":1}\n{\"torn");
    const size_t before = testing::ReadFile(path).size();
    std::unique_ptr<store::JsonlLog> log;
    {
      FileSizeLimit limit(before + room);
      ASSERT_TRUE(limit.ok());
      auto opened = store::JsonlLog::Open(path);
      if (room == 0) {
        // Not even the line end fits: start-up says so instead of appending to the torn line.
        ASSERT_FALSE(opened);
        continue;
      }
      ASSERT_TRUE(opened) << opened.error().message;
      log = std::move(*opened);
      (void)log->Append(batch);
    }
    std::string text = testing::ReadFile(path);
    EXPECT_EQ(text.substr(0, before + 1), "{\"whole\":1}\n{\"torn\n");
    EXPECT_TRUE(text == "{\"whole\":1}\n{\"torn\n" || text == "{\"whole\":1}\n{\"torn\n" + batch) << text;
    ASSERT_TRUE(log->Append("{\"after\":4}\n"));
    EXPECT_EQ(testing::ReadFile(path).back(), '\n');
    EXPECT_NE(testing::ReadFile(path).find("\n{\"after\":4}\n"), std::string::npos);
  }
}

}  // namespace
}  // namespace mitmd
