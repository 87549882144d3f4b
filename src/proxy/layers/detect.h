#pragma once
// Detect: the connection right after "200 Connection established". Decides what the client
// speaks from its first bytes without consuming them: a TLS ClientHello (intercepted by
// ClientTlsLayer, or tunnelled untouched when policy says so for the CONNECT host or the SNI),
// a plain HTTP request (HttpLayer), or anything else (a raw Tunnel).

#include <optional>
#include <string>

#include "proxy/connection_handler.h"

namespace mitmd::proxy {

class Detect : public Layer {
 public:
  Detect(ConnectionHandler& conn, std::string host, uint16_t port)
      : Layer(conn), host_(std::move(host)), port_(port) {}

  std::string_view name() const override { return "detect"; }
  void Start() override;
  void OnClientEvent(WireEvent event) override;

 private:
  void Decide();
  // Why |name| (the CONNECT host or the SNI) is tunnelled rather than intercepted, or nullopt.
  std::optional<std::string> PassthroughReason(const std::string& name) const;
  void TunnelUntouched(std::string note);

  const std::string host_;
  const uint16_t port_;
};

}  // namespace mitmd::proxy
