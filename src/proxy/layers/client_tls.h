#pragma once
// ClientTlsLayer: terminates the client's TLS. The handshake pauses at the ClientHello while
// the upstream connection is made and verified (upstream first), then a leaf minted for the
// upstream's names (and the SNI) answers it. An upstream that fails does not fail the client's
// handshake: the client gets a 502 that explains, from the HttpLayer this hands on to.

#include <memory>
#include <optional>
#include <string>

#include "ca/authority.h"
#include "proxy/client_hello.h"
#include "proxy/client_tls.h"
#include "proxy/connection_handler.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

class ClientTlsLayer : public Layer, public ClientHandshakeHooks {
 public:
  enum class State {
    kClientHello,  // waiting for the ClientHello
    kUpstream,     // handshake paused; connecting upstream
    kHandshake,    // leaf chosen; finishing the client's handshake
  };

  ClientTlsLayer(ConnectionHandler& conn, std::string host, uint16_t port);
  ~ClientTlsLayer() override;

  std::string_view name() const override { return ToString(state_); }
  void Start() override;
  void OnClientEvent(WireEvent event) override;
  void OnClose(std::string_view reason) override;

  // ClientHandshakeHooks
  ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) override;
  std::string ChooseAlpn(const std::vector<std::string>& offered) override;

  // What the ClientHello offered; the tests drive the layer through this.
  void OnHello(ClientHelloInfo hello);

  static std::string_view ToString(State state);

 private:
  void OnUpstream(Upstreams::Outcome outcome);
  // Mints the leaf (from the upstream's certificate when there is one) and resumes.
  void ResumeHandshake(const std::optional<CertInfo>& upstream_cert);
  void OnHandshakeDone();
  void OnHandshakeFailed();
  void RecordFailure(const std::string& message);

  const std::string host_;
  const uint16_t port_;
  State state_ = State::kClientHello;
  std::optional<ClientHelloInfo> hello_;
  UpstreamKey key_;
  std::shared_ptr<const ca::Leaf> leaf_;
  std::unique_ptr<Timer> timer_;
  std::unique_ptr<Upstreams::Pending> pending_connect_;
  std::unique_ptr<UpstreamConn> upstream_;
  std::optional<UpstreamError> upstream_error_;
};

}  // namespace mitmd::proxy
