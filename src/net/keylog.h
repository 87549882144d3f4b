#pragma once
// The NSS key log format (SSLKEYLOGFILE) for Wireshark: one line per secret, appended to a file
// (mode 0600) from any thread.

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>

#include "core/result.h"

namespace mitmd::net {

class KeyLog {
 public:
  static Result<std::unique_ptr<KeyLog>> Open(const std::string& path);
  ~KeyLog();

  void Write(const char* line);
  // Routes |ctx|'s secrets to |log| (which must outlive it). Uses the context's app data slot.
  static void Attach(SSL_CTX* ctx, KeyLog* log);

 private:
  explicit KeyLog(int fd) : fd_(fd) {}
  int fd_;
  std::mutex mu_;
};

}  // namespace mitmd::net
