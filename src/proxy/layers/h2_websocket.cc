#include "proxy/layers/h2_websocket.h"

#include "core/strings.h"
#include "proxy/error_page.h"
#include "proxy/exchange.h"
#include "proxy/upstream/shared_h2.h"

namespace mitmd::proxy {
namespace {
// Upstream output above which the client's bytes stay unconsumed (its window closes).
constexpr size_t kHighWater = 256 * 1024;
constexpr double kPublishInterval = 0.25;  // seconds between snapshots of the flow
constexpr size_t kReadChunk = 64 * 1024;
}  // namespace

std::string_view ToString(H2WebSocket::State state) {
  switch (state) {
    case H2WebSocket::State::kConnecting: return "connecting";
    case H2WebSocket::State::kAwaitingSettings: return "awaiting_settings";
    case H2WebSocket::State::kAwaitingResponse: return "awaiting_response";
    case H2WebSocket::State::kOpen: return "open";
    case H2WebSocket::State::kRefused: return "refused";
    case H2WebSocket::State::kDone: return "done";
  }
  return "?";
}

void AppendNote(Flow& flow, std::string_view text) {
  flow.note = flow.note.empty() ? std::string(text) : StrCat(flow.note, "; ", text);
}

H2WebSocket::H2WebSocket(ConnectionHandler& conn, http::H2Codec& codec, http::StreamId id,
                         std::unique_ptr<UpstreamConn> upstream, std::unique_ptr<Flow> flow,
                         std::function<void(http::StreamId)> on_done)
    : conn_(conn),
      codec_(codec),
      id_(id),
      upstream_(std::move(upstream)),
      flow_(std::move(flow)),
      on_done_(std::move(on_done)) {}

H2WebSocket::H2WebSocket(ExchangeHost& host, http::H2Codec& codec, http::StreamId id,
                         http::Request request, const Target& target, UpstreamKey key,
                         std::function<void(http::StreamId)> on_done, Fallback on_fallback)
    : conn_(host.conn()),
      host_(&host),
      codec_(codec),
      id_(id),
      state_(State::kConnecting),
      on_done_(std::move(on_done)),
      on_fallback_(std::move(on_fallback)),
      request_(std::move(request)),
      key_(std::move(key)) {
  flow_ = conn_.NewFlow();
  flow_->stream_id = id_;
  flow_->server_host = key_.host;
  flow_->server_port = key_.port;
  flow_->insecure = conn_.ctx().config.insecure && key_.tls;
  flow_->timings.request_start = flow_->timings.request_end = conn_.ctx().now();
  flow_->timings.client_tls_end = host.tunnel().client_tls_end;
  flow_->client_tls = host.tunnel().client_tls;
  HttpRequest& req = flow_->request.emplace(RecordedRequest(request_.head));
  req.scheme = target.scheme;
  req.host = target.host;
  req.port = target.port;
  req.path = target.path;
  handshake_timer_ = conn_.services().timers.New("ws_handshake", [this] {
    Refuse(504, Phase::kResponse,
           StrCat("the server did not answer the WebSocket's extended CONNECT within ",
                  DurationText(conn_.ctx().config.response_timeout), " (--response-timeout)"));
  });
}

H2WebSocket::~H2WebSocket() {
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    conn_.services().upstreams.Release(std::move(upstream_), "the WebSocket ended");
  }
}

void H2WebSocket::Enter(State state) {
  state_ = state;
  conn_.Log(LogLevel::kDebug, "websocket",
            {{"stream", id_}, {"state", ToString(state)},
             {"flow", flow_ ? flow_->id : std::string()}});
}

void H2WebSocket::ArmHandshakeTimer() {
  auto timeout = conn_.ctx().config.response_timeout;
  if (timeout.count() > 0) handshake_timer_->Arm(timeout);
}

// ---- Opening (stream upstream) --------------------------------------------------------------

void H2WebSocket::Connect() {
  Enter(State::kConnecting);
  conn_.ctx().connections.AddRequest(conn_.id());
  pending_connect_ = conn_.services().upstreams.Connect(
      key_, conn_.id(), [this](Upstreams::Outcome outcome) { OnConnected(std::move(outcome)); });
}

