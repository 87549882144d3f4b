#pragma once
// Dialer: resolves a host without blocking (evdns), keeps only the addresses --upstream-allow
// permits, and connects to them in turn within one overall timeout.

#include <event2/dns.h>
#include <event2/event.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <expected>
#include <string>
#include <vector>

#include "core/address.h"
#include "core/result.h"

namespace mitmd::net {

struct Dialed {
  int fd = -1;             // connected, non-blocking; the receiver owns it
  std::string addr_text;   // "127.0.0.1:443" or "[::1]:443"
};

// Which step failed, for the flow's error phase.
enum class DialPhase { kDns, kPolicy, kConnect };
std::string_view ToString(DialPhase phase);

struct DialError {
  DialPhase phase;
  std::string message;
};

class DialAttempt;

class Dialer {
 public:
  // |allow| empty means every address is allowed. Borrowed pointers outlive the Dialer.
  Dialer(event_base* base, evdns_base* dns, const std::vector<Cidr>* allow);

  using Callback = std::function<void(std::expected<Dialed, DialError>)>;
  // Starts a dial. |done| is always called later from the loop, never from inside Dial().
  // Destroying the returned attempt cancels it (|done| is then never called).
  std::unique_ptr<DialAttempt> Dial(const std::string& host, uint16_t port,
                                    std::chrono::milliseconds timeout, Callback done);

 private:
  event_base* base_;
  evdns_base* dns_;
  const std::vector<Cidr>* allow_;
};

// Names RFC 6761 reserves as never resolving: answered locally, never sent to a DNS server.
bool IsReservedUnresolvableName(std::string_view host);

class DialAttempt {
 public:
  ~DialAttempt();

 private:
  friend class Dialer;
  DialAttempt(event_base* base, evdns_base* dns, const std::vector<Cidr>* allow, std::string host,
              uint16_t port, std::chrono::milliseconds timeout, Dialer::Callback done);
  void Start();
  static void ResolvedCb(int result, evutil_addrinfo* res, void* arg);
  static void SocketCb(evutil_socket_t fd, short what, void* arg);
  static void TimeoutCb(evutil_socket_t, short, void* arg);
  static void DeliverCb(evutil_socket_t, short, void* arg);
  void OnResolved(int result, evutil_addrinfo* res);
  void TryNext();
  void Finish(std::expected<Dialed, DialError> result);

  event_base* base_;
  evdns_base* dns_;
  const std::vector<Cidr>* allow_;
  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  Dialer::Callback done_;
  evdns_getaddrinfo_request* dns_req_ = nullptr;
  std::vector<sockaddr_storage> addrs_;
  size_t next_ = 0;
  int fd_ = -1;
  event* socket_ev_ = nullptr;
  event* timeout_ev_ = nullptr;
  event* deliver_ev_ = nullptr;
  std::string last_connect_error_;
  std::optional<std::expected<Dialed, DialError>> result_;
  bool* alive_ = nullptr;  // set while a callback runs, cleared by the destructor
};

// "127.0.0.1:443" / "[::1]:443"
std::string SockaddrToString(const sockaddr* sa);

}  // namespace mitmd::net
