#include "core/proxy_mode.h"

#include <algorithm>

#include "core/strings.h"

namespace mitmd {
namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "HOST[:PORT]" with IPv6 in brackets; |default_port| when the port is left out (0: required).
Result<HostPort> ParseAuthority(std::string_view text, uint16_t default_port,
                                std::string_view what) {
  if (text.empty()) return Fail(StrCat(what, ": give a host"));
  bool has_port = text.starts_with('[') ? text.find("]:") != std::string_view::npos
                                        : text.find(':') != std::string_view::npos;
  if (!has_port) {
    if (default_port == 0) return Fail(StrCat(what, ": give a port ('", text, "' has none)"));
    return HostPort{std::string(text.starts_with('[') ? text.substr(1, text.size() - 2) : text),
                    default_port};
  }
  auto hp = ParseHostPort(text);
  if (!hp) return Fail(StrCat(what, ": ", hp.error().message));
  if (hp->host.empty() || hp->port == 0)
    return Fail(StrCat(what, ": '", text, "' needs a host and a port"));
  return *hp;
}

}  // namespace

std::string_view ToString(ProxyMode::Kind kind) {
  switch (kind) {
    case ProxyMode::Kind::kRegular:
      return "regular";
    case ProxyMode::Kind::kUpstream:
      return "upstream";
    case ProxyMode::Kind::kReverse:
      return "reverse";
    case ProxyMode::Kind::kTransparent:
      return "transparent";
  }
  return "unknown";
}

std::string ProxyMode::Describe() const {
  std::string out(ToString(kind));
  if (kind == Kind::kUpstream || kind == Kind::kReverse) {
    std::string h = host.find(':') != std::string::npos ? StrCat("[", host, "]") : host;
    out += StrCat(":", scheme, "://", user.empty() ? "" : StrCat(user, ":***@"), h, ":", port);
  }
  if (listen) out += StrCat("@", listen->ToString());
  return out;
}

std::string ProxyMode::Authority() const {
  std::string h = host.find(':') != std::string::npos ? StrCat("[", host, "]") : host;
  bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  return default_port ? h : StrCat(h, ":", port);
}