void H2WebSocket::OnConnected(Upstreams::Outcome outcome) {
  pending_connect_.reset();
  if (!outcome) {
    flow_->server_cert = outcome.error().cert;
    Refuse(502, outcome.error().phase, outcome.error().message);
    return;
  }
  if (!AsLease(**outcome)) {
    // The server chose HTTP/1.1: the connection serves the next request instead.
    conn_.services().upstreams.Return(std::move(*outcome));
    FallBack("the server chose HTTP/1.1");
    return;
  }
  upstream_ = std::move(*outcome);
  upstream_->wire->set_observer(this);
  Enter(State::kAwaitingSettings);
  ArmHandshakeTimer();
  CheckSettings();
}

void H2WebSocket::CheckSettings() {
  std::optional<bool> allowed =
      static_cast<LeaseCodec&>(*upstream_->codec).AllowsExtendedConnect();
  if (!allowed) return;  // kReadable when they arrive
  if (!*allowed) {
    FallBack("the server's HTTP/2 SETTINGS do not allow extended CONNECT (RFC 8441)");
    return;
  }
  Enter(State::kAwaitingResponse);
  // A refusal (GOAWAY meanwhile) comes back as OnStreamReset.
  upstream_->codec->SendHead(kUpstreamStream, request_);
  ReadUpstream();
}

void H2WebSocket::FallBack(std::string reason) {
  handshake_timer_->Cancel();
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    conn_.services().upstreams.Release(std::move(upstream_), reason);
  }
  conn_.Log(LogLevel::kDebug, "websocket falls back to HTTP/1.1",
            {{"stream", id_}, {"reason", reason}});
  flow_.reset();  // never published: the Upgrade's exchange has its own
  Enter(State::kDone);
  on_fallback_(id_, std::move(request_), std::move(early_), std::move(reason));  // may free this
}

void H2WebSocket::Refuse(int status, Phase phase, const std::string& message) {
  if (!flow_) return;
  handshake_timer_->Cancel();
  pending_connect_.reset();
  if (upstream_) {
    FillUpstreamFacts();
    upstream_->wire->set_observer(nullptr);
    conn_.services().upstreams.Release(std::move(upstream_), message);
  }
  Enter(State::kDone);
  host_->RespondLocally(id_, std::move(flow_), ErrorPage(status, message), phase, message);
  on_done_(id_);  // may free this on a later loop turn
}

// ---- Relaying -------------------------------------------------------------------------------

void H2WebSocket::Start(std::string early) {
  upstream_->wire->set_observer(this);
  recorder_ = std::make_unique<WsRecorder>(*flow_, flow_->response->headers,
                                           [this] { return conn_.ctx().now(); });
  conn_.Publish(*flow_);
  if (!early.empty()) OnClientData(early);
  if (flow_) ReadUpstream();  // frames that came with the 101
}

void H2WebSocket::OnClientData(std::string_view data) {
  if (!flow_) return;
  conn_.Touch();
  if (state_ == State::kRefused) {
    codec_.Consume(id_, data.size());  // the server said no: nobody takes them
    return;
  }
  if (state_ != State::kOpen) {
    early_.append(data);  // unconsumed: the client's stream window bounds them
    return;
  }
  if (!upstream_) return;
  SendUp(data);
  flow_->bytes_up += data.size();
  unconsumed_ += data.size();
  bool recorded = recorder_->Feed(/*from_client=*/true, data);
  Consume();
  MaybePublish(recorded);
}

void H2WebSocket::SendUp(std::string_view data) {
  if (stream_upstream()) {
    upstream_->codec->SendData(kUpstreamStream, data);
  } else {
    upstream_->wire->Write(data);
  }
}

void H2WebSocket::Consume() {
  if (unconsumed_ == 0 || !upstream_) return;
  // The client may send more only as the server takes it.
  bool full = stream_upstream() ? !upstream_->codec->Writable(kUpstreamStream)
                                : upstream_->wire->output_pending() > kHighWater;
  if (full) return;
  codec_.Consume(id_, unconsumed_);
  unconsumed_ = 0;
}

void H2WebSocket::MaybePublish(bool recorded) {
  double now = conn_.ctx().now();
  if (flow_ && recorded && now - last_publish_ >= kPublishInterval) {
    last_publish_ = now;
    conn_.Publish(*flow_);
  }
}

