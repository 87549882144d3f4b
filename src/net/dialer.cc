#include "net/dialer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <cstring>

#include "core/strings.h"

namespace mitmd::net {

std::string_view ToString(DialPhase phase) {
  switch (phase) {
    case DialPhase::kDns: return "dns";
    case DialPhase::kPolicy: return "policy";
    case DialPhase::kConnect: return "connect";
  }
  return "unknown";
}

bool IsReservedUnresolvableName(std::string_view host) {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  auto ends_with_label = [&](std::string_view label) {
    if (host.size() < label.size()) return false;
    std::string_view tail = host.substr(host.size() - label.size());
    for (size_t i = 0; i < label.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(tail[i])) != label[i]) return false;
    }
    return host.size() == label.size() || host[host.size() - label.size() - 1] == '.';
  };
  return ends_with_label("invalid");
}

std::string SockaddrToString(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    return StrCat(buf, ":", ntohs(a->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    return StrCat("[", buf, "]:", ntohs(a->sin6_port));
  }
  return "?";
}

Dialer::Dialer(event_base* base, evdns_base* dns, const std::vector<Cidr>* allow)
    : base_(base), dns_(dns), allow_(allow) {}

std::unique_ptr<DialAttempt> Dialer::Dial(const std::string& host, uint16_t port,
                                          std::chrono::milliseconds timeout, Callback done) {
  std::unique_ptr<DialAttempt> attempt(
      new DialAttempt(base_, dns_, allow_, host, port, timeout, std::move(done)));
  attempt->Start();
  return attempt;
}

DialAttempt::DialAttempt(event_base* base, evdns_base* dns, const std::vector<Cidr>* allow,
                         std::string host, uint16_t port, std::chrono::milliseconds timeout,
                         Dialer::Callback done)
    : base_(base), dns_(dns), allow_(allow), host_(std::move(host)), port_(port),
      timeout_(timeout), done_(std::move(done)) {
  timeout_ev_ = evtimer_new(base_, TimeoutCb, this);
  deliver_ev_ = event_new(base_, -1, 0, DeliverCb, this);
}

DialAttempt::~DialAttempt() {
  if (alive_) *alive_ = false;
  if (dns_req_) evdns_getaddrinfo_cancel(dns_req_);
  if (socket_ev_) event_free(socket_ev_);
  if (fd_ >= 0) ::close(fd_);
  event_free(timeout_ev_);
  event_free(deliver_ev_);
  if (result_ && *result_ && (*result_)->fd >= 0) ::close((*result_)->fd);
}

void DialAttempt::Start() {
  timeval tv{static_cast<time_t>(timeout_.count() / 1000),
             static_cast<suseconds_t>((timeout_.count() % 1000) * 1000)};
  evtimer_add(timeout_ev_, &tv);
  if (IsReservedUnresolvableName(host_)) {
    Finish(std::unexpected(DialError{DialPhase::kDns,
        StrCat("cannot resolve host '", host_, "' (no such name: .invalid never resolves)")}));
    return;
  }
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  std::string port = StrCat(port_);
  // May call back synchronously (IP literals, /etc/hosts); the result is delivered from the loop.
  dns_req_ = evdns_getaddrinfo(dns_, host_.c_str(), port.c_str(), &hints, ResolvedCb, this);
}

void DialAttempt::ResolvedCb(int result, evutil_addrinfo* res, void* arg) {
  auto* self = static_cast<DialAttempt*>(arg);
  self->dns_req_ = nullptr;
  if (result == EVUTIL_EAI_CANCEL) return;
  self->OnResolved(result, res);
  if (res) evutil_freeaddrinfo(res);
}

void DialAttempt::OnResolved(int result, evutil_addrinfo* res) {
  if (result != 0) {
    std::string why = result == EVUTIL_EAI_NONAME ? "no such name" : evutil_gai_strerror(result);
    Finish(std::unexpected(
        DialError{DialPhase::kDns, StrCat("cannot resolve host '", host_, "' (", why, ")")}));
    return;
  }
  std::string refused;
  for (evutil_addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    bool allowed = allow_ == nullptr || allow_->empty();
    if (!allowed) {
      for (const Cidr& c : *allow_) allowed = allowed || c.Contains(ai->ai_addr);
    }
    if (!allowed) {
      if (!refused.empty()) refused += ", ";
      refused += SockaddrToString(ai->ai_addr);
      continue;
    }
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    addrs_.push_back(ss);
  }
  if (addrs_.empty()) {
    std::string allowed;
    for (const Cidr& c : *allow_) {
      if (!allowed.empty()) allowed.push_back(',');
      allowed.append(c.ToString());
    }
    Finish(std::unexpected(DialError{
        DialPhase::kPolicy, StrCat("mitmd is not allowed to connect to ", host_, " (", refused,
                                   "): not in --upstream-allow ", allowed)}));
    return;
  }
  TryNext();
}

void DialAttempt::TryNext() {
  while (next_ < addrs_.size()) {
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&addrs_[next_++]);
    socklen_t len = sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    fd_ = ::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd_ < 0) {
      last_connect_error_ = StrCat("cannot create a socket: ", std::strerror(errno));
      continue;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd_, sa, len) == 0 || errno == EINPROGRESS) {
      socket_ev_ = event_new(base_, fd_, EV_WRITE, SocketCb, this);
      event_add(socket_ev_, nullptr);
      return;
    }
    last_connect_error_ = errno == ECONNREFUSED
        ? StrCat("connection refused by ", SockaddrToString(sa))
        : StrCat("cannot connect to ", SockaddrToString(sa), ": ", std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
  }
  Finish(std::unexpected(DialError{DialPhase::kConnect, last_connect_error_}));
}

