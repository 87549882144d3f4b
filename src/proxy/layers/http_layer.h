#pragma once
// HttpLayer: HTTP on the client connection. A server-side codec turns the client's bytes into
// requests; each request is an Exchange (exchange.h) that it owns until the response is done.
//
// Two modes. kProxy: the connection is addressed to the proxy itself, so requests carry
// absolute-form targets (plain HTTP proxying) or are CONNECT, which is answered with 200 and
// hands the connection to Detect. Inside a CONNECT tunnel (after TLS interception or plain
// HTTP), requests are origin-form and go to the tunnel's target.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/h1_codec.h"
#include "proxy/client_hello.h"
#include "proxy/connection_handler.h"
#include "proxy/hooks.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

class Exchange;

// Where the requests of a CONNECT tunnel go, and what intercepting its TLS learned.
struct TunnelTarget {
  std::string host;  // as in the CONNECT request
  uint16_t port = 0;
  UpstreamKey key;   // the upstream connection its requests use
  std::optional<ClientHelloInfo> hello;  // set when mitmd terminated the client's TLS
  std::optional<TlsInfo> client_tls;
  double client_tls_end = 0;
  std::unique_ptr<UpstreamConn> upstream;       // connected during the ClientHello pause
  std::optional<UpstreamError> upstream_error;  // ... or why that failed
};

class HttpLayer : public Layer, private http::CodecEvents, private WireObserver {
 public:
  enum class Mode { kProxy, kTunnel };

  HttpLayer(ConnectionHandler& conn, Mode mode);
  HttpLayer(ConnectionHandler& conn, TunnelTarget tunnel);
  ~HttpLayer() override;

  std::string_view name() const override { return "http"; }
  void Start() override;
  void OnClientEvent(WireEvent event) override;
  bool OnIdle(const std::string& message) override;
  void OnShutdown() override;
  void OnClose(std::string_view reason) override;

  // For the exchanges.
  ConnectionHandler& conn() { return conn_; }
  http::H1Codec& codec() { return codec_; }
  Mode mode() const { return mode_; }
  const TunnelTarget& tunnel() const { return tunnel_; }
  // The upstream connection made during the ClientHello pause, for the first request whose
  // key is the same, or null.
  std::unique_ptr<UpstreamConn> TakeIdleUpstream(const UpstreamKey& key);
  // Reads what the client has sent so far (request body, the next request).
  void ReadClient();
  // Answers |id| with a response mitmd made, records |flow| with it (failed when |error| is
  // set, else with |message| as its note) and closes the connection.
  void RespondLocally(http::StreamId id, std::unique_ptr<Flow> flow, const LocalResponse& response,
                      std::optional<Phase> error, const std::string& message,
                      bool head_only = false);
  // The current exchange recorded its flow. |upstream| (may be null) goes back to the pool,
  // or into a tunnel when the response switched protocols.
  void OnExchangeDone(std::unique_ptr<UpstreamConn> upstream, bool keep_alive, bool upgraded);

 private:
  // http::CodecEvents (requests from the client).
  void OnHead(http::StreamId id, http::Request&& request) override;
  void OnBodyRaw(http::StreamId id, std::string_view raw) override;
  void OnData(http::StreamId id, std::string_view data) override;
  void OnTrailers(http::StreamId id, const HeaderList& trailers) override;
  void OnEnd(http::StreamId id) override;
  bool Receiving() const override;
  // WireObserver: the upstream connection made during the ClientHello pause, until used.
  void OnWireEvent(Wire& wire, WireEvent event) override;

  void OnProxyRequest(http::StreamId id, http::Request&& request);
  void Reject(http::StreamId id, const http::RequestHead& head, int status,
              const std::string& message, std::string_view detail = {}, HeaderList extra = {});
  // Answers a complete CONNECT with 200 and hands the connection to Detect.
  void EnterConnectTunnel();
  void OnClientEof();
  void OnClientError();
  void DropIdleUpstream(std::string_view reason);
  // A failure that belongs to no exchange, recorded as a flow of its own.
  void RecordConnectionFailure(Phase phase, const std::string& message);

  Mode mode_;
  TunnelTarget tunnel_;
  http::H1Codec codec_;
  std::unique_ptr<Exchange> exchange_;             // the request being answered
  std::vector<std::unique_ptr<Exchange>> reaped_;  // finished, freed on the next loop turn
  std::unique_ptr<Timer> reap_timer_;
  std::unique_ptr<UpstreamConn> idle_upstream_;
  uint64_t requests_seen_ = 0;
  std::optional<std::pair<std::string, uint16_t>> connect_target_;  // from a CONNECT head
  bool connect_complete_ = false;  // ... whose message is complete
  bool handed_off_ = false;
};

}  // namespace mitmd::proxy
