#pragma once
// mitmd's configuration: one struct, filled once from the command line by the option table
// (config/options.h), then read-only for the life of the process.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ca/keys.h"
#include "ca/server_certs.h"
#include "core/address.h"
#include "core/proxy_mode.h"
#include "rules/rule.h"

namespace mitmd {

struct Config {
  std::string confdir;     // default: $HOME/.mitmd
  HostPort listen{"127.0.0.1", 8080};
  // --mode, each with its own listening address or --listen; empty: one regular proxy.
  std::vector<ProxyMode> modes;
  std::string flows_path;  // default: <confdir>/flows.jsonl (session "default"), else
                           // <confdir>/sessions/<session>.jsonl
  std::string session = "default";  // <confdir>/sessions/<session>.sqlite
  std::vector<std::string> upstream_ca_files;
  std::vector<std::string> upstream_proxy_ca_files;  // trusted for an upstream:https:// next hop
  bool rewrite_host = false;  // reverse mode: Host names the server, not what the client used
  std::string system_ca_file = "/etc/ssl/certs/ca-certificates.crt";
  std::vector<Cidr> upstream_allow;  // empty: any address
  size_t max_body_record = 1 << 20;
  bool insecure = false;   // skip upstream verification; every flow is marked
  std::string proxy_token; // required from clients (Proxy-Authorization) when listening beyond loopback
  // Clients from these networks use the proxy (and the viewer's /ca page) without the token:
  // phones, whose Wi-Fi proxy settings have no password field.
  std::vector<Cidr> allow_clients;
  int workers = 0;         // event-loop threads; 0 means one per core
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{120'000};
  // A request head must be complete this long after its first byte (then 408).
  std::chrono::milliseconds head_timeout{30'000};
  // A response head must arrive this long after the request was sent (then 504); 0: no limit.
  std::chrono::milliseconds response_timeout{0};
  // The upstream pool (per worker): idle connections kept per server, and for how long.
  size_t pool_max_idle = 8;
  std::chrono::milliseconds pool_idle_timeout{60'000};
  std::string log_level = "info";
  // The viewer (src/web).
  bool web_enabled = true;                 // --no-web turns it off
  HostPort web_listen{"127.0.0.1", 8081};
  bool web_listen_given = false;           // --web was given: failing to bind it is fatal
  bool web_tls = false;                    // serve the viewer over HTTPS
  std::string web_token;   // required to open the viewer beyond loopback; default: proxy_token
  std::vector<std::string> load_files;     // --load: session logs or HAR files to show
  bool fresh = false;      // start with an empty session log (the previous one becomes FILE.1)
  // One line per finished flow on stdout (--console / --quiet); kAuto: when stdout is a terminal.
  enum class Console { kAuto, kOn, kOff };
  Console console = Console::kAuto;
  // The root CA (ca/).
  std::string ca_cert;     // --ca-cert FILE (with --ca-key): a root of the user's own
  std::string ca_key;
  ca::KeyType ca_key_type = ca::KeyType::kEcdsaP256;    // for a newly created root
  ca::KeyType leaf_key_type = ca::KeyType::kEcdsaP256;
  size_t leaf_cache_size = 10'000;
  bool ca_watch = true;    // reload the root when its files change
  // Hosts not to intercept, and certificates to present upstream.
  std::vector<std::string> ignore_hosts;  // ECMAScript regexes over "host:port"
  bool auto_passthrough = true;           // tunnel hosts whose clients rejected mitmd's certificate
  std::chrono::seconds auto_passthrough_ttl{600};
  std::string client_cert;      // PEM with certificate and key, for every upstream that asks
  std::string client_cert_dir;  // <dir>/<host>.pem per host (wins over client_cert)
  std::vector<ca::ServerCert> server_certs;  // --cert: presented instead of a minted leaf
  std::string keylog_file;      // NSS key log of both sides (also $SSLKEYLOGFILE)
  // Changing traffic (src/rules): rules from the command line (added to <confdir>/rules.json's),
  // hold filters, and how much of a held or rewritten body is buffered.
  std::vector<rules::RuleSpec> rules;
  std::vector<std::string> hold_requests;   // --hold FILTER
  std::vector<std::string> hold_responses;  // --hold-response FILTER
  size_t hold_max_body = 16 << 20;
};

}  // namespace mitmd
