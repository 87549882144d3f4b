#include "core/config.h"

#include "core/strings.h"

#include <regex>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace mitmd {
namespace {

Result<uint64_t> ParseUnsigned(std::string_view text, std::string_view what) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Fail(StrCat(what, ": '", text, "' is not a whole number"));
  }
  return value;
}

// Accepts "1048576", "512k", "4m", "1g" (binary units).
Result<size_t> ParseSize(std::string_view text, std::string_view what) {
  uint64_t scale = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': scale = 1ull << 10; break;
      case 'm': case 'M': scale = 1ull << 20; break;
      case 'g': case 'G': scale = 1ull << 30; break;
      default: break;
    }
    if (scale != 1) text.remove_suffix(1);
  }
  auto n = ParseUnsigned(text, what);
  if (!n) return std::unexpected(n.error());
  return static_cast<size_t>(*n * scale);
}

Result<std::chrono::milliseconds> ParseSeconds(std::string_view text, std::string_view what) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || seconds <= 0) {
    return Fail(StrCat(what, ": '", text, "' is not a positive number of seconds"));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

std::vector<std::string_view> SplitComma(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return StrCat("[", host, "]:", port);
  return StrCat(host, ":", port);
}

Result<HostPort> ParseHostPort(std::string_view text, std::string_view default_host) {
  HostPort hp;
  std::string_view port_text;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Fail(StrCat("'", text, "' is not [IPv6]:PORT"));
    }
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Fail(StrCat("'", text, "' is not HOST:PORT"));
    hp.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) {
      return Fail(StrCat("'", text, "': put IPv6 addresses in brackets, e.g. [::1]:8080"));
    }
  }
  if (hp.host.empty()) hp.host = std::string(default_host);
  auto port = ParseUnsigned(port_text, "port");
  if (!port || *port > 65535) return Fail(StrCat("'", text, "' has no valid port (0-65535)"));
  hp.port = static_cast<uint16_t>(*port);
  return hp;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a4;
  std::string h(host);
  if (h.starts_with("::ffff:")) h = h.substr(7);
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return false;
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  Cidr c;
  std::string addr(text.substr(0, text.find('/')));
  if (inet_pton(AF_INET, addr.c_str(), c.bytes_) == 1) {
    c.family_ = AF_INET;
    c.prefix_ = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.bytes_) == 1) {
    c.family_ = AF_INET6;
    c.prefix_ = 128;
  } else {
    return Fail(StrCat("'", text, "' is not an IP network (e.g. 127.0.0.0/8 or ::1/128)"));
  }
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    auto prefix = ParseUnsigned(text.substr(slash + 1), "prefix");
    if (!prefix || *prefix > static_cast<uint64_t>(c.prefix_)) {
      return Fail(StrCat("'", text, "' has an invalid prefix length"));
    }
    c.prefix_ = static_cast<int>(*prefix);
  }
  return c;
}

bool Cidr::Contains(const sockaddr* addr) const {
  const uint8_t* bytes = nullptr;
  uint8_t mapped[4];
  if (addr->sa_family == AF_INET && family_ == AF_INET) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(addr)->sin_addr);
  } else if (addr->sa_family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
    if (family_ == AF_INET6) {
      bytes = a6->s6_addr;
    } else if (IN6_IS_ADDR_V4MAPPED(a6)) {
      std::memcpy(mapped, a6->s6_addr + 12, 4);
      bytes = mapped;
    }
  }
  if (bytes == nullptr) return false;
  int full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(bytes, bytes_, full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (bytes_[full] & mask);
}

std::string Cidr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_, bytes_, buf, sizeof(buf));
  return StrCat(buf, "/", prefix_);
}

