#pragma once
// JsonlLog: the session log as JSON lines (`--flows FILE`), for `tail -f | jq` users. Written by
// the store's writer thread only. It never tears silently: a short write or a full disk is an
// error the store logs and the viewer shows, and the part of a line that reached the file is cut
// off again (or, if that fails, the next append starts a fresh line), so a later flow is never
// glued onto a torn one. Opening terminates a torn last line left by a crash.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::store {

class JsonlLog {
 public:
  // Opens (creating, mode 0600) |path| for appending.
  static Result<std::unique_ptr<JsonlLog>> Open(const std::string& path);
  ~JsonlLog();
  JsonlLog(const JsonlLog&) = delete;
  JsonlLog& operator=(const JsonlLog&) = delete;

  // Appends |lines| (whole lines, each ending in '\n'). On failure returns the error (also kept
  // in last_error()); what was written of |lines| is terminated by the next append.
  Status Append(std::string_view lines);

  const std::string& path() const { return path_; }
  // The latest failure ("" when the last append succeeded) and how many appends failed.
  const std::string& last_error() const { return last_error_; }
  uint64_t failures() const { return failures_; }

 private:
  JsonlLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  // Writes all of |data|; false (errno set) on a short or failed write.
  bool WriteAll(std::string_view data, size_t* written);

  std::string path_;
  int fd_;
  bool torn_ = false;  // the file may end inside a line
  std::string last_error_;
  uint64_t failures_ = 0;
};

}  // namespace mitmd::store
