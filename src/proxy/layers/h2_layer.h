#pragma once
// H2Layer: HTTP/2 on the client connection (after TLS with ALPN h2, or h2c with prior
// knowledge inside a CONNECT tunnel). A server-side H2Codec turns the client's frames into
// streams; each stream is an Exchange (exchange.h) with its own flow, which gets its upstream
// connection from the pool and answers on its stream. A stream that fails is reset alone; the
// connection and its other streams go on.
//
// Flow control follows the slower side: a stream's receive window is given back to the client
// only when its exchange has passed the bytes on, and a stream whose client reads slowly stops
// reading its own upstream connection (Exchange), never the others.
//
// WebSockets (RFC 8441): the client is told SETTINGS_ENABLE_CONNECT_PROTOCOL (H2Codec), so it
// may open one as an extended CONNECT stream (":protocol" websocket). When the upstream is
// offered h2, the CONNECT goes to the server as it is, on a stream of a shared HTTP/2
// connection, once that server's SETTINGS allow extended CONNECT too (H2WebSocket relays the
// two streams). Otherwise (the server chose HTTP/1.1 or does not allow it) mitmd negotiates it
// down: the stream's exchange is the equivalent HTTP/1.1 Upgrade on an HTTP/1.1 connection of
// its own; a 101 is answered with 200 and the stream then relays the socket (H2WebSocket).
// Either way the messages are recorded like those of a WebSocket over HTTP/1.1, and another
// answer goes to the client as it is.

#include <map>
#include <memory>
#include <vector>

#include "http/h2_codec.h"
#include "proxy/exchange_host.h"
#include "proxy/layers/h2_websocket.h"

namespace mitmd::proxy {

class Exchange;

class H2Layer : public Layer, public ExchangeHost, private http::CodecEvents {
 public:
  H2Layer(ConnectionHandler& conn, TunnelTarget tunnel);
  ~H2Layer() override;

  std::string_view name() const override { return "h2"; }
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
  void RespondLocally(http::StreamId id, std::unique_ptr<Flow> flow, const LocalResponse& response,
                      std::optional<Phase> error, const std::string& message,
                      bool head_only = false) override;
  void OnExchangeDone(http::StreamId id, std::unique_ptr<UpstreamConn> upstream, bool keep_alive,
                      bool upgraded) override;

 private:
  // http::CodecEvents (the client's streams).
  void OnHead(http::StreamId id, http::Request&& request) override;
  void OnData(http::StreamId id, std::string_view data) override;
  void OnTrailers(http::StreamId id, const HeaderList& trailers) override;
  void OnEnd(http::StreamId id) override;
  void OnStreamReset(http::StreamId id, uint32_t code, const std::string& message) override;
  bool Receiving() const override;

  Exchange* Find(http::StreamId id);
  // Takes the exchange on |id| out of the live set; freed on the next loop turn (it may be on
  // the stack).
  void Retire(http::StreamId id);
  // Streams whose client side drained may read their upstream again.
  void ResumeStreams();
  // Records every exchange still open as failed and retires it.
  void AbortAll(Phase request_phase, Phase response_phase, const std::string& message);
  // Where a request on this connection goes (its :authority, else Host, SNI or the tunnel's).
  Target TargetFor(const http::Request& request) const;
  // An extended CONNECT for a WebSocket: to an HTTP/2 server as it is, else UpgradeWebSocket.
  void OpenWebSocket(http::StreamId id, http::Request&& request);
  // Its exchange is the HTTP/1.1 Upgrade; |early|: the client's bytes so far (unconsumed);
  // |why|: the reason it does not go over HTTP/2 (noted on the flow), empty when it was not
  // tried.
  void UpgradeWebSocket(http::StreamId id, http::Request&& request, std::string early,
                        std::string why);
  // The server switched protocols for the WebSocket on |id|: relay it from now on.
  void RelayWebSocket(http::StreamId id, std::unique_ptr<UpstreamConn> upstream,
                      std::unique_ptr<Flow> flow);
  H2WebSocket* FindWebSocket(http::StreamId id);
  void RetireWebSocket(http::StreamId id);

  // A WebSocket's handshake under way (its exchange runs): what the relay needs afterwards.
  struct WsHandshake {
    std::string key;         // the Sec-WebSocket-Key sent upstream
    HttpRequest request;     // the client's extended CONNECT, as recorded
    std::string early;       // bytes the client sent before the answer (not consumed yet)
    std::string why;         // why not as an extended CONNECT to an HTTP/2 server
  };

  TunnelTarget tunnel_;
  http::H2Codec codec_;
  std::map<http::StreamId, std::unique_ptr<Exchange>> exchanges_;
  std::vector<std::unique_ptr<Exchange>> reaped_;
  std::unique_ptr<Timer> reap_timer_;
  std::unique_ptr<Timer> flush_timer_;  // sends response heads held by the codec
  std::map<http::StreamId, WsHandshake> ws_handshakes_;
  std::map<http::StreamId, std::unique_ptr<H2WebSocket>> websockets_;
  std::vector<std::unique_ptr<H2WebSocket>> reaped_websockets_;
  std::unique_ptr<UpstreamConn> idle_upstream_;  // from the ClientHello pause, until used
  bool closing_ = false;
};

}  // namespace mitmd::proxy
