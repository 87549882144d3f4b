#include "app/app.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "ca/authority.h"
#include "cli/ca_command.h"
#include "cli/console.h"
#include "cli/sessions_command.h"
#include "cli/replay_command.h"
#include "config/options.h"
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
#include "proxy/proxy_context.h"
#include "proxy/proxy_server.h"
#include "proxy/upstream_tls.h"
#include "store/session_lock.h"
#include "rules/replay_client.h"
#include "web/ca_page.h"
#include "web/phone_setup.h"
#include "web/web_server.h"

namespace mitmd {
namespace {

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

// --load, checked before start-up goes on: a file that cannot be read stops mitmd with the reason.
Status CheckLoadFiles(const Config& config) {
  for (const auto& path : config.load_files) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return Fail(StrCat("--load: cannot read ", path, ": ", std::strerror(errno)));
    }
    if (S_ISDIR(st.st_mode)) return Fail(StrCat("--load: ", path, " is a directory, not a flow file"));
    if (::access(path.c_str(), R_OK) != 0) {
      return Fail(StrCat("--load: cannot read ", path, ": ", std::strerror(errno)));
    }
  }
  return {};
}

// --load, run after the proxy and the viewer listen (a big file took seconds, and under the
// sanitizers a minute, before mitmd served anything): each file's flows join the session in
// chunks, labelled with where they came from; a file loaded again adds nothing. A file that turns
// out unreadable is an error in the log; the proxy goes on.
void LoadFiles(const std::vector<std::string>& paths, FlowStore& store, Logger& log,
               std::stop_token stop) {
  constexpr size_t kChunk = 2000;  // flows per import transaction: Stop() waits for one at most
  for (const auto& path : paths) {
    if (stop.stop_requested()) return;
    auto loaded = LoadFlowsFile(path, SIZE_MAX);
    if (!loaded) {
      log.Error("--load failed", {{"file", path}, {"error", loaded.error().message}});
      continue;
    }
    if (loaded->skipped > 0) {
      log.Warn("some lines of a flow file could not be read",
               {{"file", path}, {"skipped", loaded->skipped}, {"problems", loaded->warnings}});
    }
    std::string name = path.substr(path.rfind('/') + 1);
    const bool jsonl = loaded->format == LoadedFlows::Format::kJsonl;
    const std::string source = StrCat(jsonl ? "jsonl" : "har", ":", name);
    std::vector<Flow>& flows = loaded->flows;
    size_t added = 0;
    for (size_t at = 0; at < flows.size() && !stop.stop_requested(); at += kChunk) {
      size_t end = std::min(flows.size(), at + kChunk);
      auto n = store.Import({std::make_move_iterator(flows.begin() + at),
                             std::make_move_iterator(flows.begin() + end)},
                            source, jsonl);
      if (!n) {
        log.Error("--load failed", {{"file", path}, {"error", n.error().message}, {"added", added}});
        break;
      }
      added += *n;
    }
    log.Info("loaded flows into the session", {{"file", path}, {"added", added}});
  }
}

}  // namespace

// http://mitmd.cert/ through the proxy: the root's page, rebuilt when the root is reloaded.
// Worker threads call it, hence the lock.
struct App::CertPage {
  std::mutex mu;
  uint64_t generation = 0;
  std::optional<web::CaDownloads> downloads;
};

namespace {

// Beyond loopback the proxy needs a token; one is generated when the user gave none, before
// the configuration becomes read-only.
Config WithProxyToken(Config config) {
  bool beyond_loopback = !IsLoopbackHost(config.listen.host);
  for (const ProxyMode& mode : config.modes) {
    if (mode.listen && !IsLoopbackHost(mode.listen->host)) beyond_loopback = true;
  }
  if (beyond_loopback && config.proxy_token.empty()) {
    config.proxy_token = RandomToken();
  }
  return config;
}

}  // namespace

App::App(Config config)
    : config_(WithProxyToken(std::move(config))),
      log_(2, ParseLevel(config_.log_level)),
      sessions_dir_(StrCat(config_.confdir, "/sessions")),
      session_name_(config_.session),
      session_db_(StrCat(sessions_dir_, "/", session_name_, ".sqlite")),
      cert_page_(std::make_unique<CertPage>()) {}

App::~App() { Stop(); }

// Before the authority: its reload callback tells the policy that the root changed.
Status App::CreatePassthrough() {
  auto passthrough = proxy::PassthroughPolicy::Create(config_);
  if (!passthrough) return std::unexpected(passthrough.error());
  passthrough_ = std::move(*passthrough);
  return {};
}

