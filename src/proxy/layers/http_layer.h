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
#include "proxy/exchange_host.h"
#include "proxy/request_target.h"

namespace mitmd::proxy {

class Exchange;

class HttpLayer : public Layer,
                  public ExchangeHost,
                  private http::CodecEvents,
                  private WireObserver {
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

  // ExchangeHost
  ConnectionHandler& conn() override { return conn_; }
  http::Codec& codec() override { return codec_; }
  const TunnelTarget& tunnel() const override { return tunnel_; }
  std::unique_ptr<UpstreamConn> TakeIdleUpstream(const UpstreamKey& key) override;
  void ReadClient() override;
  // HTTP/1: the connection closes after the response.
  void RespondLocally(http::StreamId id, std::unique_ptr<Flow> flow, const LocalResponse& response,
                      std::optional<Phase> error, const std::string& message,
                      bool head_only = false) override;
  void OnExchangeDone(http::StreamId id, std::unique_ptr<UpstreamConn> upstream, bool keep_alive,
                      bool upgraded) override;

  Mode mode() const { return mode_; }

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
  // Where a request inside the tunnel points: origin-form (the Host header names the server),
  // absolute-form or, for a CONNECT to a proxy behind the tunnel, authority-form.
  Result<Target> TunnelRequestTarget(const http::RequestHead& head) const;
  // Answers a request whose target is refused (mitmd's own addresses) with the refusal and a
  // recorded flow. False when the target may be reached.
  bool RefuseTarget(http::StreamId id, const http::RequestHead& head, const Target& target);
  // A new flow for a request mitmd answers itself, recorded with where it pointed.
  std::unique_ptr<Flow> FlowFor(const http::RequestHead& head, const Target& target);
  void Reject(http::StreamId id, const http::RequestHead& head, int status,
              const std::string& message, std::string_view detail = {}, HeaderList extra = {});
  // Answers a complete CONNECT with 200 and hands the connection to Detect.
  void EnterConnectTunnel();
  // The request head started arriving --head-timeout ago and is still not complete.
  void OnHeadTimeout();
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
  std::unique_ptr<Timer> head_timer_;  // armed while a request head is partly read
  std::unique_ptr<UpstreamConn> idle_upstream_;
  uint64_t requests_seen_ = 0;
  std::optional<std::pair<std::string, uint16_t>> connect_target_;  // from a CONNECT head
  bool connect_complete_ = false;  // ... whose message is complete
  bool handed_off_ = false;
};

}  // namespace mitmd::proxy
