#pragma once

#include "core/config.h"
#include "core/result.h"

namespace mitmd::net {

struct ListenSocket {
  int fd = -1;
  HostPort bound;  // with the real port when 0 was asked for
};

// A non-blocking listening TCP socket (SO_REUSEADDR, CLOEXEC) on |addr|. The host must be an
// IP literal or "localhost".
Result<ListenSocket> OpenListenSocket(const HostPort& addr, int backlog = 1024);

// TCP keep-alive and no Nagle on an accepted connection.
void TuneAcceptedSocket(int fd);

}  // namespace mitmd::net
