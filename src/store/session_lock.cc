#include "store/session_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::store {

std::string SessionLock::LockPath(const std::string& db_path) {
  constexpr std::string_view kExt = ".sqlite";
  std::string base = db_path.ends_with(kExt) ? db_path.substr(0, db_path.size() - kExt.size()) : db_path;
  return base + ".lock";
}

Result<SessionLock> SessionLock::Acquire(const std::string& db_path) {
  std::string path = LockPath(db_path);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(StrCat("cannot open the session lock ", path, ": ", std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Fail(StrCat("the session ", db_path, " is in use by another mitmd (or mitmd sessions); "
                         "stop it, or record into another session with --session NAME"));
    }
    return Fail(StrCat("cannot lock the session ", db_path, ": ", std::strerror(err)));
  }
  return SessionLock(fd);
}

bool SessionLock::Held(const std::string& db_path) {
  int fd = ::open(LockPath(db_path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

SessionLock& SessionLock::operator=(SessionLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

SessionLock::~SessionLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace mitmd::store