Status App::OpenAuthority() {
  ca::AuthorityOptions options;
  options.confdir = config_.confdir;
  options.ca_cert = config_.ca_cert;
  options.ca_key = config_.ca_key;
  options.root_key_type = config_.ca_key_type;
  options.leaf_key_type = config_.leaf_key_type;
  options.cache_capacity = config_.leaf_cache_size;
  options.watch = config_.ca_watch;
  options.logger = &log_;
  options.on_reload = [p = passthrough_.get()](const ca::ReloadEvent& e) {
    if (e.changed) p->ForgetEvidence();
  };
  auto authority = ca::Authority::Open(options);
  if (!authority) return std::unexpected(authority.error());
  authority_ = std::move(*authority);
  return {};
}

Status App::OpenFlowStore() {
  // The session store: <confdir>/sessions/<NAME>.sqlite, and the JSONL log beside it.
  if (::mkdir(sessions_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(StrCat("cannot create ", sessions_dir_, ": ", std::strerror(errno)));
  }
  if (store::SessionLock::Held(session_db_)) {
    return Fail(StrCat("the session '", session_name_, "' is in use by another mitmd (or mitmd "
                       "sessions); stop it, or record into another session with --session NAME"));
  }
  if (config_.fresh) {
    for (const std::string& path :
         {config_.flows_path, session_db_, session_db_ + "-wal", session_db_ + "-shm"}) {
      if (auto st = SetAside(path); !st) return st;
    }
  }
  FlowStoreOptions options;
  options.db_path = session_db_;
  options.jsonl_path = config_.flows_path;
  // A session log from before the store is imported once, in the background.
  if (!config_.fresh) options.migrate_from = config_.flows_path;
  options.log = &log_;
  auto flows = FlowStore::Open(std::move(options));
  if (!flows) return std::unexpected(flows.error());
  flows_ = std::move(*flows);
  return CheckLoadFiles(config_);
}

Status App::CreateTlsContexts() {
  if (!config_.keylog_file.empty()) {
    auto opened = net::KeyLog::Open(config_.keylog_file);
    if (!opened) return std::unexpected(opened.error());
    keylog_ = std::move(*opened);
  }
  auto upstream_tls = proxy::UpstreamTls::Create(config_, keylog_.get());
  if (!upstream_tls) return std::unexpected(upstream_tls.error());
  upstream_tls_ = std::move(*upstream_tls);
  auto client_tls = proxy::ClientTls::Create(keylog_.get());
  if (!client_tls) return std::unexpected(client_tls.error());
  client_tls_ = std::move(*client_tls);
  auto client_certs = proxy::ClientCertStore::Create(config_);
  if (!client_certs) return std::unexpected(client_certs.error());
  client_certs_ = std::move(*client_certs);
  return {};
}

Status App::StartProxy() {
  net::EnableEventThreads();
  connections_ = std::make_unique<ConnectionRegistry>();
  // Rules the viewer set persist in the confdir; the command line's join them.
  auto controls = rules::Controls::Open(
      StrCat(config_.confdir, "/rules.json"), config_.rules,
      rules::HoldSpec{config_.hold_requests, config_.hold_responses});
  if (!controls) return std::unexpected(controls.error());
  controls_ = std::move(*controls);
  context_ = std::make_unique<proxy::ProxyContext>(proxy::ProxyContext{
      config_, log_, *authority_, *flows_, *upstream_tls_, *client_tls_, *connections_,
      *passthrough_, *client_certs_, WallClock});
  proxy::HookInputs hooks;
  hooks.viewer_port = &viewer_port_;
  hooks.controls = controls_.get();
  CertPage* page = cert_page_.get();
  ca::Authority* ca = authority_.get();
  hooks.cert_page = [page, ca](std::string_view path) -> std::optional<http::StaticResponse> {
    std::lock_guard lock(page->mu);
    if (!page->downloads || page->generation != ca->root_generation()) {
      auto built = web::CaDownloads::Create(ca->root(), ca->root_pem(), ca->root_fingerprint_sha256());
      if (!built) return std::nullopt;
      page->downloads = std::move(*built);
      page->generation = ca->root_generation();
    }
    return page->downloads->Serve(path);
  };
  auto server = proxy::ProxyServer::Start(*context_, std::move(hooks));
  if (!server) return std::unexpected(server.error());
  server_ = std::move(*server);
  return {};
}

Status App::StartViewer() {
  if (!config_.web_enabled) return {};
  auto worker = net::Worker::Create(-1);
  if (!worker) return std::unexpected(worker.error());
  web::WebOptions options;
  options.listen = config_.web_listen;
  options.tls = config_.web_tls;
  options.token = config_.web_token;
  if (options.token.empty() && !IsLoopbackHost(config_.web_listen.host)) {
    options.token = config_.proxy_token.empty() ? RandomToken() : config_.proxy_token;
  }
  options.sessions_dir = sessions_dir_;
  options.session_name = session_name_;
  options.version = kVersion;
  options.proxy_address = server_->address().ToString();
  options.confdir = config_.confdir;
  options.allow_clients = config_.allow_clients;
  options.session_log = config_.flows_path;
  // Replays are proxy requests in absolute form: they go where live traffic of that kind goes,
  // a regular listener (else an upstream one), whatever --mode listens first.
  const proxy::ProxyServer::Listening* replay_via = nullptr;
  for (ProxyMode::Kind kind : {ProxyMode::Kind::kRegular, ProxyMode::Kind::kUpstream}) {
    for (const auto& l : server_->listening()) {
      if (!replay_via && l.mode.kind == kind) replay_via = &l;
    }
  }
  if (replay_via) {
    replayer_ = std::make_unique<rules::Replayer>(
        replay_via->address, config_.proxy_token, controls_->replay_token(), log_,
        std::chrono::duration_cast<std::chrono::seconds>(config_.idle_timeout));
  }
  options.controls = controls_.get();
  options.replayer = replayer_.get();
  options.passthrough.list = [p = passthrough_.get()] { return p->ListJson(WallClock()); };
  options.passthrough.clear = [p = passthrough_.get()](const std::string& client,
                                                       const std::string& host) {
    return p->Clear(client, host);
  };
  auto started = web::WebServer::Start((*worker)->base(), std::move(options), *flows_,
                                       *authority_, *connections_, log_);
  if (!started) {
    if (config_.web_listen_given) return std::unexpected(started.error());
    // The default viewer port is taken (say, by another mitmd): the proxy still runs.
    std::fprintf(stderr, "mitmd: %s; continuing without the viewer\n",
                 started.error().message.c_str());
    log_.Warn("viewer not started", {{"reason", started.error().message}});
    return {};
  }
  web_worker_ = std::move(*worker);
  viewer_ = std::move(*started);
  viewer_port_.store(viewer_->address().port, std::memory_order_relaxed);
  web_worker_->Start();
  return {};
}

Status App::StartConsole() {
  bool on = config_.console == Config::Console::kOn ||
            (config_.console == Config::Console::kAuto && ::isatty(STDOUT_FILENO));
  if (!on) return {};
  const char* no_color = std::getenv("NO_COLOR");
  bool color = ::isatty(STDOUT_FILENO) && (no_color == nullptr || *no_color == '\0');
  console_ = std::make_unique<cli::ConsoleView>(STDOUT_FILENO, color);
  cli::ConsoleView* view = console_.get();
  console_subscription_ =
      flows_->Subscribe([view](const std::shared_ptr<const Flow>& flow, uint64_t) { view->OnFlow(flow); });
  return {};
}

Status App::StartLoading() {
  if (config_.load_files.empty()) return {};
  loader_ = std::jthread([this](std::stop_token stop) {
    pthread_setname_np(pthread_self(), "loader");  // for top -H and /proc/PID/task
    LoadFiles(config_.load_files, *flows_, log_, stop);
  });
  return {};
}

void App::PrintBanner() {
  const std::string address = server_->address().ToString();
  // The example must name an address a client can connect to, not 0.0.0.0.
  HostPort reachable = server_->address();
  const bool lan = !IsLoopbackHost(reachable.host);
  const std::vector<std::string> lan_addresses = lan ? web::LanAddresses() : std::vector<std::string>{};
  if (reachable.host == "0.0.0.0" || reachable.host == "::") {
    reachable.host = lan_addresses.empty() ? "127.0.0.1" : lan_addresses.front();
  }
  const std::string proxy_url = StrCat("http://", reachable.ToString());
  // The token is shown only where the banner already prints it (a token the user gave for a
  // loopback proxy stays out of the terminal).
  const std::string proxy_user =
      lan && !config_.proxy_token.empty() ? StrCat(" --proxy-user mitmd:", config_.proxy_token) : "";
  const std::string root = authority_->root_cert_path();
  std::printf("mitmd %s\n", kVersion);
  std::printf("proxy listening on %s\n", address.c_str());
  const auto& listening = server_->listening();
  for (const auto& l : listening) {
    if (listening.size() == 1 && l.mode.kind == ProxyMode::Kind::kRegular) break;
    std::printf("mode         %s on %s\n", l.mode.Describe().c_str(), l.address.ToString().c_str());
  }
  std::printf("root CA      %s\n", root.c_str());
  std::printf("SHA-256      %s\n", authority_->root_fingerprint_sha256().c_str());
  std::printf("session      %s (%s)\n", session_name_.c_str(), session_db_.c_str());
  std::printf("session log  %s\n", config_.flows_path.c_str());
  if (viewer_) std::printf("viewer listening on %s\n", viewer_->url().c_str());
  if (!IsLoopbackHost(config_.listen.host)) {
    std::printf("proxy token  %s   (clients send it as the proxy password: "
                "curl --proxy-user mitmd:TOKEN)\n", config_.proxy_token.c_str());
  }
  if (config_.insecure) {
    std::printf("WARNING      upstream certificates are NOT verified (--insecure); "
                "every flow is marked insecure\n");
  }
  if (keylog_) {
    std::printf("key log      %s   (TLS secrets of both sides: keep it private)\n",
                config_.keylog_file.c_str());
  }
  if (lan) {
    web::LanSetup setup;
    setup.lan_addresses = lan_addresses;
    setup.proxy_port = server_->address().port;
    if (viewer_ && !IsLoopbackHost(viewer_->address().host)) {
      setup.viewer_port = viewer_->address().port;
    }
    setup.viewer_tls = config_.web_tls;
    setup.clients_allowed = !config_.allow_clients.empty();
    setup.qr = ::isatty(STDOUT_FILENO);
    std::fputs(web::LanBanner(setup).c_str(), stdout);
  }
  std::printf("\nTrust the root, then point a client at the proxy, e.g.\n"
              "  curl --proxy %s%s --cacert %s https://example.com/\n"
              "  export http_proxy=%s https_proxy=%s\n",
              proxy_url.c_str(), proxy_user.c_str(), root.c_str(), proxy_url.c_str(),
              proxy_url.c_str());
  std::fflush(stdout);
  log_.Info("proxy listening", {{"addr", address}, {"root", root}, {"flows", config_.flows_path},
                                {"insecure", config_.insecure}});
}

void App::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (loader_.joinable()) {
    // Stops between import chunks: what was imported stays.
    loader_.request_stop();
    loader_.join();
  }
  if (server_) server_->Shutdown();
  if (web_worker_) {
    // The viewer is destroyed once its loop has stopped (it is confined to that loop).
    web_worker_->Stop();
    web_worker_->Join();
  }
  viewer_.reset();
  web_worker_.reset();
  if (console_) {
    flows_->Unsubscribe(console_subscription_);
    console_.reset();
  }
  replayer_.reset();  // after the viewer that starts replays; cuts those still running
  if (flows_) log_.Info("stopped", {{"flows_recorded", flows_->recorded_count()}});
}

