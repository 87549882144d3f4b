#pragma once
// ProxyTlsLayer: mitmd as an HTTPS proxy. The client's first bytes were a TLS ClientHello to
// the proxy port itself (curl --proxy https://..., a PAC "HTTPS host:port"), so mitmd answers
// with a leaf for the name the client used (its SNI) or, without one, for the address it
// connected to, and reads proxy requests inside: plain HTTP in absolute form, or CONNECT, whose
// TLS to the server then runs inside this TLS (TlsInTlsWire) and is intercepted as usual.

#include <memory>
#include <optional>
#include <string>

#include "proxy/client_tls.h"
#include "proxy/connection_handler.h"

namespace mitmd::proxy {

class ProxyTlsLayer : public Layer, public ClientHandshakeHooks {
 public:
  explicit ProxyTlsLayer(ConnectionHandler& conn);
  ~ProxyTlsLayer() override;

  std::string_view name() const override { return "proxy_tls"; }
  void Start() override;
  void OnClientEvent(WireEvent event) override;
  void OnClose(std::string_view reason) override;

  // ClientHandshakeHooks
  ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) override;
  std::optional<std::string> ChooseAlpn(const std::vector<std::string>& offered) override;

 private:
  void Fail(const std::string& message);

  std::unique_ptr<Timer> timer_;
  std::string sni_;
  bool handshake_done_ = false;
};

}  // namespace mitmd::proxy
