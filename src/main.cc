// mitmd: the HTTPS inspection proxy. Wires configuration, the CA, the flow store and the proxy
// server together, prints where everything is, and runs until SIGINT/SIGTERM.

#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <string>
#include <mutex>
#include <optional>
#include <vector>

#include "ca/authority.h"
#include "cli/ca_command.h"
#include "core/config.h"
#include "core/log.h"
#include "core/strings.h"
#include "flow/connection_registry.h"
#include "flow/flow_loader.h"
#include "flow/flow_store.h"
#include "net/keylog.h"
#include "net/listener.h"
#include "net/worker.h"
#include "proxy/client_certs.h"
#include "proxy/client_tls.h"
#include "proxy/passthrough.h"
#include "proxy/proxy_server.h"
#include "proxy/upstream_tls.h"
#include "web/ca_page.h"
#include "web/web_server.h"

namespace mitmd {
namespace {

constexpr char kVersion[] = "0.1.0";

double WallClock() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
}

LogLevel ParseLevel(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::string RandomToken() {
  unsigned char bytes[16];
  RAND_bytes(bytes, sizeof(bytes));
  return HexEncode(bytes, sizeof(bytes));
}

int Die(const std::string& message) {
  std::fprintf(stderr, "mitmd: %s\n", message.c_str());
  return 1;
}

// --fresh: the previous session log is kept as FILE.1 (and the session database as
// NAME.sqlite.1), and the new run starts empty.
Status SetAside(const std::string& path) {
  if (::rename(path.c_str(), (path + ".1").c_str()) != 0 && errno != ENOENT) {
    return Fail(StrCat("--fresh: cannot move ", path, " aside: ", std::strerror(errno)));
  }
  return {};
}

// --load: each file's flows join the session, labelled with where they came from; a file
// loaded again adds nothing.
Status LoadFiles(const Config& config, FlowStore& store, Logger& log) {
  for (const auto& path : config.load_files) {
    auto loaded = LoadFlowsFile(path, SIZE_MAX);
    if (!loaded) return Fail(StrCat("--load: ", loaded.error().message));
    if (loaded->skipped > 0) {
      log.Warn("some lines of a flow file could not be read",
               {{"file", path}, {"skipped", loaded->skipped}, {"problems", loaded->warnings}});
    }
    std::string name = path.substr(path.rfind('/') + 1);
    const char* format = loaded->format == LoadedFlows::Format::kHar ? "har" : "jsonl";
    auto added = store.Import(std::move(loaded->flows), StrCat(format, ":", name),
                              loaded->format == LoadedFlows::Format::kJsonl);
    if (!added) return Fail(StrCat("--load ", path, ": ", added.error().message));
    log.Info("loaded flows into the session", {{"file", path}, {"added", *added}});
  }
  return {};
}

int Run(Config config) {
  Logger log(2, ParseLevel(config.log_level));
  if (auto fds = net::RaiseOpenFileLimit(); !fds) log.Warn(fds.error().message);

  // Signals go to sigwait below, never to a worker thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bool beyond_loopback = !IsLoopbackHost(config.listen.host);
  if (beyond_loopback && config.proxy_token.empty()) config.proxy_token = RandomToken();

  ca::AuthorityOptions ca_options;
  ca_options.confdir = config.confdir;
  ca_options.ca_cert = config.ca_cert;
  ca_options.ca_key = config.ca_key;
  ca_options.root_key_type = config.ca_key_type;
  ca_options.leaf_key_type = config.leaf_key_type;
  ca_options.cache_capacity = config.leaf_cache_size;
  ca_options.watch = config.ca_watch;
  ca_options.logger = &log;
  auto authority = ca::Authority::Open(ca_options);
  if (!authority) return Die(authority.error().message);
  // The session store: <confdir>/sessions/<NAME>.sqlite, and the JSONL log beside it.
  const std::string sessions_dir = StrCat(config.confdir, "/sessions");
  const std::string session_name = "default";
  const std::string session_db = StrCat(sessions_dir, "/", session_name, ".sqlite");
  if (::mkdir(sessions_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Die(StrCat("cannot create ", sessions_dir, ": ", std::strerror(errno)));
  }
  if (config.fresh) {
    for (const std::string& path : {config.flows_path, session_db, session_db + "-wal", session_db + "-shm"}) {
      if (auto st = SetAside(path); !st) return Die(st.error().message);
    }
  }
  FlowStoreOptions store_options;
  store_options.db_path = session_db;
  store_options.jsonl_path = config.flows_path;
  // A session log from before the store is imported once, in the background.
  if (!config.fresh) store_options.migrate_from = config.flows_path;
  store_options.log = &log;
  auto flows = FlowStore::Open(std::move(store_options));
  if (!flows) return Die(flows.error().message);
  if (auto st = LoadFiles(config, **flows, log); !st) return Die(st.error().message);
  std::unique_ptr<net::KeyLog> keylog;
  if (!config.keylog_file.empty()) {
    auto opened = net::KeyLog::Open(config.keylog_file);
    if (!opened) return Die(opened.error().message);
    keylog = std::move(*opened);
  }
  auto upstream_tls = proxy::UpstreamTls::Create(config, keylog.get());
  if (!upstream_tls) return Die(upstream_tls.error().message);
  auto client_tls = proxy::ClientTls::Create(keylog.get());
  if (!client_tls) return Die(client_tls.error().message);
  auto passthrough = proxy::PassthroughPolicy::Create(config);
  if (!passthrough) return Die(passthrough.error().message);
  auto client_certs = proxy::ClientCertStore::Create(config);
  if (!client_certs) return Die(client_certs.error().message);

  net::EnableEventThreads();
  ConnectionRegistry connections;  // open client and upstream connections, for the viewer
  proxy::ProxyContext ctx{config,       log,         **authority,    **flows,
                          **upstream_tls, **client_tls, connections,   **passthrough,
                          **client_certs, WallClock};
  // http://mitmd.cert/ through the proxy: the root's page, rebuilt when the root is reloaded.
  struct CertPage {
    std::mutex mu;
    uint64_t generation = 0;
    std::optional<web::CaDownloads> downloads;
  } cert_page;
  ca::Authority& ca = **authority;
  ctx.cert_page = [&cert_page, &ca](std::string_view path) -> std::optional<web::StaticResponse> {
    std::lock_guard lock(cert_page.mu);
    if (!cert_page.downloads || cert_page.generation != ca.root_generation()) {
      auto built = web::CaDownloads::Create(ca.root(), ca.root_pem(), ca.root_fingerprint_sha256());
      if (!built) return std::nullopt;
      cert_page.downloads = std::move(*built);
      cert_page.generation = ca.root_generation();
    }
    return cert_page.downloads->Serve(path);
  };
  auto server = proxy::ProxyServer::Start(ctx);
  if (!server) return Die(server.error().message);

  // The viewer runs on its own loop thread; the proxy hands it flows through a queue.
  std::unique_ptr<net::Worker> web_worker;
  std::unique_ptr<web::WebServer> viewer;
  if (config.web_enabled) {
    auto worker = net::Worker::Create(-1);
    if (!worker) {
      (*server)->Shutdown();
      return Die(worker.error().message);
    }
    web_worker = std::move(*worker);
    web::WebOptions web_options;
    web_options.listen = config.web_listen;
    web_options.tls = config.web_tls;
    web_options.token = config.web_token;
    if (web_options.token.empty() && !IsLoopbackHost(config.web_listen.host)) {
      web_options.token = config.proxy_token.empty() ? RandomToken() : config.proxy_token;
    }
    web_options.sessions_dir = sessions_dir;
    web_options.session_name = session_name;
    web_options.version = kVersion;
    web_options.proxy_address = (*server)->address().ToString();
    web_options.session_log = config.flows_path;
    auto started = web::WebServer::Start(web_worker->base(), std::move(web_options), **flows,
                                         **authority, connections, log);
    if (started) {
      viewer = std::move(*started);
      web_worker->Start();
    } else if (config.web_listen_given) {
      (*server)->Shutdown();
      return Die(started.error().message);
    } else {
      // The default viewer port is taken (say, by another mitmd): the proxy still runs.
      std::fprintf(stderr, "mitmd: %s; continuing without the viewer\n", started.error().message.c_str());
      log.Warn("viewer not started", {{"reason", started.error().message}});
      web_worker.reset();
    }
  }

  const std::string proxy_url = StrCat("http://", (*server)->address().ToString());
  const std::string root = (*authority)->root_cert_path();
  std::printf("mitmd %s\n", kVersion);
  std::printf("proxy listening on %s\n", (*server)->address().ToString().c_str());
  std::printf("root CA      %s\n", root.c_str());
  std::printf("SHA-256      %s\n", (*authority)->root_fingerprint_sha256().c_str());
  std::printf("session      %s (%s)\n", session_name.c_str(), session_db.c_str());
  std::printf("session log  %s\n", config.flows_path.c_str());
  if (viewer) std::printf("viewer listening on %s\n", viewer->url().c_str());
  if (beyond_loopback) {
    std::printf("proxy token  %s   (clients send it as the proxy password: "
                "curl --proxy-user mitmd:TOKEN)\n", config.proxy_token.c_str());
  }
  if (config.insecure) {
    std::printf("WARNING      upstream certificates are NOT verified (--insecure); "
                "every flow is marked insecure\n");
  }
  if (keylog) {
    std::printf("key log      %s   (TLS secrets of both sides: keep it private)\n",
                config.keylog_file.c_str());
  }
  std::printf("\nTrust the root, then point a client at the proxy, e.g.\n"
              "  curl --proxy %s --cacert %s https://example.com/\n"
              "  export http_proxy=%s https_proxy=%s\n",
              proxy_url.c_str(), root.c_str(), proxy_url.c_str(), proxy_url.c_str());
  std::fflush(stdout);
  log.Info("proxy listening", {{"addr", (*server)->address().ToString()},
                               {"root", root}, {"flows", config.flows_path},
                               {"insecure", config.insecure}});

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log.Info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  (*server)->Shutdown();
  if (web_worker) {
    // The viewer is destroyed once its loop has stopped (it is confined to that loop).
    web_worker->Stop();
    web_worker->Join();
    viewer.reset();
    web_worker.reset();
  }
  log.Info("stopped", {{"flows_recorded", (*flows)->recorded_count()}});
  return 0;
}

}  // namespace
}  // namespace mitmd

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  const char* home = std::getenv("HOME");
  if (!args.empty() && args[0] == "ca") {
    return mitmd::cli::RunCaCommand({args.begin() + 1, args.end()}, home ? home : "");
  }
  auto inv = mitmd::ParseArgs(args, home ? home : "");
  if (!inv) return mitmd::Die(inv.error().message);
  if (const char* keylog = std::getenv("SSLKEYLOGFILE");
      keylog && *keylog && inv->config.keylog_file.empty()) {
    inv->config.keylog_file = keylog;
  }
  switch (inv->command) {
    case mitmd::Command::kHelp:
      std::fputs(mitmd::UsageText().c_str(), stdout);
      return 0;
    case mitmd::Command::kVersion:
      std::printf("mitmd %s\n", mitmd::kVersion);
      return 0;
    case mitmd::Command::kRun:
      break;
  }
  return mitmd::Run(std::move(inv->config));
}
