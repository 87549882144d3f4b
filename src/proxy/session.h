#pragma once
// Session: one client connection, from the proxy request to the last byte, as an explicit state
// machine. It owns the client Conn, the upstream Conn, the parsers of both directions and the
// flow in flight. All I/O arrives as ConnEvents; every failure ends in Close().

#include <event2/event.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "flow/flow.h"
#include "http/h1_parser.h"
#include "net/conn.h"
#include "net/dialer.h"
#include "proxy/client_hello.h"
#include "proxy/client_tls.h"
#include "proxy/proxy_context.h"
#include "proxy/request_target.h"
#include "proxy/upstream_tls.h"

namespace mitmd::proxy {

class Session : public net::Conn::Delegate, public ClientHandshakeHooks {
 public:
  enum class State {
    kProxyRequest,     // reading CONNECT or an absolute-form request from the client
    kDetect,           // 200 sent to CONNECT; the first client byte decides TLS or not
    kClientHello,      // client TLS started; waiting for its ClientHello
    kUpstreamConnect,  // dialing upstream (client handshake paused, or a request waiting)
    kUpstreamTls,      // upstream TLS handshake
    kClientHandshake,  // finishing the client handshake with the minted leaf
    kHttp,             // relaying HTTP/1.1 exchanges
    kTunnel,           // relaying opaque bytes
    kClosed,
  };

  // Called once, from the loop, when the Session has closed and may be deleted.
  using DoneCallback = std::function<void(Session*)>;

  Session(ProxyContext& ctx, event_base* base, net::Dialer& dialer,
          net::ConnGraveyard& graveyard, int client_fd, std::string client_addr,
          DoneCallback done);
  ~Session() override;

  void Start();
  // The server is stopping: record the flow in flight as failed and close now.
  void Shutdown();
  State state() const { return state_; }
  uint64_t id() const { return id_; }

 private:
  // A parser event sink that forwards to the session's handlers for one direction.
  class RequestEvents;
  class ResponseEvents;
  friend class RequestEvents;
  friend class ResponseEvents;

  // net::Conn::Delegate
  void OnConnEvent(net::Conn& conn, net::ConnEvent event) override;
  // ClientHandshakeHooks
  ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) override;
  std::string ChooseAlpn(const std::vector<std::string>& offered) override;

  void OnClientEvent(net::ConnEvent event);
  void OnUpstreamEvent(net::ConnEvent event);

  // State handlers.
  void ReadProxyRequest();
  void HandleProxyRequest(const http::RequestHead& head, std::string_view raw);
  void DetectProtocol();
  // Answers http://mitmd.cert/... with the root CA page or a download, then closes.
  void ServeCertPage(const http::RequestHead& head, const Target& target);
  void StartClientTls();
  void ConnectUpstream();
  void OnDialed(std::expected<net::Dialed, net::DialError> result);
  void OnUpstreamHandshakeDone();
  void UpstreamFailed(std::string phase, std::string message);
  void ResumeClientHandshake();
  void OnClientHandshakeDone();
  void EnterTunnel();
  void PumpTunnel(net::Conn& from, net::Conn& to);

  // HTTP relay.
  void PumpClient();
  void PumpUpstream();
  void OnRequestHead(const http::RequestHead& head, std::string_view raw);
  void OnRequestBody(std::string_view raw);
  void OnRequestComplete();
  void OnResponseHead(const http::ResponseHead& head, std::string_view raw);
  void OnResponseBody(std::string_view raw);
  void OnResponseComplete();
  void SendUpstream(std::string_view data);
  void SendClient(std::string_view data);
  void FlushPending();
  void FinishExchange();
  void OnUpstreamEof();
  void DropIdleUpstream();
  // Hands the upstream connection to the graveyard and closes it in the registry.
  void ReleaseUpstream(const std::string& reason);
  // Sends the byte counts since the last report to the connection registry.
  void ReportBytes();
  // Why this CONNECT target is tunnelled rather than intercepted, or nullopt.
  std::optional<std::string> PassthroughReason() const;
  // The 502 text for a failed upstream TLS connection, naming mutual TLS when that is the cause.
  std::string UpstreamTlsFailure(const std::string& tls_error) const;
  void OnClientEof();

