#include "store/jsonl_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::store {

Result<std::unique_ptr<JsonlLog>> JsonlLog::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(StrCat("cannot open the session log ", path, ": ", std::strerror(errno)));
  auto log = std::unique_ptr<JsonlLog>(new JsonlLog(path, fd));
  struct stat st{};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    char last = 0;
    if (::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') log->torn_ = true;
  }
  if (log->torn_) {
    // A crash in the middle of a line: end it, so the next flow starts on its own line.
    size_t written = 0;
    if (!log->WriteAll("\n", &written)) {
      return Fail(StrCat("cannot terminate the torn last line of ", path, ": ", std::strerror(errno)));
    }
    log->torn_ = false;
  }
  return log;
}

JsonlLog::~JsonlLog() { ::close(fd_); }

bool JsonlLog::WriteAll(std::string_view data, size_t* written) {
  *written = 0;
  while (*written < data.size()) {
    ssize_t n = ::write(fd_, data.data() + *written, data.size() - *written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      errno = EIO;
      return false;
    }
    *written += static_cast<size_t>(n);
  }
  return true;
}

Status JsonlLog::Append(std::string_view lines) {
  if (lines.empty()) return {};
  std::string buffer;
  std::string_view data = lines;
  if (torn_) {
    buffer.reserve(lines.size() + 1);
    buffer.push_back('\n');
    buffer.append(lines);
    data = buffer;
  }
  // The writer thread is the file's only writer: its end now is where this append starts.
  const off_t start = ::lseek(fd_, 0, SEEK_END);
  size_t written = 0;
  if (WriteAll(data, &written)) {
    torn_ = false;
    last_error_.clear();
    return {};
  }
  int err = errno;
  // Whatever reached the file may end mid-line: the part of a line is cut off again, so the log
  // keeps whole lines only (a reader never meets a torn one). When that fails too, the next
  // append starts on a fresh line instead. When nothing was written the file ends as before.
  if (written > 0) {
    torn_ = false;
    if (data[written - 1] != '\n') {
      // (A torn_ append began with '\n', so a line end is always found then.)
      size_t last_newline = data.rfind('\n', written - 1);
      off_t keep = start + (last_newline == std::string_view::npos ? 0 : static_cast<off_t>(last_newline) + 1);
      torn_ = !(start >= 0 && ::ftruncate(fd_, keep) == 0);
    }
  }
  ++failures_;
  last_error_ = StrCat("cannot write the session log ", path_, " (", written, " of ", data.size(),
                       " bytes written): ", std::strerror(err),
                       err == ENOSPC ? "; free some disk space" : "");
  return Fail(last_error_);
}

}  // namespace mitmd::store