std::string UsageText() {
  return R"(mitmd: an HTTPS inspection proxy.

Usage: mitmd [OPTIONS]

  --listen HOST:PORT       proxy address (default 127.0.0.1:8080)
  --confdir DIR            where the root CA and the session log live (default ~/.mitmd)
  --flows FILE             session log, one JSON flow per line (default <confdir>/flows.jsonl)
  --upstream-ca FILE       also trust this PEM bundle for upstream servers (repeatable)
  --upstream-allow CIDR,.. only connect upstream to these networks (e.g. 127.0.0.0/8,::1/128)
  --max-body-record SIZE   bytes of each body kept in a flow (default 1m; 0 keeps none)
  --insecure               do NOT verify upstream certificates; every flow is marked insecure
  --proxy-token TOKEN      password clients must send (Proxy-Authorization: Basic) when --listen
                           is not loopback; one is generated when not given
  --workers N              event-loop threads (default: one per core)
  --connect-timeout SECS   upstream connect timeout (default 10)
  --idle-timeout SECS      close connections idle this long (default 120)
  --log-level LEVEL        debug, info, warn or error (default info)
  --web HOST:PORT          viewer address (default 127.0.0.1:8081)
  --no-web                 do not start the viewer
  --web-tls                serve the viewer over HTTPS, with a certificate from mitmd's root
  --web-token TOKEN        needed to open the viewer when --web is not loopback (default: the
                           proxy token, or a generated one); the printed viewer URL carries it
  --load FILE              show the flows of a session log (.jsonl) or HAR file (repeatable)
  --fresh                  start with an empty session log (the previous one is kept as FILE.1);
                           without it the viewer shows the flows already in the log
  --ca-cert FILE --ca-key FILE
                           use your own root CA (PEM, RSA or EC, unencrypted key, mode 0600)
  --ca-key-type TYPE       key of a newly created root: ecdsa-p256 (default), rsa2048, rsa3072
  --leaf-key-type TYPE     key of minted leaves: ecdsa-p256 (default); RSA needs an RSA root
  --leaf-cache-size N      minted leaves kept in memory (default 10000)
  --no-ca-watch            do not reload the root when its files change
  --ignore-hosts REGEX     tunnel CONNECT targets whose host:port matches, untouched (repeatable)
  --no-auto-passthrough    keep intercepting hosts whose clients rejected mitmd's certificate
  --auto-passthrough-ttl SECS
                           how long such a host is tunnelled (default 600)
  --client-cert FILE       PEM certificate + key to present to servers that ask for one
  --client-cert-dir DIR    per-host client certificates: DIR/<host>.pem
  --keylog FILE            write TLS keys of both sides (NSS key log, for Wireshark);
                           $SSLKEYLOGFILE does the same
  --help                   this text
  --version                print the version

Manage the root CA with: mitmd ca info|export|regenerate (see mitmd ca --help).

Point a client at the proxy and trust the root, e.g.
  curl --proxy http://127.0.0.1:8080 --cacert ~/.mitmd/mitmd-ca.pem https://example.com/
)";
}

