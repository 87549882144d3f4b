#include "support/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::testing {

Result<RawReply> RawExchange(const std::string& host, uint16_t port, std::string_view request,
                             std::chrono::milliseconds timeout) {
  sockaddr_storage ss = {};
  socklen_t len;
  if (host.find(':') != std::string::npos) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) return Fail("bad host " + host);
    len = sizeof(*sin6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) return Fail("bad host " + host);
    len = sizeof(*sin);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(StrCat("socket: ", strerror(errno)));
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::string err = strerror(errno);
    close(fd);
    return Fail(StrCat("connect to ", host, ":", port, ": ", err));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!request.empty()) {
    ssize_t n = send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the peer may legitimately close before reading everything
    request.remove_prefix(static_cast<size_t>(n));
  }
  RawReply reply;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EOF, or a reset after the peer closed with our bytes unread
      reply.closed = true;
      break;
    }
    reply.data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

}  // namespace mitmd::testing
