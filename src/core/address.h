#pragma once
// Network addresses as the user writes them: HOST:PORT pairs and IP networks (CIDR), and the
// loopback test that decides what needs a token.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mitmd {

struct HostPort {
  std::string host;
  uint16_t port = 0;

  // "host:port", with IPv6 literals in brackets.
  std::string ToString() const;
};

// Parses "host:port", "[v6]:port" or ":port" (host defaults to |default_host|).
Result<HostPort> ParseHostPort(std::string_view text, std::string_view default_host = "127.0.0.1");

// True for 127.0.0.0/8, ::1, "localhost" and "::ffff:127.x.x.x".
bool IsLoopbackHost(std::string_view host);

// An IPv4 or IPv6 network, e.g. "127.0.0.0/8" or "::1/128". A bare address is a /32 or /128.
class Cidr {
 public:
  static Result<Cidr> Parse(std::string_view text);
  bool Contains(const sockaddr* addr) const;
  std::string ToString() const;
  // |ip|: an IPv4 or IPv6 literal.
  bool ContainsIp(std::string_view ip) const;

 private:
  int family_ = AF_INET;
  uint8_t bytes_[16] = {};
  int prefix_ = 0;
};

// "10.0.0.7:51234" -> "10.0.0.7", "[::1]:80" -> "::1"; a bare address is returned as is.
std::string AddressWithoutPort(std::string_view address);
// Whether |address| (an IP literal, with or without its port) is in one of |nets|.
bool InNetworks(const std::vector<Cidr>& nets, std::string_view address);

}  // namespace mitmd
