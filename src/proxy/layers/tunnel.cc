#include "proxy/layers/tunnel.h"

#include "core/strings.h"

namespace mitmd::proxy {
namespace {
constexpr size_t kHighWater = 256 * 1024;  // pause the source when the sink holds this much
constexpr int kMaxIovecs = 16;
constexpr double kPublishInterval = 0.25;  // seconds between snapshots of a WebSocket flow
}  // namespace

Tunnel::Tunnel(ConnectionHandler& conn, UpstreamKey key, std::unique_ptr<UpstreamConn> upstream,
               std::unique_ptr<Flow> flow)
    : Layer(conn), key_(std::move(key)), upstream_(std::move(upstream)), flow_(std::move(flow)) {}

Tunnel::~Tunnel() {
  if (upstream_) conn_.services().upstreams.Release(std::move(upstream_), "tunnel closed");
}

void Tunnel::Start() {
  if (upstream_) {
    Relay();
    return;
  }
  conn_.client().SetReading(false);
  pending_connect_ = conn_.services().upstreams.Connect(
      key_, conn_.id(), [this](Upstreams::Outcome outcome) { OnConnected(std::move(outcome)); });
}

void Tunnel::OnConnected(Upstreams::Outcome outcome) {
  pending_connect_.reset();
  if (!outcome) {
    // Nothing to answer a raw tunnel with but the closing.
    Fail(outcome.error().phase, outcome.error().message);
    return;
  }
  upstream_ = std::move(*outcome);
  conn_.client().SetReading(true);
  Relay();
}

void Tunnel::Relay() {
  upstream_->wire->set_observer(this);
  if (flow_ && flow_->response &&
      WsRecorder::IsWebSocketUpgrade(flow_->request ? flow_->request->headers : HeaderList{},
                                     flow_->response->status, flow_->response->headers)) {
    ws_ = std::make_unique<WsRecorder>(*flow_, flow_->response->headers,
                                       [this] { return conn_.ctx().now(); });
    conn_.Publish(*flow_);
  } else if (flow_) {
    flow_->timings.request_start = conn_.ctx().now();
    flow_->server_addr = upstream_->addr;
    flow_->upstream_conn_id = upstream_->id;
    flow_->timings.upstream_connect_start = upstream_->connect_start;
    flow_->timings.upstream_connect_end = upstream_->connect_end;
    conn_.Publish(*flow_);  // an open tunnel is visible while it lasts
  }
  Pump(conn_.client(), *upstream_->wire);
  if (!conn_.closed() && upstream_) Pump(*upstream_->wire, conn_.client());
}

void Tunnel::Pump(Wire& from, Wire& to) {
  evbuffer* in = from.input();
  uint64_t moved = 0;
  while (evbuffer_get_length(in) > 0) {
    evbuffer_iovec vec[kMaxIovecs];
    int n = std::min(evbuffer_peek(in, -1, nullptr, vec, kMaxIovecs), kMaxIovecs);
    size_t chunk = 0;
    bool from_client = &from == &conn_.client();
    bool recorded = false;
    for (int i = 0; i < n; ++i) {
      std::string_view bytes(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len);
      to.Write(bytes);
      if (ws_) recorded |= ws_->Feed(from_client, bytes);
      chunk += vec[i].iov_len;
    }
    // The viewer follows the messages live, a few snapshots a second at most.
    double now = conn_.ctx().now();
    if (recorded && now - last_publish_ >= kPublishInterval) {
      last_publish_ = now;
      conn_.Publish(*flow_);
    }
    evbuffer_drain(in, chunk);
    moved += chunk;
  }
  if (flow_) (&from == &conn_.client() ? flow_->bytes_up : flow_->bytes_down) += moved;
  if (to.output_pending() > kHighWater) from.SetReading(false);
}

void Tunnel::OnClientEvent(WireEvent event) {
  Wire& client = conn_.client();
  switch (event) {
    case WireEvent::kReadable:
      if (upstream_) Pump(client, *upstream_->wire);
      return;
    case WireEvent::kDrained:
      if (upstream_ && !upstream_->wire->reading() && client.output_pending() <= kHighWater) {
        upstream_->wire->SetReading(true);
      }
      return;
    case WireEvent::kEof:
      if (!upstream_) {
        conn_.Close("client closed");
        return;
      }
      upstream_->wire->ShutdownWrite();
      if (upstream_->wire->eof()) conn_.Close("both sides closed");
      return;
    case WireEvent::kError:
      Fail(Phase::kTunnel, StrCat("client connection failed: ", client.error()));
      return;
    default:
      return;
  }
}

void Tunnel::OnWireEvent(Wire& wire, WireEvent event) {
  conn_.Touch();
  Wire& client = conn_.client();
  switch (event) {
    case WireEvent::kReadable:
      Pump(wire, client);
      return;
    case WireEvent::kDrained:
      if (!client.reading() && wire.output_pending() <= kHighWater) client.SetReading(true);
      return;
    case WireEvent::kEof:
      upstream_->peer_closed = true;
      if (wire.truncated()) {
        // Passed on as it happened: the client too sees a close without close_notify.
        client.SkipCloseNotify();
        if (flow_) {
          flow_->note = StrCat(flow_->note, flow_->note.empty() ? "" : "; ",
                               "the server closed without close_notify");
        }
      }
      client.ShutdownWrite();
      if (client.eof()) conn_.Close("both sides closed");
      return;
    case WireEvent::kError:
      conn_.Close(wire.error());
      return;
    default:
      return;
  }
}

void Tunnel::Fail(Phase phase, const std::string& message) {
  if (flow_ && !flow_->error) flow_->error = FlowError{std::string(ToString(phase)), message};
  conn_.Log(LogLevel::kInfo, "tunnel failed", {{"phase", ToString(phase)}, {"error", message}});
  conn_.Close(message);
}

bool Tunnel::OnIdle(const std::string& message) {
  if (flow_ && !flow_->error) flow_->error = FlowError{std::string(ToString(Phase::kTunnel)), message};
  return true;
}

void Tunnel::OnShutdown() {
  if (flow_ && !flow_->error) {
    flow_->error = FlowError{std::string(ToString(Phase::kShutdown)),
                             "mitmd stopped while this exchange was in flight"};
  }
}

void Tunnel::OnClose(std::string_view reason) {
  pending_connect_.reset();
  if (flow_) {
    flow_->timings.response_end = conn_.ctx().now();
    conn_.Record(std::move(flow_));
  }
  if (upstream_) conn_.services().upstreams.Release(std::move(upstream_), reason);
}

}  // namespace mitmd::proxy