int App::Run() {
  if (auto fds = net::RaiseOpenFileLimit(); !fds) log_.Warn(fds.error().message);
  // Signals go to sigwait below, never to a worker thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  for (Status (App::*step)() : {&App::CreatePassthrough, &App::OpenAuthority, &App::OpenFlowStore,
                                &App::CreateTlsContexts, &App::StartProxy, &App::StartViewer,
                                &App::StartConsole, &App::StartLoading}) {
    if (auto st = (this->*step)(); !st) {
      Stop();
      return Die(st.error().message);
    }
  }
  PrintBanner();
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log_.Info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  Stop();
  return 0;
}

int AppMain(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  const char* home = std::getenv("HOME");
  if (!args.empty() && args[0] == "ca") {
    return cli::RunCaCommand({args.begin() + 1, args.end()}, home ? home : "");
  }
  if (!args.empty() && args[0] == "sessions") {
    return cli::RunSessionsCommand({args.begin() + 1, args.end()}, home ? home : "");
  }
  if (!args.empty() && args[0] == "replay") {
    return cli::RunReplayCommand({args.begin() + 1, args.end()});
  }
  auto inv = ParseArgs(args, home ? home : "");
  if (!inv) return Die(inv.error().message);
  if (const char* keylog = std::getenv("SSLKEYLOGFILE");
      keylog && *keylog && inv->config.keylog_file.empty()) {
    inv->config.keylog_file = keylog;
  }
  switch (inv->command) {
    case Command::kHelp:
      std::fputs(UsageText().c_str(), stdout);
      return 0;
    case Command::kVersion:
      std::printf("mitmd %s\n", kVersion);
      return 0;
    case Command::kRun:
      break;
  }
  App app(std::move(inv->config));
  return app.Run();
}

}  // namespace mitmd
