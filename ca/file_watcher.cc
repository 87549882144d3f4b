#include "ca/file_watcher.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;

}  // namespace

Result<std::unique_ptr<FileWatcher>> FileWatcher::Start(const std::vector<std::string>& paths,
                                                        std::chrono::milliseconds settle,
                                                        std::function<void()> on_change) {
  int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ifd < 0) return Fail(StrCat("cannot watch the CA files (inotify): ", std::strerror(errno)));
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) {
    close(ifd);
    return Fail(StrCat("cannot watch the CA files (eventfd): ", std::strerror(errno)));
  }
  std::vector<Watch> watches;
  for (const std::string& path : paths) {
    std::filesystem::path p(path);
    std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    int wd = inotify_add_watch(ifd, dir.c_str(), kEvents | IN_ONLYDIR);
    if (wd < 0) {
      std::string why = std::strerror(errno);
      close(ifd);
      close(efd);
      return Fail(StrCat("cannot watch ", dir, ": ", why));
    }
    // The same directory twice yields the same watch descriptor.
    auto it =
        std::find_if(watches.begin(), watches.end(), [wd](const Watch& w) { return w.wd == wd; });
    if (it == watches.end()) it = watches.insert(watches.end(), Watch{wd, {}});
    it->names.push_back(p.filename().string());
  }
  return std::unique_ptr<FileWatcher>(
      new FileWatcher(ifd, efd, std::move(watches), settle, std::move(on_change)));
}

FileWatcher::FileWatcher(int inotify_fd, int wake_fd, std::vector<Watch> watches,
                         std::chrono::milliseconds settle, std::function<void()> on_change)
    : inotify_fd_(inotify_fd),
      wake_fd_(wake_fd),
      watches_(std::move(watches)),
      settle_(settle),
      on_change_(std::move(on_change)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ca-watcher");  // for top -H and /proc/PID/task
    Run();
  });
}

FileWatcher::~FileWatcher() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // an eventfd write of 1 cannot fail short of overflow
  thread_.join();
  close(inotify_fd_);
  close(wake_fd_);
}

bool FileWatcher::DrainEvents() {
  bool relevant = false;
  alignas(inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = read(inotify_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        relevant = true;
        continue;
      }
      if (ev->len == 0) continue;
      std::string_view name(ev->name);
      for (const Watch& w : watches_) {
        if (w.wd == ev->wd && std::find(w.names.begin(), w.names.end(), name) != w.names.end()) {
          relevant = true;
        }
      }
    }
  }
  return relevant;
}

void FileWatcher::Run() {
  using Clock = std::chrono::steady_clock;
  bool pending = false;
  Clock::time_point deadline;
  for (;;) {
    int timeout = -1;
    if (pending) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(left.count(), 0));
    }
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if ((fds[0].revents & POLLIN) && DrainEvents()) {
      pending = true;
      deadline = Clock::now() + settle_;
    }
    if (pending && Clock::now() >= deadline) {
      pending = false;
      on_change_();
    }
  }
}

}  // namespace mitmd::ca
