#pragma once
// H2WebSocket: a WebSocket an HTTP/2 client opened as a stream (RFC 8441 extended CONNECT). It
// relays the socket's bytes between the client's stream and the server, untouched, and records
// the messages on the flow while the socket is open (WsRecorder), as Tunnel does for a
// WebSocket over HTTP/1.1. The flow is recorded once, when either side ends it. Two upstreams:
//  - bytes: the server accepted the HTTP/1.1 Upgrade H2Layer sent instead (a 101); its
//    connection's bytes are the socket's (the first constructor, then Start);
//  - stream: the server speaks HTTP/2 and its SETTINGS allow extended CONNECT, so the client's
//    CONNECT goes to it as it is, on a stream of a shared HTTP/2 connection (a lease), and the
//    relay is codec to codec: the client stream's DATA to the server stream's and back (the
//    second constructor, then Connect). A server that does not allow it, or that chose
//    HTTP/1.1, hands the request back to H2Layer (|on_fallback|) for the HTTP/1.1 Upgrade.
//
// States (logged): kConnecting (a lease from the pool) -> kAwaitingSettings (the server's
// SETTINGS not read yet: nothing may say :protocol before them) -> kAwaitingResponse (the
// CONNECT sent) -> kOpen (2xx: the socket is relayed) or kRefused (another answer, relayed to
// the client as it is) -> kDone. The bytes upstream starts in kOpen.
//
// Back-pressure both ways: the client's bytes are given back to its stream window (Consume)
// only while the upstream takes them (its connection's output, or the server stream's window),
// and the upstream is read only while the client's stream is writable. Bytes the client sends
// before the answer wait unconsumed: its stream window bounds them.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/h2_codec.h"
#include "proxy/connection_handler.h"
#include "proxy/exchange_host.h"
#include "proxy/phase.h"
#include "proxy/timers.h"
#include "proxy/upstream/upstream_conn.h"
#include "proxy/ws_recorder.h"

namespace mitmd::proxy {

class H2WebSocket : private WireObserver, private http::CodecEvents {
 public:
  enum class State { kConnecting, kAwaitingSettings, kAwaitingResponse, kOpen, kRefused, kDone };
  // The server cannot take the extended CONNECT (|reason|): H2Layer sends |request| as an
  // HTTP/1.1 Upgrade instead, with |early|, the client's bytes not consumed yet. This is then
  // freed on a later loop turn, its flow unpublished and dropped.
  using Fallback = std::function<void(http::StreamId, http::Request request, std::string early,
                                      std::string reason)>;

  // Bytes upstream. |on_done| is called once the flow is recorded; the owner frees this on a
  // later loop turn.
  H2WebSocket(ConnectionHandler& conn, http::H2Codec& codec, http::StreamId id,
              std::unique_ptr<UpstreamConn> upstream, std::unique_ptr<Flow> flow,
              std::function<void(http::StreamId)> on_done);
  // Stream upstream: |request| is the client's extended CONNECT (its :authority rewritten
  // already where asked), sent to |target| on a connection with |key|. |host| answers the
  // stream when mitmd has to (a 502).
  H2WebSocket(ExchangeHost& host, http::H2Codec& codec, http::StreamId id, http::Request request,
              const Target& target, UpstreamKey key, std::function<void(http::StreamId)> on_done,
              Fallback on_fallback);
  ~H2WebSocket() override;
  H2WebSocket(const H2WebSocket&) = delete;
  H2WebSocket& operator=(const H2WebSocket&) = delete;

  // Bytes upstream: starts relaying; |early| are bytes the client sent on the stream before the
  // 200 (not yet consumed from its window).
  void Start(std::string early);
  // Stream upstream: asks the pool for a connection to the server.
  void Connect();
  // The client's stream: bytes (not yet consumed), END_STREAM, RST_STREAM.
  void OnClientData(std::string_view data);
  void OnClientEnd();
  void OnClientReset(uint32_t code, const std::string& message);
  // The client connection drained: the upstream may be read again.
  void OnClientDrained();
  // The connection is closing or mitmd stopping: recorded with |message| as its error.
  void Abort(Phase phase, const std::string& message);
  bool done() const { return flow_ == nullptr; }
  State state() const { return state_; }

 private:
  // The server stream's name on the lease's codec.
  static constexpr http::StreamId kUpstreamStream = 1;

  void Enter(State state);
  bool stream_upstream() const { return host_ != nullptr; }
  void OnConnected(Upstreams::Outcome outcome);
  // kAwaitingSettings: decides once the server's SETTINGS are known.
  void CheckSettings();
  // Hands the request back to H2Layer (see Fallback).
  void FallBack(std::string reason);
  // Before any answer went to the client: mitmd answers |status| and records the flow failed.
  void Refuse(int status, Phase phase, const std::string& message);
  void ArmHandshakeTimer();

  void OnWireEvent(Wire& wire, WireEvent event) override;
  // http::CodecEvents: the server's stream (stream upstream).
  void OnHead(http::StreamId id, http::Response&& response) override;
  void OnData(http::StreamId id, std::string_view data) override;
  void OnEnd(http::StreamId id) override;
  void OnStreamReset(http::StreamId id, uint32_t code, const std::string& message) override;
  bool Receiving() const override;

  void ReadUpstream();
  // Stream upstream: the server's stream ended or was reset (noted while its events were
  // delivered).
  void ActOnUpstreamEnd();
  // Stream upstream: sends the client's bytes to the server's stream.
  void SendUp(std::string_view data);
  void Consume();
  void MaybePublish(bool recorded);
  // The facts of the upstream connection onto the flow.
  void FillUpstreamFacts();
  // Records the flow (with an error when |phase| is set), closes the upstream connection (or
  // resets the server's stream) and tells the owner.
  void Finish(std::optional<Phase> phase, const std::string& why);

  ConnectionHandler& conn_;
  ExchangeHost* host_ = nullptr;  // set for a stream upstream
  http::H2Codec& codec_;
  const http::StreamId id_;
  State state_ = State::kOpen;
  std::unique_ptr<UpstreamConn> upstream_;
  std::unique_ptr<Flow> flow_;
  std::function<void(http::StreamId)> on_done_;
  Fallback on_fallback_;
  std::unique_ptr<WsRecorder> recorder_;
  // Stream upstream, until the answer: what to send, and the client's early bytes.
  http::Request request_;
  UpstreamKey key_;
  std::string early_;
  std::unique_ptr<Upstreams::Pending> pending_connect_;
  std::unique_ptr<Timer> handshake_timer_;
  struct UpstreamEnd {
    bool reset = false;  // RST_STREAM (or the connection's end) rather than END_STREAM
    uint32_t code = 0;
    std::string message;
  };
  std::optional<UpstreamEnd> upstream_end_;
  std::string upstream_lost_;  // why the shared connection ended under the stream
  size_t unconsumed_ = 0;  // client bytes written upstream, not yet given back to its window
  bool upstream_ended_ = false;
  bool client_ended_ = false;
  double last_publish_ = 0;
};

std::string_view ToString(H2WebSocket::State state);
// Appends |text| to |flow|'s note ("; " between notes).
void AppendNote(Flow& flow, std::string_view text);

}  // namespace mitmd::proxy
