#include "net/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::net {
namespace {

constexpr int kSoOriginalDst = 80;  // <linux/netfilter_ipv4.h>, which clashes with netinet/in.h

}  // namespace

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

Result<HostPort> OriginalDestination(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return Fail(StrCat("getsockname: ", std::strerror(errno)));
  }
  int level = ss.ss_family == AF_INET6 ? SOL_IPV6 : SOL_IP;
  len = sizeof(ss);
  // SO_ORIGINAL_DST (80) is the same number for IPv4 and IPv6 (IP6T_SO_ORIGINAL_DST).
  if (getsockopt(fd, level, kSoOriginalDst, &ss, &len) != 0) {
    return Fail(StrCat("SO_ORIGINAL_DST: ", std::strerror(errno)));
  }
  char text[INET6_ADDRSTRLEN] = {};
  HostPort hp;
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    hp.port = ntohs(in6->sin6_port);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    hp.port = ntohs(in->sin_port);
  }
  hp.host = text;
  return hp;
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

std::chrono::milliseconds AcceptBackoff::OnError() {
  std::chrono::milliseconds pause = next_;
  next_ = std::min(next_ * 2, kMaxPause);
  return pause;
}

void AcceptErrorLog::Failed(int err, int64_t now_ms, std::chrono::milliseconds pause) {
  uint64_t count = failures_.fetch_add(1) + 1;
  int64_t last = last_log_ms_.load();
  if (now_ms - last < 1000) return;
  if (!last_log_ms_.compare_exchange_strong(last, now_ms)) return;  // another worker logs it
  count = failures_.exchange(0);
  log_.Warn("accept failed: not accepting new connections for a moment",
            {{"error", std::strerror(err)},
             {"failures", count},
             {"pause_ms", pause.count()},
             {"hint", err == EMFILE || err == ENFILE
                          ? "out of file descriptors: raise the limit (ulimit -n) or close idle clients"
                          : ""}});
}

std::unique_ptr<ListenerBackoff> ListenerBackoff::Create(evconnlistener* listener,
                                                         event_base* base,
                                                         AcceptErrorLog& errors) {
  std::unique_ptr<ListenerBackoff> b(new ListenerBackoff(listener, errors));
  b->resume_ = evtimer_new(base, &ListenerBackoff::ResumeCb, b.get());
  if (b->resume_ == nullptr) return nullptr;
  return b;
}

ListenerBackoff::ListenerBackoff(evconnlistener* listener, AcceptErrorLog& errors)
    : listener_(listener), errors_(errors) {}

ListenerBackoff::~ListenerBackoff() {
  if (resume_ != nullptr) event_free(resume_);
}

void ListenerBackoff::Failed(int err) {
  std::chrono::milliseconds pause = backoff_.OnError();
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  errors_.Failed(err, std::chrono::duration_cast<std::chrono::milliseconds>(now).count(), pause);
  evconnlistener_disable(listener_);
  timeval tv{static_cast<time_t>(pause.count() / 1000),
             static_cast<suseconds_t>((pause.count() % 1000) * 1000)};
  evtimer_add(resume_, &tv);
}

void ListenerBackoff::ResumeCb(int, short, void* arg) {
  auto* self = static_cast<ListenerBackoff*>(arg);
  evconnlistener_enable(self->listener_);
}

Result<uint64_t> RaiseOpenFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    return Fail(StrCat("cannot read the open-file limit: ", std::strerror(errno)));
  }
  if (lim.rlim_cur < lim.rlim_max) {
    rlim_t before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      return Fail(StrCat("cannot raise the open-file limit from ", before, " to ", lim.rlim_max,
                         ": ", std::strerror(errno)));
    }
  }
  return static_cast<uint64_t>(lim.rlim_cur);
}

}  // namespace mitmd::net
