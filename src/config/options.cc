#include "config/options.h"

#include <charconv>
#include <ctime>
#include <regex>

#include "core/strings.h"
#include "flow/filter.h"
#include "rules/rule.h"
#include "store/session_name.h"

namespace mitmd {
namespace {

using Arity = OptionSpec::Arity;

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

Status NonEmpty(std::string_view option, std::string_view value) {
  if (value.empty()) return Fail(StrCat(option, ": give a non-empty value"));
  return {};
}

Status ParseListen(HostPort& out, std::string_view option, std::string_view value) {
  auto hp = ParseHostPort(value);
  if (!hp) return Fail(StrCat(option, ": ", hp.error().message));
  out = *hp;
  return {};
}

Status AddRule(Config& c, rules::RuleKind kind, std::string_view value) {
  rules::RuleSpec spec{kind, std::string(value), true};
  auto rule = rules::Rule::Parse(spec);
  if (!rule) return Fail(StrCat("--", rule.error().message));
  c.rules.push_back(std::move(spec));
  return {};
}

Status AddHold(std::vector<std::string>& out, std::string_view option, std::string_view value) {
  if (auto st = NonEmpty(option, value); !st) return st;
  auto filter = Filter::Parse(value);
  if (!filter) return Fail(StrCat(option, ": '", value, "': ", filter.error().message));
  out.emplace_back(value);
  return {};
}

// The table. Captureless lambdas keep each row's parsing next to its help text.
constexpr OptionSpec kOptions[] = {
    {"--listen", "HOST:PORT", Arity::kValue,
     [](Config& c, std::string_view v) { return ParseListen(c.listen, "--listen", v); },
     "proxy address (default 127.0.0.1:8080)"},
    {"--mode", "MODE[@[HOST:]PORT]", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       auto mode = ParseProxyMode(v, "127.0.0.1");
       if (!mode) return std::unexpected(mode.error());
       c.modes.push_back(std::move(*mode));
       return {};
     },
     "how clients reach mitmd (repeatable, each on its own @PORT or --listen):\n"
     "regular (HTTP, SOCKS5 and HTTPS proxy; the default),\n"
     "upstream:http[s]|socks5://[USER:PASS@]HOST:PORT (through the next proxy),\n"
     "reverse:http[s]://HOST[:PORT] (in front of one server),\n"
     "transparent (redirected by the firewall; tools/mitmd-transparent)"},
    {"--confdir", "DIR", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--confdir", v); !st) return st;
       c.confdir = v;
       return {};
     },
     "where the root CA and the session log live (default ~/.mitmd)"},
    {"--flows", "FILE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--flows", v); !st) return st;
       c.flows_path = v;
       return {};
     },
     "session log, one JSON flow per line (default <confdir>/flows.jsonl)"},
    {"--session", "NAME", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (!IsValidSessionName(v)) {
         return Fail(StrCat("--session: '", v, "' is not a session name (1 to 64 letters, digits, "
                            "'-', '_' or '.', not starting with '.')"));
       }
       c.session = v;
       return {};
     },
     "record into the session NAME: <confdir>/sessions/NAME.sqlite\n"
     "(default \"default\"; see mitmd sessions --help)"},
    {"--upstream-ca", "FILE", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--upstream-ca", v); !st) return st;
       c.upstream_ca_files.emplace_back(v);
       return {};
     },
     "also trust this PEM bundle for upstream servers (repeatable)"},
    {"--rewrite-host", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.rewrite_host = true;
       return {};
     },
     "reverse mode: send the server's own name as Host (HTTP/2 :authority) instead of the\n"
     "name the client used"},
    {"--upstream-proxy-ca", "FILE", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--upstream-proxy-ca", v); !st) return st;
       c.upstream_proxy_ca_files.emplace_back(v);
       return {};
     },
     "also trust this PEM bundle for an upstream:https:// next proxy (repeatable; the system\n"
     "CAs are always trusted)"},
    {"--upstream-allow", "CIDR,..", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       size_t before = c.upstream_allow.size();
       for (std::string_view part : SplitComma(v)) {
         auto cidr = Cidr::Parse(part);
         if (!cidr) return Fail("--upstream-allow: " + cidr.error().message);
         c.upstream_allow.push_back(*cidr);
       }
       if (c.upstream_allow.size() == before) {
         return Fail("--upstream-allow: give at least one network");
       }
       return {};
     },
     "only connect upstream to these networks (e.g. 127.0.0.0/8,::1/128)"},
    {"--allow-clients", "CIDR,..", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       size_t before = c.allow_clients.size();
       for (std::string_view part : SplitComma(v)) {
         auto cidr = Cidr::Parse(part);
         if (!cidr) return Fail("--allow-clients: " + cidr.error().message);
         c.allow_clients.push_back(*cidr);
       }
       if (c.allow_clients.size() == before) {
         return Fail("--allow-clients: give at least one network, e.g. 192.168.1.0/24");
       }
       return {};
     },
     "clients from these networks use the proxy and the /ca page without the token (a phone "
     "on the LAN, e.g. 192.168.1.0/24); others still need it"},
    {"--max-body-record", "SIZE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto n = ParseSize(v, "--max-body-record");
       if (!n) return std::unexpected(n.error());
       c.max_body_record = *n;
       return {};
     },
     "bytes of each body kept in a flow (default 1m; 0 keeps none)"},
    {"--insecure", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.insecure = true;
       return {};
     },
     "do NOT verify upstream certificates; every flow is marked insecure"},
    {"--proxy-token", "TOKEN", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (v.empty()) return Fail("--proxy-token: the token must not be empty");
       c.proxy_token = v;
       return {};
     },
     "password clients must send (Proxy-Authorization: Basic) when --listen\n"
     "is not loopback; one is generated when not given"},
    {"--workers", "N", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto n = ParseUnsigned(v, "--workers");
       if (!n || *n == 0 || *n > 256) return Fail("--workers: give a number from 1 to 256");
       c.workers = static_cast<int>(*n);
       return {};
     },
     "event-loop threads (default: one per core)"},
    {"--connect-timeout", "SECS", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto t = ParseSeconds(v, "--connect-timeout");
       if (!t) return std::unexpected(t.error());
       c.connect_timeout = *t;
       c.handshake_timeout = *t;
       return {};
     },
     "upstream connect and TLS handshake timeout (default 10)"},
    {"--idle-timeout", "SECS", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto t = ParseSeconds(v, "--idle-timeout");
       if (!t) return std::unexpected(t.error());
       c.idle_timeout = *t;
       return {};
     },
     "close connections idle this long (default 120)"},
    {"--head-timeout", "SECS", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto t = ParseSeconds(v, "--head-timeout");
       if (!t) return std::unexpected(t.error());
       if (t->count() == 0) return Fail("--head-timeout: give a positive number of seconds");
       c.head_timeout = *t;
       return {};
     },
     "a request head must be complete this long after its first byte,\n"
     "else the client gets 408 and the connection closes (default 30)"},
    {"--response-timeout", "SECS", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto t = ParseSeconds(v, "--response-timeout");
       if (!t) return std::unexpected(t.error());
       c.response_timeout = *t;
       return {};
     },
     "a response head must arrive this long after the request was sent,\n"
     "else the client gets 504 (default 0: wait as long as the server takes;\n"
     "long polls work)"},
    {"--pool-max-idle", "N", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto n = ParseUnsigned(v, "--pool-max-idle");
       if (!n || *n > 1000) return Fail("--pool-max-idle: give a number from 0 to 1000");
       c.pool_max_idle = *n;
       return {};
     },
     "idle upstream connections kept for reuse per server and worker\n"
     "(default 8; 0: no reuse across client connections)"},
    {"--pool-idle-timeout", "SECS", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto t = ParseSeconds(v, "--pool-idle-timeout");
       if (!t) return std::unexpected(t.error());
       c.pool_idle_timeout = *t;
       return {};
     },
     "close pooled upstream connections idle this long (default 60)"},
    {"--log-level", "LEVEL", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (v != "debug" && v != "info" && v != "warn" && v != "error") {
         return Fail(StrCat("--log-level: '", v, "' is not debug, info, warn or error"));
       }
       c.log_level = v;
       return {};
     },
     "debug, info, warn or error (default info)"},
    {"--web", "HOST:PORT", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = ParseListen(c.web_listen, "--web", v); !st) return st;
       c.web_listen_given = true;
       c.web_enabled = true;
       return {};
     },
     "viewer address (default 127.0.0.1:8081)"},
    {"--no-web", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.web_enabled = false;
       return {};
     },
     "do not start the viewer"},
    {"--web-tls", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.web_tls = true;
       return {};
     },
     "serve the viewer over HTTPS, with a certificate from mitmd's root"},
    {"--web-token", "TOKEN", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (v.empty()) return Fail("--web-token: the token must not be empty");
       c.web_token = v;
       return {};
     },
     "needed to open the viewer when --web is not loopback (default: the\n"
     "proxy token, or a generated one); the printed viewer URL carries it"},
    {"--load", "FILE", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--load", v); !st) return st;
       c.load_files.emplace_back(v);
       return {};
     },
     "show the flows of a session log (.jsonl) or HAR file (repeatable)"},
    {"--fresh", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.fresh = true;
       return {};
     },
     "start with an empty session log (the previous one is kept as FILE.1);\n"
     "without it the viewer shows the flows already in the log"},
    {"--console", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.console = Config::Console::kOn;
       return {};
     },
     "print one line per finished flow on stdout, like mitmdump\n"
     "(the default when stdout is a terminal)"},
    {"--quiet", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.console = Config::Console::kOff;
       return {};
     },
     "no per-flow lines on stdout"},
    {"--ca-cert", "FILE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--ca-cert", v); !st) return st;
       c.ca_cert = v;
       return {};
     },
     "use your own root CA certificate (PEM, RSA or EC); needs --ca-key"},
    {"--ca-key", "FILE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--ca-key", v); !st) return st;
       c.ca_key = v;
       return {};
     },
     "the key of --ca-cert (PEM, unencrypted, mode 0600)"},
    {"--ca-key-type", "TYPE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto t = ca::ParseKeyType(v);
       if (!t) return Fail(StrCat("--ca-key-type: ", t.error().message));
       c.ca_key_type = *t;
       return {};
     },
     "key of a newly created root: ecdsa-p256 (default), rsa2048, rsa3072"},
    {"--leaf-key-type", "TYPE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto t = ca::ParseKeyType(v);
       if (!t) return Fail(StrCat("--leaf-key-type: ", t.error().message));
       c.leaf_key_type = *t;
       return {};
     },
     "key of minted leaves: ecdsa-p256 (default); RSA needs an RSA root"},
    {"--leaf-cache-size", "N", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto n = ParseUnsigned(v, "--leaf-cache-size");
       if (!n) return std::unexpected(n.error());
       if (*n == 0) return Fail("--leaf-cache-size: give at least 1");
       c.leaf_cache_size = *n;
       return {};
     },
     "minted leaves kept in memory (default 10000)"},
    {"--no-ca-watch", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.ca_watch = false;
       return {};
     },
     "do not reload the root when its files change"},
    {"--ignore-hosts", "REGEX", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       try {
         std::regex check{std::string(v)};
       } catch (const std::regex_error& e) {
         return Fail(StrCat("--ignore-hosts: '", v, "' is not a valid regular expression (",
                            e.what(), ")"));
       }
       c.ignore_hosts.emplace_back(v);
       return {};
     },
     "tunnel CONNECT targets whose host:port matches, untouched (repeatable)"},
    {"--no-auto-passthrough", "", Arity::kFlag,
     [](Config& c, std::string_view) -> Status {
       c.auto_passthrough = false;
       return {};
     },
     "keep intercepting hosts whose clients rejected mitmd's certificate"},
    {"--auto-passthrough-ttl", "SECS", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto n = ParseUnsigned(v, "--auto-passthrough-ttl");
       if (!n || *n == 0) return Fail("--auto-passthrough-ttl: give a number of seconds > 0");
       c.auto_passthrough_ttl = std::chrono::seconds(*n);
       return {};
     },
     "how long such a host is tunnelled (default 600)"},
    {"--cert", "[DOMAIN=]PATH", Arity::kRepeatable,
     [](Config& c, std::string_view v) -> Status {
       auto cert = ca::LoadServerCert(v, time(nullptr));
       if (!cert) return Fail(StrCat("--cert: ", cert.error().message));
       c.server_certs.push_back(std::move(*cert));
       return {};
     },
     "present this certificate to clients instead of minting one (repeatable): PATH is a PEM\n"
     "with the chain and its key; DOMAIN (example.com or *.example.com) limits it to clients\n"
     "asking for that name (their SNI, else the host), without it any name"},
    {"--client-cert", "FILE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--client-cert", v); !st) return st;
       c.client_cert = v;
       return {};
     },
     "PEM certificate + key to present to servers that ask for one"},
    {"--client-cert-dir", "DIR", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--client-cert-dir", v); !st) return st;
       c.client_cert_dir = v;
       return {};
     },
     "per-host client certificates: DIR/<host>.pem"},
    {"--keylog", "FILE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       if (auto st = NonEmpty("--keylog", v); !st) return st;
       c.keylog_file = v;
       return {};
     },
     "write TLS keys of both sides (NSS key log, for Wireshark);\n"
     "$SSLKEYLOGFILE does the same"},
    {"--map-local", "|FILTER|PATH", Arity::kRepeatable,
     [](Config& c, std::string_view v) { return AddRule(c, rules::RuleKind::kMapLocal, v); },
     "answer matching requests from a local file, or a directory's\n"
     "files by path (repeatable; | is any separator)"},
    {"--map-remote", "|FILTER|REGEX|REPL", Arity::kRepeatable,
     [](Config& c, std::string_view v) { return AddRule(c, rules::RuleKind::kMapRemote, v); },
     "send matching requests to the URL the regex rewrites (repeatable)"},
    {"--modify-headers", "|FILTER|NAME|VALUE", Arity::kRepeatable,
     [](Config& c, std::string_view v) { return AddRule(c, rules::RuleKind::kModifyHeaders, v); },
     "set a header of matching requests and responses; an empty\n"
     "VALUE removes it, @FILE reads it (repeatable)"},
    {"--modify-body", "|FILTER|REGEX|REPL", Arity::kRepeatable,
     [](Config& c, std::string_view v) { return AddRule(c, rules::RuleKind::kModifyBody, v); },
     "rewrite matching request and response bodies (repeatable)"},
    {"--hold", "FILTER", Arity::kRepeatable,
     [](Config& c, std::string_view v) { return AddHold(c.hold_requests, "--hold", v); },
     "hold matching requests for the viewer before they go upstream"},
    {"--hold-response", "FILTER", Arity::kRepeatable,
     [](Config& c, std::string_view v) {
       return AddHold(c.hold_responses, "--hold-response", v);
     },
     "hold matching responses before they reach the client"},
    {"--hold-max-body", "SIZE", Arity::kValue,
     [](Config& c, std::string_view v) -> Status {
       auto n = ParseSize(v, "--hold-max-body");
       if (!n) return std::unexpected(n.error());
       c.hold_max_body = *n;
       return {};
     },
     "body bytes buffered to hold or rewrite a message (default 16m);\n"
     "larger bodies stream unchanged and the flow says so"},
};

