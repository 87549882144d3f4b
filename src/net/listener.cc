#include "net/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::net {

Result<ListenSocket> OpenListenSocket(const HostPort& addr, int backlog) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | (addr.host == "localhost" ? 0 : AI_NUMERICHOST);
  addrinfo* res = nullptr;
  std::string port = StrCat(addr.port);
  int rc = getaddrinfo(addr.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return Fail(StrCat("cannot listen on ", addr.ToString(), ": ", gai_strerror(rc),
                       " (give an IP address such as 127.0.0.1 or [::1])"));
  }
  std::string last_error = "no usable address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    ListenSocket out{fd, addr};
    out.bound.port = ntohs(ss.ss_family == AF_INET
                               ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                               : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    freeaddrinfo(res);
    return out;
  }
  freeaddrinfo(res);
  return Fail(StrCat("cannot listen on ", addr.ToString(), ": ", last_error));
}

void TuneAcceptedSocket(int fd) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  int idle = 60, interval = 15, count = 4;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace mitmd::net
