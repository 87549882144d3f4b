#include "net/keylog.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fd_io.h"
#include "core/strings.h"

namespace mitmd::net {

Result<std::unique_ptr<KeyLog>> KeyLog::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(StrCat("cannot open the key log ", path, ": ", std::strerror(errno)));
  return std::unique_ptr<KeyLog>(new KeyLog(fd));
}

KeyLog::~KeyLog() { ::close(fd_); }

void KeyLog::Write(const char* line) {
  std::string text = StrCat(line, "\n");
  std::lock_guard lock(mu_);
  WriteAll(fd_, text);
}

void KeyLog::Attach(SSL_CTX* ctx, KeyLog* log) {
  SSL_CTX_set_app_data(ctx, log);
  SSL_CTX_set_keylog_callback(ctx, [](const SSL* ssl, const char* line) {
    static_cast<KeyLog*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)))->Write(line);
  });
}

}  // namespace mitmd::net
