// A full disk (a small tmpfs holding the confdir): mitmd keeps proxying, says loudly that flows
// are missing from the session log and database (stderr and /api/info), never leaves a torn line
// for the next flow to be glued onto, records again once there is room, and starts again on the
// same directory with every flow it recorded. Needs root for the mount; skipped with a message
// otherwise.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <regex>
#include <thread>
#include <vector>
#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/upstream_server.h"

namespace mitmd::testing {
namespace {

using nlohmann::json;

constexpr char kTmpfsSize[] = "size=2m";

// Mounts a small tmpfs for the test's life.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& path) : path_(path) {
    ::mkdir(path.c_str(), 0700);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, kTmpfsSize) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// Fills the file system holding |path| until a write fails with ENOSPC.
void FillUp(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::string block(4096, 'x');
  while (::write(fd, block.data(), block.size()) > 0) {
  }
  // Whatever is left, down to the byte.
  while (::write(fd, "x", 1) > 0) {
  }
  EXPECT_EQ(errno, ENOSPC);
  ::close(fd);
}

std::string ViewerBase(const MitmdProcess& m) {
  std::smatch match;
  std::string out = m.StdoutText();
  if (!std::regex_search(out, match, std::regex("viewer listening on (\\S+)/"))) return "";
  return match[1];
}

json Info(const std::string& base) {
  return json::parse(RunCurl({"-s", base + "/api/info"}).out, nullptr, false);
}

template <typename F>
bool WaitFor(F done, std::chrono::milliseconds limit) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

TEST(FaultDiskTest, AFullDiskIsLoudLosesNothingRecordedAndRecoversWhenThereIsRoom) {
  TempDir dir;
  SmallDisk disk(dir.File("disk"));
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a small tmpfs (" << disk.error() << "): needs root";
  const std::string conf = dir.File("disk/conf");
  UpstreamOptions o;
  o.tls = false;
  UpstreamServer upstream(o);
  ASSERT_TRUE(upstream.Start());
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  options.extra_args = {"--confdir", conf, "--flows", conf + "/flows.jsonl", "--web", "127.0.0.1:0"};
  auto mitmd = std::make_unique<MitmdProcess>();
  ASSERT_TRUE(mitmd->Start(options));
  const std::string base = ViewerBase(*mitmd);
  ASSERT_FALSE(base.empty()) << mitmd->StdoutText();
  auto get = [&](const std::string& path) {
    return mitmd->Curl({"-s", "-o", "/dev/null", "-w", "%{http_code}", upstream.Url(path)}).out;
  };
  ASSERT_EQ(get("/bytes/100?before=1"), "200");
  // Recorded means on its line in the session log. /api/info's count is no sign of that: it
  // includes the row the store wrote while the request was live, and the flow's line is written
  // with its final record, a batch later. Filling the disk between the two (a loaded machine's
  // writer thread is late) lost the line legitimately and failed the check below.
  const std::string log_path = conf + "/flows.jsonl";
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log_path).find("before=1") != std::string::npos; },
                      std::chrono::seconds(10)));

  // The disk fills up: requests are still answered, and mitmd says what it cannot keep.
  const std::string filler = dir.File("disk/filler");
  ASSERT_NO_FATAL_FAILURE(FillUp(filler));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(get(StrCat("/bytes/20000?full=", i)), "200");
  EXPECT_TRUE(WaitFor([&] {
    json info = Info(base);
    return info.is_object() && info["store"].contains("log_error");
  }, std::chrono::seconds(10))) << Info(base).dump();
  EXPECT_TRUE(WaitFor([&] { return mitmd->StderrText().find("FLOWS ARE MISSING") != std::string::npos; },
                      std::chrono::seconds(10)))
      << mitmd->StderrText().substr(0, 2000);

  // Room again: the next flows are recorded, on lines of their own.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(get(StrCat("/bytes/100?after=", i)), "200");
  EXPECT_TRUE(WaitFor([&] {
    json info = Info(base);
    return info.is_object() && !info["store"].contains("log_error");
  }, std::chrono::seconds(10))) << Info(base).dump();
  EXPECT_EQ(mitmd->Stop(), 0);

  auto lines = ReadJsonLines(log_path);
  ASSERT_TRUE(lines) << lines.error().message;  // every line parses: nothing glued, nothing torn
  std::vector<std::string> paths;
  for (const json& l : *lines) paths.push_back(l["request"]["path"]);
  EXPECT_EQ(paths.front(), "/bytes/100?before=1");
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), StrCat("/bytes/100?after=", i)), paths.end())
        << "a flow recorded after the disk had room again is missing from the log";
  }

  // The next start on the same directory lists what the database kept, including those.
  auto again = std::make_unique<MitmdProcess>();
  ASSERT_TRUE(again->Start(options));
  const std::string base2 = ViewerBase(*again);
  json list = json::parse(RunCurl({"-s", base2 + "/api/flows?filter=" + "path:/bytes/100"}).out, nullptr, false);
  ASSERT_TRUE(list.is_object());
  EXPECT_EQ(list["flows"].size(), 4u) << list.dump().substr(0, 1000);
  EXPECT_EQ(again->Stop(), 0);
}

}  // namespace
}  // namespace mitmd::testing