const OptionSpec* FindOption(std::string_view name) {
  for (const OptionSpec& o : kOptions) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

// Checks between options, and defaults that depend on other options.
Status Finish(Config& c, std::string_view home) {
  if (c.ca_cert.empty() != c.ca_key.empty()) {
    return Fail("--ca-cert and --ca-key go together: give both, or neither");
  }
  if (c.confdir.empty()) {
    if (home.empty()) return Fail("$HOME is not set: pass --confdir DIR");
    c.confdir = std::string(home) + "/.mitmd";
  }
  if (c.flows_path.empty()) {
    // The default session keeps the log where mitmd always kept it; another session's log lives
    // beside its database, so two sessions never share one.
    c.flows_path = c.session == "default" ? c.confdir + "/flows.jsonl"
                                          : StrCat(c.confdir, "/sessions/", c.session, ".jsonl");
  }
  return {};
}

}  // namespace

Result<uint64_t> ParseUnsigned(std::string_view text, std::string_view what) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Fail(StrCat(what, ": '", text, "' is not a whole number"));
  }
  return value;
}

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
  if (*n > SIZE_MAX / scale) return Fail(StrCat(what, ": '", text, "' is too large"));
  return static_cast<size_t>(*n * scale);
}

Result<std::chrono::milliseconds> ParseSeconds(std::string_view text, std::string_view what) {
  constexpr double kMaxSeconds = 365.0 * 24 * 3600;
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || !(seconds > 0) ||
      seconds > kMaxSeconds) {
    return Fail(StrCat(what, ": '", text, "' is not a positive number of seconds (at most a year)"));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

std::span<const OptionSpec> Options() { return kOptions; }

Result<Invocation> ParseArgs(const std::vector<std::string_view>& args, std::string_view home) {
  Invocation inv;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      inv.command = Command::kHelp;
      return inv;
    }
    if (arg == "--version") {
      inv.command = Command::kVersion;
      return inv;
    }
    std::string_view name = arg;
    std::string_view value;
    bool inline_value = false;
    if (arg.starts_with("--")) {
      if (size_t eq = arg.find('='); eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        inline_value = true;
      }
    }
    const OptionSpec* spec = FindOption(name);
    if (spec == nullptr) return Fail(StrCat("unknown option '", arg, "' (see mitmd --help)"));
    if (spec->arity == Arity::kFlag) {
      if (inline_value) return Fail(StrCat(name, " takes no value"));
    } else if (!inline_value) {
      if (i + 1 >= args.size()) return Fail(StrCat(name, " needs a value (see --help)"));
      value = args[++i];
    }
    if (auto st = spec->apply(inv.config, value); !st) return std::unexpected(st.error());
  }
  if (auto st = Finish(inv.config, home); !st) return std::unexpected(st.error());
  return inv;
}