void H2WebSocket::ReadUpstream() {
  if (!flow_ || !upstream_) return;
  if (stream_upstream()) {
    // Events queued on the lease, delivered while the client's stream takes them (Receiving).
    Status st = upstream_->codec->Receive(upstream_->wire->input(), *this);
    if (!st && flow_) {
      Finish(Phase::kTunnel, st.error().message);
      return;
    }
    ActOnUpstreamEnd();
    return;
  }
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
  MaybePublish(recorded);
  if (upstream_ended_ && evbuffer_get_length(in) == 0) {
    // The server closed (after the closing handshake, normally): so does the stream.
    codec_.SendEnd(id_);
    Finish(std::nullopt, {});
  }
}

bool H2WebSocket::Receiving() const {
  if (!flow_ || upstream_end_) return false;
  if (state_ == State::kOpen || state_ == State::kRefused) return codec_.Writable(id_);
  return state_ == State::kAwaitingResponse;
}

void H2WebSocket::OnHead(http::StreamId, http::Response&& response) {
  if (state_ != State::kAwaitingResponse || response.interim()) return;
  handshake_timer_->Cancel();
  HttpResponse& resp = flow_->response.emplace();
  resp.status = response.head.status;
  resp.reason = response.head.reason;
  resp.version = response.head.version;
  resp.headers = response.head.headers;
  flow_->timings.response_start = conn_.ctx().now();
  FillUpstreamFacts();
  flow_->upstream_reused = ++upstream_->responses > 1;
  conn_.ctx().connections.AddRequest(upstream_->id, conn_.id());
  codec_.SendResponse(id_, response, /*end_stream=*/false);
  if (response.head.status / 100 != 2) {
    // The server said no: its answer goes to the client as it is, and the stream ends with it.
    Enter(State::kRefused);
    conn_.Publish(*flow_);
    return;
  }
  AppendNote(*flow_, "WebSocket over HTTP/2 (RFC 8441) on both sides: the client's "
                           "extended CONNECT went to the server as it was");
  recorder_ = std::make_unique<WsRecorder>(*flow_, flow_->response->headers,
                                           [this] { return conn_.ctx().now(); });
  Enter(State::kOpen);
  conn_.Publish(*flow_);
  std::string early = std::move(early_);
  early_.clear();
  if (!early.empty()) OnClientData(early);
  if (flow_ && client_ended_) upstream_->codec->SendEnd(kUpstreamStream);
}

void H2WebSocket::OnData(http::StreamId, std::string_view data) {
  if (!flow_) return;
  codec_.SendData(id_, data);
  flow_->bytes_down += data.size();
  if (state_ == State::kRefused) {
    flow_->response->body.Append(data.data(), data.size(), flow_->body_record_cap);
    return;
  }
  MaybePublish(recorder_->Feed(/*from_client=*/false, data));
}

// The lease's codec is delivering its queued events: the ending is acted on once it returned
// (ActOnUpstreamEnd), since ending frees the lease.
void H2WebSocket::OnEnd(http::StreamId) {
  upstream_end_ = UpstreamEnd{.reset = false};
}

void H2WebSocket::OnStreamReset(http::StreamId, uint32_t code, const std::string& message) {
  upstream_end_ = UpstreamEnd{.reset = true, .code = code, .message = message};
}

void H2WebSocket::ActOnUpstreamEnd() {
  if (!flow_ || !upstream_end_) return;
  UpstreamEnd end = std::move(*upstream_end_);
  if (!end.reset) {
    // The server ended its side (after the closing handshake, normally): so does the stream.
    if (state_ == State::kAwaitingResponse) {
      Refuse(502, Phase::kResponse, "the server ended the WebSocket's stream without an answer");
      return;
    }
    codec_.SendEnd(id_);
    Finish(std::nullopt, {});
    return;
  }
  uint32_t code = end.code;
  const std::string& message = end.message;
  if (state_ == State::kAwaitingResponse) {
    // No answer went to the client yet: it gets one from mitmd.
    Refuse(502, Phase::kResponse,
           upstream_lost_.empty()
               ? StrCat("the server reset the WebSocket's extended CONNECT: ", message)
               : upstream_lost_);
    return;
  }
  // The connection lost under the stream is no clean end: the client is told so.
  codec_.Reset(id_, !upstream_lost_.empty() ? http::kResetInternalError
                    : code == 0             ? http::kResetCancel
                                            : code);
  // After the closing handshake began, the stream or connection going is the socket's end.
  bool closing = flow_->websocket && flow_->websocket->close;
  if (closing || (upstream_lost_.empty() && (code == 0 || code == http::kResetCancel))) {
    Finish(std::nullopt, {});
  } else if (!upstream_lost_.empty()) {
    Finish(Phase::kTunnel, upstream_lost_);
  } else {
    Finish(Phase::kTunnel, StrCat("the server reset the WebSocket's stream: ", message));
  }
}

