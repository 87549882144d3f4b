#include "proxy/request_target.h"

#include <charconv>

#include "core/strings.h"
#include "http/headers.h"

namespace mitmd::proxy {
namespace {

bool ParsePort(std::string_view text, uint16_t* port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
    return false;
  }
  *port = static_cast<uint16_t>(value);
  return true;
}

// Splits "host", "host:port", "[v6]", "[v6]:port". Returns false on malformed brackets.
bool SplitHostPort(std::string_view hp, std::string* host, std::string_view* port) {
  *port = {};
  if (hp.starts_with('[')) {
    size_t close = hp.find(']');
    if (close == std::string_view::npos) return false;
    *host = std::string(hp.substr(1, close - 1));
    std::string_view rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      *port = rest.substr(1);
    }
    return true;
  }
  size_t colon = hp.rfind(':');
  if (colon != std::string_view::npos && hp.find(':') == colon) {
    *host = std::string(hp.substr(0, colon));
    *port = hp.substr(colon + 1);
  } else {
    *host = std::string(hp);
  }
  return true;
}

bool ValidHost(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<Target> ParseAuthorityForm(std::string_view target) {
  Target t;
  std::string_view port;
  if (!SplitHostPort(target, &t.host, &port) || !ValidHost(t.host)) {
    return Fail(StrCat("invalid CONNECT target '", target, "' (expected host:port)"));
  }
  if (port.empty() || !ParsePort(port, &t.port)) {
    return Fail(StrCat("invalid CONNECT target '", target, "': a port from 1 to 65535 is required"));
  }
  return t;
}

Result<Target> ParseAbsoluteForm(std::string_view target) {
  size_t sep = target.find("://");
  if (sep == std::string_view::npos) return Fail(StrCat("'", target, "' is not an absolute URL"));
  Target t;
  for (char c : target.substr(0, sep)) t.scheme.push_back(static_cast<char>(std::tolower(c)));
  if (t.scheme != "http" && t.scheme != "https") {
    return Fail(StrCat("unsupported URL scheme '", t.scheme, "' (mitmd proxies http and https)"));
  }
  std::string_view rest = target.substr(sep + 3);
  size_t path_at = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_at);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);  // userinfo is never forwarded
  }
  std::string_view port;
  if (!SplitHostPort(authority, &t.host, &port) || !ValidHost(t.host)) {
    return Fail(StrCat("invalid host in URL '", WithoutUserinfo(target), "'"));
  }
  t.port = t.scheme == "https" ? 443 : 80;
  if (!port.empty() && !ParsePort(port, &t.port)) {
    return Fail(StrCat("invalid port in URL '", WithoutUserinfo(target), "'"));
  }
  t.path = path_at == std::string_view::npos ? "/" : std::string(rest.substr(path_at));
  if (size_t hash = t.path.find('#'); hash != std::string::npos) t.path.resize(hash);
  if (t.path.empty() || t.path[0] != '/') {
    std::string rooted(1, '/');  // (insert(0, "/") trips a GCC 12 -Wrestrict false positive)
    rooted += t.path;
    t.path = std::move(rooted);
  }
  return t;
}

std::string WithoutUserinfo(std::string_view target) {
  size_t sep = target.find("://");
  if (sep == std::string_view::npos) return std::string(target);
  size_t authority_at = sep + 3;
  std::string_view authority = target.substr(authority_at);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(target);
  return StrCat(target.substr(0, authority_at), target.substr(authority_at + at + 1));
}

Target ParseHostHeader(std::string_view value, uint16_t default_port) {
  Target t;
  std::string_view port;
  if (!SplitHostPort(value, &t.host, &port) || port.empty() || !ParsePort(port, &t.port)) {
    t.port = default_port;
  }
  return t;
}

std::string RewriteRequestHead(std::string_view raw, std::string_view new_target,
                               std::span<const std::string_view> drop) {
  // Empty lines before the request line (RFC 9112 section 2.2) carry nothing: drop them.
  while (raw.starts_with("\r\n") || raw.starts_with("\n")) raw.remove_prefix(raw[0] == '\r' ? 2 : 1);
  std::string out;
  out.reserve(raw.size());
  size_t line_end = raw.find('\n');
  std::string_view first = raw.substr(0, line_end);
  size_t sp1 = first.find(' ');
  size_t sp2 = first.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return std::string(raw);
  out.append(first.substr(0, sp1 + 1));
  out.append(new_target);
  out.append(first.substr(sp2));
  // A head without a line end (never from the parser) is its request line alone: found by
  // fuzzing, npos + 1 used to wrap around and copy the whole line a second time.
  if (line_end == std::string_view::npos) return out;
  out.push_back('\n');
  std::string_view rest = raw.substr(line_end + 1);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl == std::string_view::npos ? rest.size() : nl + 1);
    rest.remove_prefix(line.size());
    size_t colon = line.find(':');
    bool dropped = false;
    for (std::string_view name : drop) {
      if (colon != std::string_view::npos && EqualsIgnoreCase(line.substr(0, colon), name)) {
        dropped = true;
      }
    }
    if (!dropped) out.append(line);
  }
  return out;
}

std::string RewriteRequestHead(std::string_view raw, std::string_view new_target,
                               std::string_view drop_header) {
  if (drop_header.empty()) return RewriteRequestHead(raw, new_target, std::span<const std::string_view>());
  return RewriteRequestHead(raw, new_target, std::span<const std::string_view>(&drop_header, 1));
}

}  // namespace mitmd::proxy
