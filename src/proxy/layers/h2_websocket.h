#pragma once
// H2WebSocket: a WebSocket an HTTP/2 client opened as a stream (RFC 8441 extended CONNECT) and
// the server accepted over HTTP/1.1 (101, negotiated down by H2Layer). It relays the stream's
// DATA to the upstream connection and the upstream's bytes back as DATA, untouched, and records
// the messages on the flow while the socket is open (WsRecorder), as Tunnel does for a WebSocket
// over HTTP/1.1. The flow is recorded once, when either side ends it.
//
// Back-pressure both ways: the client's bytes are given back to its stream window (Consume)
// only while the upstream connection takes them, and the upstream is read only while the
// client's stream is writable.

#include <functional>
#include <memory>
#include <string>

#include "http/h2_codec.h"
#include "proxy/connection_handler.h"
#include "proxy/phase.h"
#include "proxy/upstream/upstream_conn.h"
#include "proxy/ws_recorder.h"

namespace mitmd::proxy {

class H2WebSocket : private WireObserver {
 public:
  // |on_done| is called once the flow is recorded; the owner frees this on a later loop turn.
  H2WebSocket(ConnectionHandler& conn, http::H2Codec& codec, http::StreamId id,
              std::unique_ptr<UpstreamConn> upstream, std::unique_ptr<Flow> flow,
              std::function<void(http::StreamId)> on_done);
  ~H2WebSocket() override;
  H2WebSocket(const H2WebSocket&) = delete;
  H2WebSocket& operator=(const H2WebSocket&) = delete;

  // Starts relaying; |early| are bytes the client sent on the stream before the 200 (not yet
  // consumed from its window).
  void Start(std::string early);
  // The client's stream: bytes (not yet consumed), END_STREAM, RST_STREAM.
  void OnClientData(std::string_view data);
  void OnClientEnd();
  void OnClientReset(uint32_t code, const std::string& message);
  // The client connection drained: the upstream may be read again.
  void OnClientDrained();
  // The connection is closing or mitmd stopping: recorded with |message| as its error.
  void Abort(Phase phase, const std::string& message);
  bool done() const { return flow_ == nullptr; }

 private:
  void OnWireEvent(Wire& wire, WireEvent event) override;
  void ReadUpstream();
  void Consume();
  // Records the flow (with an error when |phase| is set), closes the upstream connection and
  // tells the owner.
  void Finish(std::optional<Phase> phase, const std::string& message);

  ConnectionHandler& conn_;
  http::H2Codec& codec_;
  const http::StreamId id_;
  std::unique_ptr<UpstreamConn> upstream_;
  std::unique_ptr<Flow> flow_;
  std::function<void(http::StreamId)> on_done_;
  std::unique_ptr<WsRecorder> recorder_;
  size_t unconsumed_ = 0;  // client bytes written upstream, not yet given back to its window
  bool upstream_ended_ = false;
  double last_publish_ = 0;
};

}  // namespace mitmd::proxy
