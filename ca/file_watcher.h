#pragma once
// Watches a few files for replacement or rewrite (inotify on their directories, so atomic
// renames onto the watched names are seen), and calls back once changes have settled.
// Owns one thread; the destructor wakes it through an eventfd and joins it.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace mitmd::ca {

class FileWatcher {
 public:
  // Watches |paths|. After any of them is closed after writing, renamed into place, created,
  // deleted or has its mode changed, and then no further such event arrives for |settle|,
  // calls |on_change| on the watcher's thread. |on_change| must not destroy the watcher.
  static Result<std::unique_ptr<FileWatcher>> Start(const std::vector<std::string>& paths,
                                                    std::chrono::milliseconds settle,
                                                    std::function<void()> on_change);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

 private:
  struct Watch {
    int wd;
    std::vector<std::string> names;  // base names watched in this directory
  };

  FileWatcher(int inotify_fd, int wake_fd, std::vector<Watch> watches,
              std::chrono::milliseconds settle, std::function<void()> on_change);
  void Run();
  // Reads pending inotify events; true when one concerns a watched name.
  bool DrainEvents();

  const int inotify_fd_;
  const int wake_fd_;
  const std::vector<Watch> watches_;
  const std::chrono::milliseconds settle_;
  const std::function<void()> on_change_;
  std::thread thread_;
};

}  // namespace mitmd::ca
