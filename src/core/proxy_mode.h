#pragma once
// --mode: how clients reach mitmd on one listening address (like mitmproxy 10's modes).
//   regular                               an HTTP proxy (also SOCKS5 and HTTPS proxy) (default)
//   upstream:SCHEME://[USER:PASS@]HOST:PORT   the same, but every upstream connection goes
//                                         through the next proxy: http (CONNECT), https
//                                         (CONNECT over TLS to the proxy, verified against the
//                                         system CAs and --upstream-proxy-ca) or socks5
//                                         (names resolved by the proxy, as socks5h)
//   reverse:SCHEME://HOST[:PORT]          clients talk to mitmd as if it were that server
//   transparent                           connections redirected to mitmd by the firewall;
//                                         the destination comes from SO_ORIGINAL_DST
// Each may end in @PORT or @HOST:PORT, its own listening address (default: --listen).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.h"
#include "core/result.h"

namespace mitmd {

struct ProxyMode {
  enum class Kind { kRegular, kUpstream, kReverse, kTransparent };

  Kind kind = Kind::kRegular;
  // upstream and reverse: where to.
  std::string scheme;  // "http" or "https"; upstream also "socks5"
  std::string host;    // without brackets
  uint16_t port = 0;
  // upstream: the next proxy's credentials (Proxy-Authorization: Basic), never logged.
  std::string user;
  std::string password;
  std::optional<HostPort> listen;  // nullopt: --listen

  // The mode as a user would write it, without the password ("upstream:http://u:***@h:p").
  std::string Describe() const;
  // "host[:port]" as a Host header names the server (the port left out when it is the
  // scheme's default; IPv6 in brackets).
  std::string Authority() const;
};

std::string_view ToString(ProxyMode::Kind kind);

// Parses one --mode value; |default_host| is where "@PORT" listens.
Result<ProxyMode> ParseProxyMode(std::string_view text, std::string_view default_host);

}  // namespace mitmd