std::string UsageText() {
  constexpr size_t kHelpColumn = 27;
  std::string out =
      "mitmd: an HTTPS inspection proxy.\n\n"
      "Usage: mitmd [OPTIONS]\n"
      "       mitmd ca info|export|regenerate   (see mitmd ca --help)\n"
      "       mitmd sessions list|export|import|rm   (see mitmd sessions --help)\n"
      "       mitmd replay FILE [--filter F] [--proxy HOST:PORT]   (see mitmd replay --help)\n\n";
  for (const OptionSpec& o : kOptions) {
    std::string left = StrCat("  ", o.name);
    if (!o.metavar.empty()) left += StrCat(" ", o.metavar);
    out += left;
    if (left.size() + 1 > kHelpColumn) {
      out += "\n";
      out.append(kHelpColumn, ' ');
    } else {
      out.append(kHelpColumn - left.size(), ' ');
    }
    std::string_view help = o.help;
    for (size_t nl; (nl = help.find('\n')) != std::string_view::npos;) {
      out += StrCat(help.substr(0, nl), "\n");
      out.append(kHelpColumn, ' ');
      help.remove_prefix(nl + 1);
    }
    out += StrCat(help, "\n");
  }
  out += StrCat("  --help", std::string(kHelpColumn - 8, ' '), "this text\n");
  out += StrCat("  --version", std::string(kHelpColumn - 11, ' '), "print the version\n");
  out +=
      "\nPoint a client at the proxy and trust the root, e.g.\n"
      "  curl --proxy http://127.0.0.1:8080 --cacert ~/.mitmd/mitmd-ca.pem https://example.com/\n";
  return out;
}

}  // namespace mitmd
