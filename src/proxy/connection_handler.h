#pragma once
// ConnectionHandler: one client connection from accept to close. It owns the client Wire, the
// idle timer, the connection's registry id and its one teardown path (Close), and hands the
// connection from layer to layer in time:
//   ProxyEntry -> HttpLayer (proxy requests) | Socks5Layer -CONNECT-> Detect -> ClientTlsLayer
//     -> HttpLayer | Tunnel
// A layer handles the client's events until it hands on (HandOff) or the connection closes.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "flow/flow.h"
#include "proxy/hooks.h"
#include "proxy/proxy_context.h"
#include "proxy/timers.h"
#include "proxy/upstream/upstream_conn.h"
#include "proxy/wire.h"

namespace mitmd::proxy {

// The per-worker services a connection uses, injected (fakes in the playbook tests).
struct Services {
  Timers& timers;
  Upstreams& upstreams;
  Hooks& hooks;
};

class ConnectionHandler;

class Layer {
 public:
  explicit Layer(ConnectionHandler& conn) : conn_(conn) {}
  virtual ~Layer() = default;
  // The layer's name, the connection's state in logs: "http", "detect", "client_tls", ...
  virtual std::string_view name() const = 0;
  // The layer now holds the connection; the client's input may already hold bytes for it.
  virtual void Start() = 0;
  virtual void OnClientEvent(WireEvent event) = 0;
  // No traffic for the idle timeout: record what is in flight and return true (the handler
  // closes), or false when the silence is expected (a request waiting for its response).
  virtual bool OnIdle(const std::string& /*message*/) { return true; }
  // mitmd is stopping: record what is in flight. The handler closes afterwards.
  virtual void OnShutdown() {}
  // The connection is closing, for whatever reason: give back upstream connections, record
  // what only the end completes (a tunnel). Called once, from Close().
  virtual void OnClose(std::string_view /*reason*/) {}

 protected:
  ConnectionHandler& conn_;
};

class ConnectionHandler : public WireObserver {
 public:
  // Called once, from the loop, after Close(): the owner deletes the handler.
  using Done = std::function<void(ConnectionHandler*)>;

  ConnectionHandler(ProxyContext& ctx, Services services, std::unique_ptr<Wire> client,
                    std::string client_addr, Done done);
  ~ConnectionHandler() override;
  ConnectionHandler(const ConnectionHandler&) = delete;
  ConnectionHandler& operator=(const ConnectionHandler&) = delete;

  // Starts with |first| (the entry layer of the listener's mode), or the regular proxy entry.
  void Start(std::unique_ptr<Layer> first = nullptr);
  // mitmd is stopping: the layer records what is in flight, then the connection closes.
  void Shutdown();

  // For the layers.
  ProxyContext& ctx() { return ctx_; }
  Services& services() { return services_; }
  Wire& client() { return *client_; }
  uint64_t id() const { return id_; }
  const std::string& client_addr() const { return client_addr_; }
  double accepted_at() const { return accepted_at_; }
  bool closed() const { return closed_; }
  std::string_view layer_name() const { return layer_ ? layer_->name() : "none"; }
  // How the client reached mitmd, when not as a plain HTTP proxy ("socks5", ...): every flow
  // of the connection from now on says so.
  void set_entry(std::string entry) { entry_ = std::move(entry); }
  // Replaces the client wire with |wrap|(the client wire), which takes it over: TLS inside the
  // TLS of an HTTPS proxy (TlsInTlsWire).
  void WrapClient(const std::function<std::unique_ptr<Wire>(std::unique_ptr<Wire>)>& wrap);

  // Gives the connection to |next| and starts it. The current layer is freed later, so it may
  // call this from inside its own methods (and must do nothing afterwards).
  void HandOff(std::unique_ptr<Layer> next);
  // The one teardown path: the layer releases what it holds, the client wire closes (its last
  // bytes still flushed), the registry learns who closed first, and the owner is told.
  void Close(std::string_view reason);
  // The client closed first (its side goes to TIME_WAIT): for the Connections view.
  void MarkClientClosedFirst() { client_closed_first_ = true; }
  // Traffic on the connection (either side): restarts the idle countdown.
  void Touch();

  // A flow with the connection's facts (ids, client address, accept time) filled in.
  std::unique_ptr<Flow> NewFlow() const;
  // A running flow's snapshot to the flow sink (state live, the next revision), so the viewer
  // shows it before it ends. Body copies are left out of snapshots: their sizes say how far
  // it got, and copying a capped body several times a second is not cheap. A held flow
  // (state held) is published with its bodies, for the user to edit.
  void Publish(Flow& flow);
  // The flow is final: to the flow sink, exactly once.
  void Record(std::unique_ptr<Flow> flow);
  // Byte counts of the client connection since the last report, to the registry.
  void ReportBytes();
  void Log(LogLevel level, std::string_view message, nlohmann::json fields = nullptr) const;

 private:
  void OnWireEvent(Wire& wire, WireEvent event) override;
  void OnIdleTimer();

  ProxyContext& ctx_;
  Services services_;
  std::unique_ptr<Wire> client_;
  const uint64_t id_;
  const std::string client_addr_;
  std::string entry_;
  Done done_;
  const double accepted_at_;
  std::unique_ptr<Layer> layer_;
  // Layers handed on from, freed once no call of theirs is on the stack.
  std::vector<std::unique_ptr<Layer>> retired_;
  std::unique_ptr<Timer> idle_timer_;
  std::unique_ptr<Timer> done_timer_;
  double last_activity_ = 0;
  uint64_t bytes_in_reported_ = 0;
  uint64_t bytes_out_reported_ = 0;
  bool client_closed_first_ = false;
  bool closed_ = false;
};

}  // namespace mitmd::proxy
