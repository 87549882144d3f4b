#include "proxy/layers/h2_websocket.h"

#include "core/strings.h"

namespace mitmd::proxy {
namespace {
// Upstream output above which the client's bytes stay unconsumed (its window closes).
constexpr size_t kHighWater = 256 * 1024;
constexpr double kPublishInterval = 0.25;  // seconds between snapshots of the flow
constexpr size_t kReadChunk = 64 * 1024;
}  // namespace

H2WebSocket::H2WebSocket(ConnectionHandler& conn, http::H2Codec& codec, http::StreamId id,
                         std::unique_ptr<UpstreamConn> upstream, std::unique_ptr<Flow> flow,
                         std::function<void(http::StreamId)> on_done)
    : conn_(conn),
      codec_(codec),
      id_(id),
      upstream_(std::move(upstream)),
      flow_(std::move(flow)),
      on_done_(std::move(on_done)) {}

H2WebSocket::~H2WebSocket() {
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    conn_.services().upstreams.Release(std::move(upstream_), "the WebSocket ended");
  }
}

void H2WebSocket::Start(std::string early) {
  upstream_->wire->set_observer(this);
  recorder_ = std::make_unique<WsRecorder>(*flow_, flow_->response->headers,
                                           [this] { return conn_.ctx().now(); });
  conn_.Publish(*flow_);
  if (!early.empty()) OnClientData(early);
  if (flow_) ReadUpstream();  // frames that came with the 101
}

void H2WebSocket::OnClientData(std::string_view data) {
  if (!flow_ || !upstream_) return;
  conn_.Touch();
  upstream_->wire->Write(data);
  flow_->bytes_up += data.size();
  unconsumed_ += data.size();
  bool recorded = recorder_->Feed(/*from_client=*/true, data);
  Consume();
  double now = conn_.ctx().now();
  if (recorded && now - last_publish_ >= kPublishInterval) {
    last_publish_ = now;
    conn_.Publish(*flow_);
  }
}

void H2WebSocket::Consume() {
  // The client may send more only as the server takes it.
  if (unconsumed_ == 0 || upstream_->wire->output_pending() > kHighWater) return;
  codec_.Consume(id_, unconsumed_);
  unconsumed_ = 0;
}

void H2WebSocket::ReadUpstream() {
  evbuffer* in = upstream_->wire->input();
  bool recorded = false;
  while (flow_ && evbuffer_get_length(in) > 0 && codec_.Writable(id_)) {
    size_t n = std::min(evbuffer_get_length(in), kReadChunk);
    std::string_view bytes(reinterpret_cast<const char*>(evbuffer_pullup(in, n)), n);
    codec_.SendData(id_, bytes);
    recorded |= recorder_->Feed(/*from_client=*/false, bytes);
    flow_->bytes_down += n;
    evbuffer_drain(in, n);
  }
  if (!flow_) return;
  // A client that reads slowly stops this upstream only (its stream window does the rest).
  upstream_->wire->SetReading(codec_.Writable(id_));
  double now = conn_.ctx().now();
  if (recorded && now - last_publish_ >= kPublishInterval) {
    last_publish_ = now;
    conn_.Publish(*flow_);
  }
  if (upstream_ended_ && evbuffer_get_length(in) == 0) {
    // The server closed (after the closing handshake, normally): so does the stream.
    codec_.SendEnd(id_);
    Finish(std::nullopt, {});
  }
}

void H2WebSocket::OnClientDrained() {
  if (flow_ && upstream_ && codec_.Writable(id_)) ReadUpstream();
}

void H2WebSocket::OnClientEnd() {
  if (!flow_ || !upstream_) return;
  // The server closes once it has read everything, which ends the stream (ReadUpstream).
  upstream_->wire->ShutdownWrite();
}

void H2WebSocket::OnClientReset(uint32_t code, const std::string& message) {
  if (!flow_) return;
  // A client that is done with the socket may cancel the stream rather than end it.
  if (code == http::kResetCancel || code == 0) {
    Finish(std::nullopt, {});
    return;
  }
  Finish(Phase::kTunnel, StrCat("the client reset the WebSocket's stream: ", message));
}

void H2WebSocket::Abort(Phase phase, const std::string& message) {
  if (!flow_) return;
  // After the closing handshake began, the connection going away is the socket's normal end.
  bool closing = flow_->websocket && flow_->websocket->close && phase != Phase::kShutdown;
  Finish(closing ? std::nullopt : std::optional<Phase>(phase), message);
}

void H2WebSocket::OnWireEvent(Wire& wire, WireEvent event) {
  if (!flow_) return;
  conn_.Touch();
  switch (event) {
    case WireEvent::kReadable:
      ReadUpstream();
      return;
    case WireEvent::kDrained:
      Consume();
      return;
    case WireEvent::kEof:
      upstream_->peer_closed = true;
      upstream_ended_ = true;
      ReadUpstream();  // what is left, then END_STREAM
      return;
    case WireEvent::kError: {
      std::string error = StrCat("the upstream connection failed: ", wire.error());
      codec_.Reset(id_, http::kResetInternalError);
      Finish(Phase::kTunnel, error);
      return;
    }
    case WireEvent::kHandshakeDone:
    case WireEvent::kHandshakePaused:
      return;
  }
}

void H2WebSocket::Finish(std::optional<Phase> phase, const std::string& message) {
  std::unique_ptr<Flow> flow = std::move(flow_);
  if (phase && !flow->error) flow->error = FlowError{std::string(ToString(*phase)), message};
  flow->timings.response_end = conn_.ctx().now();
  if (phase) {
    conn_.Log(LogLevel::kInfo, "websocket failed",
              {{"stream", id_}, {"phase", ToString(*phase)}, {"error", message}});
  }
  conn_.Record(std::move(flow));
  if (upstream_) {
    ReportBytes(conn_.ctx().connections, *upstream_);
    upstream_->wire->set_observer(nullptr);
    conn_.services().upstreams.Release(std::move(upstream_),
                                       phase ? message : "the WebSocket ended");
  }
  on_done_(id_);  // may free this on a later loop turn
}

}  // namespace mitmd::proxy