Result<Invocation> ParseArgs(const std::vector<std::string_view>& args, std::string_view home) {
  Invocation inv;
  Config& c = inv.config;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::string_view value;
    bool has_inline_value = false;
    if (arg.starts_with("--")) {
      if (size_t eq = arg.find('='); eq != std::string_view::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline_value = true;
      }
    }
    auto take = [&]() -> Result<std::string_view> {
      if (has_inline_value) return value;
      if (i + 1 >= args.size()) return Fail(StrCat(arg, " needs a value (see --help)"));
      return args[++i];
    };
    auto flag_with = [&](auto&& apply) -> Status {
      auto v = take();
      if (!v) return std::unexpected(v.error());
      return apply(*v);
    };
    Status st;
    if (arg == "--help" || arg == "-h") {
      inv.command = Command::kHelp;
      return inv;
    } else if (arg == "--version") {
      inv.command = Command::kVersion;
      return inv;
    } else if (arg == "--insecure") {
      c.insecure = true;
    } else if (arg == "--no-web") {
      c.web_enabled = false;
    } else if (arg == "--web-tls") {
      c.web_tls = true;
    } else if (arg == "--fresh") {
      c.fresh = true;
    } else if (arg == "--web") {
      st = flag_with([&](std::string_view v) -> Status {
        auto hp = ParseHostPort(v);
        if (!hp) return Fail("--web: " + hp.error().message);
        c.web_listen = *hp;
        c.web_listen_given = true;
        c.web_enabled = true;
        return {};
      });
    } else if (arg == "--web-token") {
      st = flag_with([&](std::string_view v) -> Status {
        if (v.empty()) return Fail("--web-token: the token must not be empty");
        c.web_token = v;
        return {};
      });
    } else if (arg == "--load") {
      st = flag_with([&](std::string_view v) -> Status {
        c.load_files.emplace_back(v);
        return {};
      });
    } else if (arg == "--listen") {
      st = flag_with([&](std::string_view v) -> Status {
        auto hp = ParseHostPort(v);
        if (!hp) return Fail("--listen: " + hp.error().message);
        c.listen = *hp;
        return {};
      });
    } else if (arg == "--confdir") {
      st = flag_with([&](std::string_view v) -> Status { c.confdir = v; return {}; });
    } else if (arg == "--flows") {
      st = flag_with([&](std::string_view v) -> Status { c.flows_path = v; return {}; });
    } else if (arg == "--upstream-ca") {
      st = flag_with([&](std::string_view v) -> Status {
        c.upstream_ca_files.emplace_back(v);
        return {};
      });
    } else if (arg == "--upstream-allow") {
      st = flag_with([&](std::string_view v) -> Status {
        for (std::string_view part : SplitComma(v)) {
          auto cidr = Cidr::Parse(part);
          if (!cidr) return Fail("--upstream-allow: " + cidr.error().message);
          c.upstream_allow.push_back(*cidr);
        }
        if (c.upstream_allow.empty()) return Fail("--upstream-allow: give at least one network");
        return {};
      });
    } else if (arg == "--max-body-record") {
      st = flag_with([&](std::string_view v) -> Status {
        auto n = ParseSize(v, "--max-body-record");
        if (!n) return std::unexpected(n.error());
        c.max_body_record = *n;
        return {};
      });
    } else if (arg == "--proxy-token") {
      st = flag_with([&](std::string_view v) -> Status {
        if (v.empty()) return Fail("--proxy-token: the token must not be empty");
        c.proxy_token = v;
        return {};
      });
    } else if (arg == "--workers") {
      st = flag_with([&](std::string_view v) -> Status {
        auto n = ParseUnsigned(v, "--workers");
        if (!n || *n == 0 || *n > 256) return Fail("--workers: give a number from 1 to 256");
        c.workers = static_cast<int>(*n);
        return {};
      });
    } else if (arg == "--connect-timeout") {
      st = flag_with([&](std::string_view v) -> Status {
        auto t = ParseSeconds(v, "--connect-timeout");
        if (!t) return std::unexpected(t.error());
        c.connect_timeout = *t;
        c.handshake_timeout = *t;
        return {};
      });
    } else if (arg == "--idle-timeout") {
      st = flag_with([&](std::string_view v) -> Status {
        auto t = ParseSeconds(v, "--idle-timeout");
        if (!t) return std::unexpected(t.error());
        c.idle_timeout = *t;
        return {};
      });
    } else if (arg == "--log-level") {
      st = flag_with([&](std::string_view v) -> Status {
        if (v != "debug" && v != "info" && v != "warn" && v != "error") {
          return Fail(StrCat("--log-level: '", v, "' is not debug, info, warn or error"));
        }
        c.log_level = v;
        return {};
      });
    } else if (arg == "--ca-cert") {
      st = flag_with([&](std::string_view v) -> Status { c.ca_cert = v; return {}; });
    } else if (arg == "--ca-key") {
      st = flag_with([&](std::string_view v) -> Status { c.ca_key = v; return {}; });
    } else if (arg == "--ca-key-type" || arg == "--leaf-key-type") {
      st = flag_with([&](std::string_view v) -> Status {
        auto t = ca::ParseKeyType(v);
        if (!t) return Fail(StrCat(arg, ": ", t.error().message));
        (arg == "--ca-key-type" ? c.ca_key_type : c.leaf_key_type) = *t;
        return {};
      });
    } else if (arg == "--leaf-cache-size") {
      st = flag_with([&](std::string_view v) -> Status {
        auto n = ParseUnsigned(v, "--leaf-cache-size");
        if (!n) return std::unexpected(n.error());
        if (*n == 0) return Fail("--leaf-cache-size: give at least 1");
        c.leaf_cache_size = *n;
        return {};
      });
    } else if (arg == "--no-ca-watch") {
      c.ca_watch = false;
    } else if (arg == "--ignore-hosts") {
      st = flag_with([&](std::string_view v) -> Status {
        try {
          std::regex check{std::string(v)};
        } catch (const std::regex_error& e) {
          return Fail(StrCat("--ignore-hosts: '", v, "' is not a valid regular expression (",
                             e.what(), ")"));
        }
        c.ignore_hosts.emplace_back(v);
        return {};
      });
    } else if (arg == "--no-auto-passthrough") {
      c.auto_passthrough = false;
    } else if (arg == "--auto-passthrough-ttl") {
      st = flag_with([&](std::string_view v) -> Status {
        auto n = ParseUnsigned(v, "--auto-passthrough-ttl");
        if (!n || *n == 0) return Fail("--auto-passthrough-ttl: give a number of seconds > 0");
        c.auto_passthrough_ttl = std::chrono::seconds(*n);
        return {};
      });
    } else if (arg == "--client-cert") {
      st = flag_with([&](std::string_view v) -> Status { c.client_cert = v; return {}; });
    } else if (arg == "--client-cert-dir") {
      st = flag_with([&](std::string_view v) -> Status { c.client_cert_dir = v; return {}; });
    } else if (arg == "--keylog") {
      st = flag_with([&](std::string_view v) -> Status { c.keylog_file = v; return {}; });
    } else {
      return Fail(StrCat("unknown option '", args[i], "' (see mitmd --help)"));
    }
    if (!st) return std::unexpected(st.error());
  }
  if (c.ca_cert.empty() != c.ca_key.empty()) {
    return Fail("--ca-cert and --ca-key go together: give both, or neither");
  }
  if (c.confdir.empty()) {
    if (home.empty()) return Fail("$HOME is not set: pass --confdir DIR");
    c.confdir = std::string(home) + "/.mitmd";
  }
  if (c.flows_path.empty()) c.flows_path = c.confdir + "/flows.jsonl";
  return inv;
}

}  // namespace mitmd