void DialAttempt::SocketCb(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<DialAttempt*>(arg);
  event_free(self->socket_ev_);
  self->socket_ev_ = nullptr;
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(&self->addrs_[self->next_ - 1]);
  if (err == 0) {
    int connected = self->fd_;
    self->fd_ = -1;
    self->Finish(Dialed{connected, SockaddrToString(sa)});
    return;
  }
  self->last_connect_error_ = err == ECONNREFUSED
      ? StrCat("connection refused by ", SockaddrToString(sa))
      : StrCat("cannot connect to ", SockaddrToString(sa), ": ", std::strerror(err));
  ::close(self->fd_);
  self->fd_ = -1;
  self->TryNext();
}

void DialAttempt::TimeoutCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<DialAttempt*>(arg);
  if (self->result_) return;
  double secs = static_cast<double>(self->timeout_.count()) / 1000.0;
  std::string secs_text = StrCat(static_cast<long>(secs));
  if (secs != static_cast<double>(static_cast<long>(secs))) {
    secs_text = StrCat(self->timeout_.count(), " ms");
  } else {
    secs_text += " s";
  }
  DialPhase phase = self->dns_req_ ? DialPhase::kDns : DialPhase::kConnect;
  std::string what = self->dns_req_ ? StrCat("timed out resolving '", self->host_, "'")
                                    : StrCat("timed out connecting to ", self->host_, ":", self->port_);
  self->Finish(std::unexpected(DialError{phase, StrCat(what, " after ", secs_text)}));
}

void DialAttempt::Finish(std::expected<Dialed, DialError> result) {
  if (result_) return;
  result_ = std::move(result);
  evtimer_del(timeout_ev_);
  if (dns_req_) {
    evdns_getaddrinfo_cancel(dns_req_);
    dns_req_ = nullptr;
  }
  if (socket_ev_) {
    event_free(socket_ev_);
    socket_ev_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  event_active(deliver_ev_, EV_TIMEOUT, 0);
}

void DialAttempt::DeliverCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<DialAttempt*>(arg);
  std::expected<Dialed, DialError> result = std::move(*self->result_);
  if (result) self->result_->value().fd = -1;  // ownership moves to the callback
  bool alive = true;
  self->alive_ = &alive;
  self->done_(std::move(result));
  if (alive) self->alive_ = nullptr;
}

}  // namespace mitmd::net
