#pragma once
// Socks5Layer: a client that spoke SOCKS5 on the proxy port (ProxyEntry saw version byte 5).
// Runs the handshake (socks5.h) within the handshake timeout, refuses what policy refuses (a
// wrong or missing proxy token, mitmd's own address) with the SOCKS reply and a recorded flow,
// and hands the connection to Detect for the target, exactly as after an HTTP CONNECT: TLS is
// intercepted or passed through, plain HTTP is read, anything else is tunnelled.

#include <memory>
#include <string>

#include "proxy/connection_handler.h"
#include "proxy/socks5.h"

namespace mitmd::proxy {

class Socks5Layer : public Layer {
 public:
  explicit Socks5Layer(ConnectionHandler& conn);
  ~Socks5Layer() override;

  std::string_view name() const override { return Socks5Handshake::ToString(handshake_.state()); }
  void Start() override;
  void OnClientEvent(WireEvent event) override;
  void OnClose(std::string_view reason) override;

 private:
  void Read();
  void OnTarget(const Socks5Target& target);
  // Records a failed flow for the handshake and closes the connection.
  void Refuse(const std::string& message, const Socks5Target* target = nullptr);

  Socks5Handshake handshake_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace mitmd::proxy