  // Responds with an error page to the client, records the flow in flight (or a new one) as
  // failed, and closes once the page is flushed.
  void RespondError(int status, const std::string& phase, const std::string& message,
                    std::string_view detail = {});
  void RespondErrorWith(int status, const std::string& phase, const std::string& message,
                        std::string_view detail, std::string_view extra_headers);
  void RecordFailure(const std::string& phase, const std::string& message);
  void RecordFlow();
  std::unique_ptr<Flow> NewFlow();
  void Close(std::string_view reason);
  void Touch();
  static void IdleCb(evutil_socket_t, short, void* arg);
  static void HandshakeTimeoutCb(evutil_socket_t, short, void* arg);
  void ArmHandshakeTimer();
  void Log(LogLevel level, std::string_view message, nlohmann::json fields = nullptr) const;

  ProxyContext& ctx_;
  event_base* base_;
  net::Dialer& dialer_;
  net::ConnGraveyard& graveyard_;
  const uint64_t id_;
  const std::string client_addr_;
  DoneCallback done_;
  State state_ = State::kProxyRequest;
  double accepted_at_;

  std::unique_ptr<net::Conn> client_;
  std::unique_ptr<net::Conn> upstream_;
  std::unique_ptr<net::DialAttempt> dial_;
  uint64_t upstream_id_ = 0;
  uint64_t upstream_requests_ = 0;  // responses received on the current upstream connection
  uint64_t requests_seen_ = 0;      // requests from the client on this connection
  bool client_peer_closed_ = false;    // the client closed first (for the registry)
  bool upstream_peer_closed_ = false;  // the server closed first
  std::pair<uint64_t, uint64_t> client_bytes_reported_{0, 0};
  std::pair<uint64_t, uint64_t> upstream_bytes_reported_{0, 0};
  std::string note_;                // why this connection is tunnelled

  // Where this session's traffic goes.
  std::string target_host_;
  uint16_t target_port_ = 0;
  bool upstream_tls_wanted_ = false;
  bool intercepting_ = false;  // TLS terminated on both sides
  std::string server_addr_;

  // TLS state.
  std::optional<ClientHelloInfo> hello_;
  std::shared_ptr<const ca::Leaf> leaf_;
  UpstreamVerification verification_;
  std::optional<TlsInfo> client_tls_info_;
  std::optional<TlsInfo> server_tls_info_;
  std::optional<FlowError> upstream_error_;  // upstream failed; answer the next request with 502
  double upstream_connect_start_ = 0, upstream_connect_end_ = 0, upstream_tls_end_ = 0;
  double client_tls_end_ = 0;

  // HTTP exchange in flight.
  http::Parser req_parser_{http::Parser::Kind::kRequest};
  http::Parser resp_parser_{http::Parser::Kind::kResponse};
  std::unique_ptr<Flow> flow_;
  bool request_done_ = false;
  bool response_done_ = false;     // set by the parser callback; acted on after the parse
  bool connect_ready_ = false;     // a CONNECT request was read in full
  bool response_started_ = false;  // bytes of the final response went to the client
  bool plain_http_ = false;        // requests arrive in absolute form (plain HTTP proxying)
  std::string pending_upstream_;   // request bytes waiting for the upstream connection
  std::string proxy_auth_strip_;   // header to drop before forwarding (Proxy-Authorization)

  event* idle_timer_ = nullptr;
  event* handshake_timer_ = nullptr;
  event* done_event_ = nullptr;
  double last_activity_ = 0;
  bool closed_ = false;
};

std::string_view ToString(Session::State state);

}  // namespace mitmd::proxy
