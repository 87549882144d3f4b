#pragma once
// Tunnel: relays bytes both ways between the client and one upstream connection, with
// back-pressure, until both sides have closed. Used for passthrough (ignored hosts, pinned
// clients, out-of-scope names), for what is neither TLS nor HTTP, and after a protocol switch.
// After a WebSocket upgrade its flow (the 101's) stays live while the socket is open, and the
// messages read from the relayed bytes are recorded on it (WsRecorder).

#include <memory>

#include "proxy/connection_handler.h"
#include "proxy/upstream/upstream_conn.h"
#include "proxy/ws_recorder.h"

namespace mitmd::proxy {

class Tunnel : public Layer, private WireObserver {
 public:
  // Relays to |upstream|, or dials |key| first when it is null. |flow| (may be null: nothing
  // is recorded) is recorded when the tunnel ends, with the bytes each way.
  Tunnel(ConnectionHandler& conn, UpstreamKey key, std::unique_ptr<UpstreamConn> upstream,
         std::unique_ptr<Flow> flow);
  ~Tunnel() override;

  std::string_view name() const override { return "tunnel"; }
  void Start() override;
  void OnClientEvent(WireEvent event) override;
  bool OnIdle(const std::string& message) override;
  void OnShutdown() override;
  void OnClose(std::string_view reason) override;

 private:
  void OnWireEvent(Wire& wire, WireEvent event) override;
  void OnConnected(Upstreams::Outcome outcome);
  void Relay();
  // Moves what |from| has received to |to|; pauses |from| when |to| is backed up.
  void Pump(Wire& from, Wire& to);
  void Fail(Phase phase, const std::string& message);

  UpstreamKey key_;
  std::unique_ptr<UpstreamConn> upstream_;
  std::unique_ptr<Flow> flow_;
  std::unique_ptr<WsRecorder> ws_;  // when |flow_| is a WebSocket's
  double last_publish_ = 0;
  std::unique_ptr<Upstreams::Pending> pending_connect_;
};

}  // namespace mitmd::proxy