void H2WebSocket::OnClientDrained() {
  if (flow_ && upstream_ && codec_.Writable(id_)) ReadUpstream();
}

void H2WebSocket::OnClientEnd() {
  if (!flow_) return;
  client_ended_ = true;
  if (state_ != State::kOpen || !upstream_) return;  // sent once open
  if (stream_upstream()) {
    // The server ends its side once it read everything, which ends the stream (OnEnd).
    upstream_->codec->SendEnd(kUpstreamStream);
  } else {
    // The server closes once it has read everything, which ends the stream (ReadUpstream).
    upstream_->wire->ShutdownWrite();
  }
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
      if (state_ == State::kAwaitingSettings) {
        CheckSettings();
      } else {
        ReadUpstream();
      }
      return;
    case WireEvent::kDrained:
      Consume();
      return;
    case WireEvent::kEof:
    case WireEvent::kError:
      if (stream_upstream()) {
        if (state_ == State::kAwaitingSettings) {
          Refuse(502, Phase::kResponse,
                 event == WireEvent::kEof
                     ? std::string("the server closed its HTTP/2 connection before its SETTINGS")
                     : wire.error());
          return;
        }
        // What arrived first, then the stream's end (OnStreamReset when it had not ended).
        // ReceiveEof's own error only repeats that reset's message.
        upstream_lost_ = event == WireEvent::kEof
                             ? std::string("the server closed its connection with the WebSocket open")
                             : StrCat("the upstream connection failed: ", wire.error());
        (void)upstream_->codec->ReceiveEof(*this);
        ActOnUpstreamEnd();
        return;
      }
      if (event == WireEvent::kEof) {
        upstream_->peer_closed = true;
        upstream_ended_ = true;
        ReadUpstream();  // what is left, then END_STREAM
        return;
      }
      codec_.Reset(id_, http::kResetInternalError);
      Finish(Phase::kTunnel, StrCat("the upstream connection failed: ", wire.error()));
      return;
    case WireEvent::kHandshakeDone:
    case WireEvent::kHandshakePaused:
      return;
  }
}

void H2WebSocket::FillUpstreamFacts() {
  if (!upstream_ || !flow_) return;
  flow_->server_tls = upstream_->tls;
  if (upstream_->cert()) flow_->server_cert = upstream_->cert();
  if (flow_->server_addr.empty()) flow_->server_addr = upstream_->addr;
  if (flow_->upstream_conn_id == 0) flow_->upstream_conn_id = upstream_->id;
  flow_->timings.upstream_connect_start = upstream_->connect_start;
  flow_->timings.upstream_connect_end = upstream_->connect_end;
  flow_->timings.upstream_tls_end = upstream_->tls_end;
}

void H2WebSocket::Finish(std::optional<Phase> phase, const std::string& why) {
  if (!flow_) return;
  std::string message = why;
  if (state_ == State::kConnecting || state_ == State::kAwaitingSettings ||
      state_ == State::kAwaitingResponse) {
    // Before any answer (the client gave up, the connection closed): recorded as a failed
    // request; nothing goes to the client any more.
    if (handshake_timer_) handshake_timer_->Cancel();
    pending_connect_.reset();
    if (!phase) phase = Phase::kRequest;
    if (message.empty()) message = "the client ended the stream before the server answered";
  }
  Enter(State::kDone);
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
    // A lease's stream still open is reset (CANCEL); the shared connection goes on.
    conn_.services().upstreams.Release(std::move(upstream_),
                                       phase ? message : "the WebSocket ended");
  }
  on_done_(id_);  // may free this on a later loop turn
}

}  // namespace mitmd::proxy
