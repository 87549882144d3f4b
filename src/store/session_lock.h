#pragma once
// SessionLock: one writer per session. The process that records into a session (mitmd, or
// `mitmd sessions import`) holds an exclusive flock on <NAME>.lock beside the database for as
// long as it writes; a second one gets a message naming the session instead of two writers
// handing out the same seqs. A lock file of its own, never the database: closing any descriptor
// of the database would drop SQLite's own POSIX locks in this process.

#include <string>

#include "core/result.h"

namespace mitmd::store {

class SessionLock {
 public:
  // Takes the lock for the database at |db_path| (its lock file is |db_path| with ".sqlite"
  // replaced by ".lock"), without waiting.
  static Result<SessionLock> Acquire(const std::string& db_path);
  // True when another process (or another SessionLock) holds the lock now.
  static bool Held(const std::string& db_path);
  static std::string LockPath(const std::string& db_path);

  SessionLock(SessionLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  SessionLock& operator=(SessionLock&& other) noexcept;
  SessionLock(const SessionLock&) = delete;
  SessionLock& operator=(const SessionLock&) = delete;
  ~SessionLock();

 private:
  explicit SessionLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace mitmd::store
