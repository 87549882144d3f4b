#pragma once
// Where a proxy request points, parsed from its request target; and the head rewrite that plain
// HTTP proxying needs. Pure functions, tested without sockets.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::proxy {

struct Target {
  std::string scheme;  // "http" / "https"; empty for authority-form
  std::string host;    // without brackets
  uint16_t port = 0;
  std::string path;    // origin-form path and query ("/" when empty); empty for authority-form
};

// "host:port" or "[v6]:port" (CONNECT). The port is required.
Result<Target> ParseAuthorityForm(std::string_view target);

// "http://host[:port]/path?query". Other schemes are an error naming the scheme.
Result<Target> ParseAbsoluteForm(std::string_view target);

// |target| without the userinfo of an absolute-form URL ("http://me:pw@a.test/" becomes
// "http://a.test/"), so that credentials in a URL are never recorded; any other target as it is.
std::string WithoutUserinfo(std::string_view target);

// "Host" header value to host and port (default |default_port|).
Target ParseHostHeader(std::string_view value, uint16_t default_port);

// Rewrites a raw request head: replaces the request target with |new_target| and drops every
// header line named in |drop| (case-insensitive). Every other byte is kept, except the empty
// lines a client may send before the request line.
std::string RewriteRequestHead(std::string_view raw, std::string_view new_target,
                               std::span<const std::string_view> drop);
// The same with one header name to drop (none when empty).
std::string RewriteRequestHead(std::string_view raw, std::string_view new_target,
                               std::string_view drop_header);

}  // namespace mitmd::proxy
