#pragma once
// App: one run of mitmd as a proxy. Owns every long-lived service (the CA, the flow store, the
// TLS contexts, the proxy's workers, the viewer) and brings them up in named steps, each of which
// fails with a message a user can act on. Teardown has one path: Stop() (also run by the
// destructor) stops the proxy first, then the viewer, whatever step the start-up reached.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "config/config.h"
#include "core/log.h"
#include "core/result.h"

namespace mitmd {

namespace ca {
class Authority;
}
namespace net {
class KeyLog;
class Worker;
}
namespace proxy {
class ClientCertStore;
class ClientTls;
class PassthroughPolicy;
class ProxyServer;
class UpstreamTls;
struct ProxyContext;
}
namespace rules {
class Controls;
class Replayer;
}
namespace web {
class WebServer;
}
namespace cli {
class ConsoleView;
}
class ConnectionRegistry;
class FlowStore;
struct Flow;

inline constexpr char kVersion[] = "0.1.0";

class App {
 public:
  // |config| is final: nothing changes it after this.
  explicit App(Config config);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Starts everything, prints the banner, runs until SIGINT/SIGTERM, stops. Returns the exit
  // code; start-up errors are printed to stderr.
  int Run();

  // The start-up steps, in order. Public so tests can drive a partial start-up.
  Status CreatePassthrough();
  Status OpenAuthority();
  Status OpenFlowStore();
  Status CreateTlsContexts();
  Status StartProxy();
  Status StartViewer();
  // --console (or stdout is a terminal, without --quiet): a line per finished flow on stdout.
  Status StartConsole();
  Status StartLoading();  // --load, in the background
  void PrintBanner();
  // Stops the proxy (recording flows in flight as failed), then the viewer. Idempotent.
  void Stop();

 private:
  struct CertPage;

  const Config config_;
  Logger log_;
  const std::string sessions_dir_;  // <confdir>/sessions
  const std::string session_name_;
  const std::string session_db_;    // <sessions_dir>/<name>.sqlite
  std::unique_ptr<ca::Authority> authority_;
  std::unique_ptr<FlowStore> flows_;
  std::unique_ptr<net::KeyLog> keylog_;
  std::unique_ptr<proxy::UpstreamTls> upstream_tls_;
  std::unique_ptr<proxy::ClientTls> client_tls_;
  std::unique_ptr<proxy::PassthroughPolicy> passthrough_;
  std::unique_ptr<proxy::ClientCertStore> client_certs_;
  std::unique_ptr<ConnectionRegistry> connections_;
  std::unique_ptr<CertPage> cert_page_;
  std::unique_ptr<rules::Controls> controls_;  // rules, hold filters, held flows
  std::unique_ptr<proxy::ProxyContext> context_;
  std::unique_ptr<proxy::ProxyServer> server_;
  std::unique_ptr<rules::Replayer> replayer_;  // the viewer's replays, through the proxy
  std::unique_ptr<net::Worker> web_worker_;
  std::unique_ptr<web::WebServer> viewer_;
  std::atomic<uint16_t> viewer_port_{0};  // the viewer's bound port, read by the proxy's hooks
  std::unique_ptr<cli::ConsoleView> console_;
  std::jthread loader_;  // --load files being imported; stopped first
  uint64_t console_subscription_ = 0;
  bool stopped_ = false;
};

// The whole command line: `mitmd ca ...`, --help, --version, or a proxy run.
int AppMain(int argc, char** argv);

}  // namespace mitmd