Result<ProxyMode> ParseProxyMode(std::string_view text, std::string_view default_host) {
  ProxyMode mode;
  std::string_view rest = text;
  size_t colon = rest.find(':');
  std::string_view name = rest.substr(0, std::min(colon, rest.find('@')));
  if (name == "regular") {
    mode.kind = ProxyMode::Kind::kRegular;
  } else if (name == "upstream") {
    mode.kind = ProxyMode::Kind::kUpstream;
  } else if (name == "reverse") {
    mode.kind = ProxyMode::Kind::kReverse;
  } else if (name == "transparent") {
    mode.kind = ProxyMode::Kind::kTransparent;
  } else {
    return Fail(StrCat("--mode: unknown mode '", name,
                       "' (regular, upstream:URL, reverse:URL or transparent, each optionally "
                       "@[HOST:]PORT)"));
  }
  rest.remove_prefix(name.size());
  bool needs_url =
      mode.kind == ProxyMode::Kind::kUpstream || mode.kind == ProxyMode::Kind::kReverse;
  std::string_view url;
  if (needs_url) {
    if (!rest.starts_with(':')) {
      return Fail(StrCat("--mode ", name, ": give the server, e.g. ", name,
                         mode.kind == ProxyMode::Kind::kUpstream ? ":http://proxy.example:3128"
                                                                 : ":https://example.com"));
    }
    rest.remove_prefix(1);
    size_t scheme_end = rest.find("://");
    if (scheme_end == std::string_view::npos) {
      return Fail(StrCat("--mode ", name, ": '", rest, "' is not SCHEME://HOST:PORT"));
    }
    mode.scheme = std::string(rest.substr(0, scheme_end));
    // mitmd always lets a SOCKS5 next proxy resolve names, which is what socks5h means.
    if (mode.kind == ProxyMode::Kind::kUpstream && mode.scheme == "socks5h") mode.scheme = "socks5";
    bool known = mode.scheme == "http" || mode.scheme == "https" ||
                 (mode.kind == ProxyMode::Kind::kUpstream && mode.scheme == "socks5");
    if (!known) {
      return Fail(StrCat("--mode ", name, ": scheme '", mode.scheme, "' is not supported (",
                         mode.kind == ProxyMode::Kind::kUpstream ? "http, https or socks5"
                                                                 : "http or https",
                         ")"));
    }
    rest.remove_prefix(scheme_end + 3);
    // The authority, then perhaps "@listen". An '@' may also end credentials ("u:p@host:port"):
    // with two, the first ends the credentials; with one, it starts the listen address when
    // what precedes it is a complete HOST:PORT (a numeric password needs an explicit listen
    // address after it).
    size_t last_at = rest.rfind('@');
    size_t first_at = rest.find('@');
    std::string_view listen_text;
    std::string_view authority = rest;
    bool has_listen = false;
    if (first_at != last_at) {
      has_listen = true;
    } else if (last_at != std::string_view::npos) {
      std::string_view before = rest.substr(0, last_at);
      size_t c = before.rfind(':');
      has_listen = mode.kind == ProxyMode::Kind::kReverse ||  // no credentials there
                   (c != std::string_view::npos && AllDigits(before.substr(c + 1)));
    }
    if (has_listen) {
      listen_text = rest.substr(last_at + 1);
      authority = rest.substr(0, last_at);
    }
    if (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
    if (size_t at = authority.find('@'); at != std::string_view::npos) {
      if (mode.kind == ProxyMode::Kind::kReverse) {
        return Fail("--mode reverse: credentials in the URL are not supported");
      }
      std::string_view userinfo = authority.substr(0, at);
      size_t c = userinfo.find(':');
      if (c == std::string_view::npos) {
        return Fail("--mode upstream: give credentials as USER:PASS@HOST:PORT");
      }
      mode.user = std::string(userinfo.substr(0, c));
      mode.password = std::string(userinfo.substr(c + 1));
      if (mode.scheme == "socks5" && (mode.user.size() > 255 || mode.password.size() > 255)) {
        return Fail("--mode upstream: SOCKS5 credentials are at most 255 bytes each");
      }
      authority.remove_prefix(at + 1);
    }
    if (authority.find('/') != std::string_view::npos) {
      return Fail(StrCat("--mode ", name, ": give SCHEME://HOST[:PORT] without a path"));
    }
    uint16_t default_port = mode.kind == ProxyMode::Kind::kUpstream ? 0
                            : mode.scheme == "https"                ? 443
                                                                    : 80;
    auto hp = ParseAuthority(authority, default_port, StrCat("--mode ", name));
    if (!hp) return std::unexpected(hp.error());
    mode.host = hp->host;
    mode.port = hp->port;
    if (has_listen) {
      auto listen = AllDigits(listen_text) ? ParseHostPort(StrCat(":", listen_text), default_host)
                                           : ParseHostPort(listen_text, default_host);
      if (!listen)
        return Fail(StrCat("--mode ", name, ": listen address ", listen.error().message));
      mode.listen = *listen;
    }
    return mode;
  }
  if (rest.empty()) return mode;
  if (!rest.starts_with('@')) {
    return Fail(StrCat("--mode ", name, ": unexpected '", rest, "' (give @PORT or @HOST:PORT)"));
  }
  rest.remove_prefix(1);
  auto listen = AllDigits(rest) ? ParseHostPort(StrCat(":", rest), default_host)
                                : ParseHostPort(rest, default_host);
  if (!listen) return Fail(StrCat("--mode ", name, ": listen address ", listen.error().message));
  mode.listen = *listen;
  return mode;
}

}  // namespace mitmd
