#pragma once
// ClientTlsLayer: terminates the client's TLS. The handshake pauses at the ClientHello while
// the upstream connection is made and verified (upstream first), then a leaf minted for the
// upstream's names (and the SNI) answers it. An upstream that fails does not fail the client's
// handshake: the client gets a 502 that explains, from the HttpLayer this hands on to.
//
// The client sees what the upstream negotiated: its TLS version is capped at the upstream's,
// and its ALPN answer is the upstream's choice (alpn_policy.h). http/1.1 goes on to the
// HttpLayer, another protocol to a recorded raw Tunnel, and no protocol in common fails the
// handshake with a no_application_protocol alert and a recorded flow that says why.

#include <memory>
#include <optional>
#include <string>

#include "ca/authority.h"
#include "core/proxy_mode.h"
#include "proxy/alpn_policy.h"
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

  // |reverse| (set in reverse mode): the server is |host|
  // whatever name the client used, so it is verified for |host|, not the client's SNI.
  ClientTlsLayer(ConnectionHandler& conn, std::string host, uint16_t port,
                 std::optional<ProxyMode> reverse = std::nullopt);
  ~ClientTlsLayer() override;

  std::string_view name() const override { return ToString(state_); }
  void Start() override;
  void OnClientEvent(WireEvent event) override;
  void OnClose(std::string_view reason) override;

  // ClientHandshakeHooks
  ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) override;
  std::optional<std::string> ChooseAlpn(const std::vector<std::string>& offered) override;

  // What the ClientHello offered; the tests drive the layer through this.
  void OnHello(ClientHelloInfo hello);

  static std::string_view ToString(State state);

 private:
  void OnUpstream(Upstreams::Outcome outcome);
  // Mints the leaf (from the upstream's certificate when there is one) and resumes.
  void ResumeHandshake(const std::optional<CertInfo>& upstream_cert);
  void OnHandshakeDone();
  // The client's handshake is done and the protocol is not HTTP/1: a recorded raw relay.
  void RelayRaw();
  void OnHandshakeFailed();
  void ConnectUpstream();
  void RecordFailure(const std::string& message, Phase phase = Phase::kClientTls);

  const std::string host_;
  const uint16_t port_;
  const std::optional<ProxyMode> reverse_;  // a copy: the entry layer that had it is gone
  State state_ = State::kClientHello;
  std::optional<ClientHelloInfo> hello_;
  UpstreamKey key_;
  std::shared_ptr<const ca::Leaf> leaf_;
  std::unique_ptr<Timer> timer_;
  std::unique_ptr<Upstreams::Pending> pending_connect_;
  std::unique_ptr<UpstreamConn> upstream_;
  std::optional<UpstreamError> upstream_error_;
  // The server refused the HTTP/1 offer with no_application_protocol: this is the connect that
  // offers it h2 too (once), the refusal's words when it chooses h2.
  std::optional<std::string> h2_fallback_;
  uint16_t upstream_version_ = 0;  // the upstream's TLS version (TLS1_2_VERSION...), 0: unknown
  ClientAnswer answer_;            // decided once the upstream is known
};

}  // namespace mitmd::proxy
