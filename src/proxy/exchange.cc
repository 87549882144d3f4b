#include "proxy/exchange.h"

#include "core/strings.h"
#include "proxy/layers/http_layer.h"

namespace mitmd::proxy {
namespace {

// Request bytes held while the upstream connection is being made, before reading pauses.
constexpr size_t kHeldLimit = 64 * 1024;

// Body progress is published at most this often per flow (seconds).
constexpr double kPublishInterval = 0.25;

// The headers that address the proxy: never forwarded, never recorded.
constexpr std::string_view kProxyHeaders[] = {"Proxy-Authorization", "Proxy-Connection"};

}  // namespace

HttpRequest RecordedRequest(const http::RequestHead& head) {
  HttpRequest req;
  req.method = head.method;
  req.target = head.target;
  req.version = head.version;
  req.headers = head.headers;
  for (std::string_view name : kProxyHeaders) RemoveHeader(req.headers, name);
  return req;
}

std::string_view ToString(Exchange::State state) {
  switch (state) {
    case Exchange::State::kConnecting: return "connecting";
    case Exchange::State::kForwarding: return "forwarding";
    case Exchange::State::kResponding: return "responding";
    case Exchange::State::kDone: return "done";
  }
  return "unknown";
}

Exchange::Exchange(HttpLayer& layer, http::StreamId id, http::Request request, Target target,
                   UpstreamKey key)
    : layer_(layer),
      id_(id),
      request_(std::move(request)),
      target_(std::move(target)),
      key_(std::move(key)) {}

Exchange::~Exchange() {
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    layer_.conn().services().upstreams.Release(std::move(upstream_), "the exchange ended");
  }
}

void Exchange::Log(std::string_view message) const {
  layer_.conn().Log(LogLevel::kDebug, message,
                    {{"stream", id_}, {"exchange", ToString(state_)},
                     {"flow", flow_ ? flow_->id : std::string()}});
}

void Exchange::Start() {
  ConnectionHandler& conn = layer_.conn();
  flow_ = conn.NewFlow();
  flow_->server_host = key_.host;
  flow_->server_port = key_.port;
  flow_->insecure = conn.ctx().config.insecure && key_.tls;
  flow_->timings.request_start = conn.ctx().now();
  flow_->timings.client_tls_end = layer_.tunnel().client_tls_end;
  flow_->client_tls = layer_.tunnel().client_tls;
  HttpRequest& req = flow_->request.emplace(RecordedRequest(request_.head));
  req.scheme = target_.scheme;
  req.host = target_.host;
  req.port = target_.port;
  req.path = target_.path;
  conn.ctx().connections.AddRequest(conn.id());

  // The proxy's own headers stop here; the raw head is rewritten only when something changed.
  size_t stripped = 0;
  for (std::string_view name : kProxyHeaders) stripped += RemoveHeader(request_.head.headers, name);
  bool retarget = request_.head.target != target_.path;
  if (stripped > 0 || retarget) {
    request_.raw = RewriteRequestHead(request_.raw, target_.path, kProxyHeaders);
    request_.head.target = target_.path;
  }
  Log("request");
  Publish(/*throttled=*/false);
  if (layer_.tunnel().upstream_error) return;  // answered with the error once the request is in
  if (auto idle = layer_.TakeIdleUpstream(key_)) {
    Attach(std::move(idle), /*resume_client=*/false);
    return;
  }
  pending_connect_ = conn.services().upstreams.Connect(
      key_, conn.id(), [this](Upstreams::Outcome outcome) { OnConnected(std::move(outcome)); });
}

void Exchange::OnConnected(Upstreams::Outcome outcome) {
  pending_connect_.reset();
  if (!outcome) {
    flow_->server_cert = outcome.error().cert;
    Fail(502, outcome.error().phase, outcome.error().message);
    return;
  }
  Attach(std::move(*outcome), /*resume_client=*/true);
}

void Exchange::Attach(std::unique_ptr<UpstreamConn> upstream, bool resume_client) {
  upstream_ = std::move(upstream);
  upstream_->wire->set_observer(this);
  state_ = State::kForwarding;
  upstream_->codec->SendHead(id_, request_);
  if (!held_.empty()) {
    upstream_->codec->SendBodyRaw(id_, held_);
    held_.clear();
    held_.shrink_to_fit();
  }
  Wire& client = layer_.conn().client();
  if (!upstream_->codec->Writable(id_)) {
    client.SetReading(false);
  } else if (resume_client) {
    client.SetReading(true);
    layer_.ReadClient();  // the rest of the request body
  }
}

void Exchange::SendUpstream(std::string_view raw) {
  body_bytes_sent_ += raw.size();
  if (upstream_) {
    upstream_->codec->SendBodyRaw(id_, raw);
    if (!upstream_->codec->Writable(id_)) layer_.conn().client().SetReading(false);
    return;
  }
  held_.append(raw);
  if (held_.size() > kHeldLimit) layer_.conn().client().SetReading(false);
}

void Exchange::OnRequestBodyRaw(std::string_view raw) {
  if (!layer_.tunnel().upstream_error) SendUpstream(raw);
}

void Exchange::OnRequestData(std::string_view data) {
  if (flow_) flow_->request->body.Append(data.data(), data.size(), flow_->body_record_cap);
}

void Exchange::OnRequestTrailers(const HeaderList& trailers) {
  if (flow_) flow_->request->trailers = trailers;
}

void Exchange::OnRequestEnd() {
  request_done_ = true;
  if (!flow_) return;
  flow_->timings.request_end = layer_.conn().ctx().now();
  if (const auto& error = layer_.tunnel().upstream_error) {
    // The upstream failed during the client's handshake: this request gets the explanation.
    flow_->server_cert = error->cert;
    Fail(502, error->phase, error->message,
         StrCat("mitmd could not reach ", key_.host, ":", key_.port, " for this request."));
  }
}

void Exchange::OnRequestMalformed(const std::string& message) {
  if (state_ == State::kResponding) {
    Record(Phase::kRequest, message);
    layer_.conn().Close("malformed request");
    return;
  }
  Fail(400, Phase::kRequest, message);
}

void Exchange::OnClientDrained() {
  if (upstream_ && !upstream_->wire->reading() && layer_.codec().Writable(id_)) {
    upstream_->wire->SetReading(true);
  }
}

void Exchange::Abort(Phase phase, const std::string& message) {
  Record(phase, message);
  pending_connect_.reset();
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    layer_.conn().services().upstreams.Release(std::move(upstream_), message);
  }
}

// ---- The response ---------------------------------------------------------------------------

void Exchange::OnWireEvent(Wire& wire, WireEvent event) {
  layer_.conn().Touch();
  switch (event) {
    case WireEvent::kReadable:
      ReadUpstream();
      return;
    case WireEvent::kDrained:
      if (!layer_.conn().client().reading() && wire.output_pending() <= http::H1Codec::kHighWater) {
        layer_.conn().client().SetReading(true);
      }
      return;
    case WireEvent::kEof:
      OnUpstreamEof();
      return;
    case WireEvent::kError:
      OnUpstreamError();
      return;
    case WireEvent::kHandshakeDone:
    case WireEvent::kHandshakePaused:
      return;
  }
}

bool Exchange::Receiving() const {
  return flow_ != nullptr && !layer_.conn().closed() && !unsolicited_upgrade_;
}

void Exchange::ReadUpstream() {
  Status st = upstream_->codec->Receive(upstream_->wire->input(), *this);
  if (!flow_ || layer_.conn().closed()) return;
  if (unsolicited_upgrade_) {
    Fail(502, Phase::kResponse,
         "the server switched protocols (101) although the request asked for no upgrade");
    return;
  }
  if (!st) {
    Fail(502, Phase::kResponse, StrCat("malformed response from upstream: ", st.error().message));
    return;
  }
  if (response_done_) Finish();
}

void Exchange::OnHead(http::StreamId, http::Response&& response) {
  const http::ResponseHead& head = response.head;
  if (response.interim()) {
    if (!flow_->response) flow_->response.emplace();
    flow_->response->informational.push_back(head.status);
    layer_.codec().SendHead(id_, response);
    return;
  }
  if (head.status == 101 && !FindHeader(request_.head.headers, "Upgrade")) {
    // Relaying it would turn the connection into an unrecorded tunnel the client never asked
    // for, with its later requests going to this server. Failed once the codec returns.
    unsolicited_upgrade_ = true;
    return;
  }
  std::vector<int> informational;
  if (flow_->response) informational = std::move(flow_->response->informational);
  HttpResponse& resp = flow_->response.emplace();
  resp.informational = std::move(informational);
  resp.status = head.status;
  resp.reason = head.reason;
  resp.version = head.version;
  resp.headers = head.headers;
  flow_->timings.response_start = layer_.conn().ctx().now();
  flow_->upstream_conn_id = upstream_->id;
  flow_->upstream_reused = ++upstream_->responses > 1;
  layer_.conn().ctx().connections.AddRequest(upstream_->id);
  flow_->server_addr = upstream_->addr;
  state_ = State::kResponding;
  layer_.codec().SendHead(id_, response);
  Publish(/*throttled=*/false);
}

void Exchange::OnBodyRaw(http::StreamId, std::string_view raw) {
  layer_.codec().SendBodyRaw(id_, raw);
  if (!layer_.codec().Writable(id_)) upstream_->wire->SetReading(false);
}

void Exchange::OnData(http::StreamId, std::string_view data) {
  if (flow_->response) flow_->response->body.Append(data.data(), data.size(), flow_->body_record_cap);
  Publish(/*throttled=*/true);
}

void Exchange::Publish(bool throttled) {
  double now = layer_.conn().ctx().now();
  if (!flow_ || (throttled && now - last_publish_ < kPublishInterval)) return;
  last_publish_ = now;
  layer_.conn().Publish(*flow_);
}

void Exchange::OnTrailers(http::StreamId, const HeaderList& trailers) {
  if (flow_->response) flow_->response->trailers = trailers;
}

void Exchange::OnEnd(http::StreamId) {
  flow_->timings.response_end = layer_.conn().ctx().now();
  response_done_ = true;
}

void Exchange::OnUpstreamEof() {
  upstream_->peer_closed = true;
  if (state_ == State::kResponding) {
    Status st = upstream_->codec->ReceiveEof(*this);  // completes a close-delimited body
    if (!st && flow_) {
      Record(Phase::kResponse, st.error().message);
      layer_.conn().Close(st.error().message);
    } else if (response_done_) {
      Finish();
    }
    return;
  }
  if (Retry("the server closed it without responding")) return;
  Fail(502, Phase::kResponse,
       StrCat("the upstream server ", key_.host, ":", key_.port,
              " closed the connection without responding"));
}

bool Exchange::Retry(std::string_view why) {
  static constexpr std::string_view kIdempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT",
                                                     "DELETE"};
  bool idempotent = false;
  for (std::string_view m : kIdempotent) idempotent |= request_.head.method == m;
  if (retried_ || !idempotent || !request_done_ || body_bytes_sent_ > 0 || !upstream_ ||
      upstream_->responses == 0 || state_ != State::kForwarding) {
    return false;
  }
  retried_ = true;
  Log("retrying on a new connection");
  upstream_->wire->set_observer(nullptr);
  ConnectionHandler& conn = layer_.conn();
  conn.services().upstreams.Release(std::move(upstream_),
                                    StrCat("reused connection failed: ", why, "; retried"));
  state_ = State::kConnecting;
  pending_connect_ = conn.services().upstreams.ConnectFresh(
      key_, conn.id(), [this](Upstreams::Outcome outcome) { OnConnected(std::move(outcome)); });
  return true;
}

void Exchange::OnUpstreamError() {
  std::string error = upstream_->wire->error();
  if (state_ == State::kResponding) {
    std::string message = StrCat("the upstream connection failed: ", error);
    Record(Phase::kResponse, message);
    layer_.conn().Close(error);
    return;
  }
  if (Retry(error)) return;
  // TLS 1.3 servers refuse a missing client certificate only after the handshake.
  const UpstreamVerification* v = upstream_->verification.get();
  if (v && v->client_cert_requested) {
    Fail(502, Phase::kUpstreamTls, UpstreamTlsFailure(key_, *v, error));
  } else {
    Fail(502, Phase::kResponse, StrCat("the upstream connection failed: ", error));
  }
}

// ---- Endings --------------------------------------------------------------------------------

void Exchange::Fail(int status, Phase phase, const std::string& message, std::string_view detail) {
  if (!flow_) return;
  layer_.conn().Log(LogLevel::kInfo, "exchange failed",
                    {{"flow", flow_->id}, {"exchange", ToString(state_)},
                     {"phase", ToString(phase)}, {"error", message}});
  if (state_ == State::kResponding) {
    Record(phase, message);
    layer_.conn().Close(message);
    return;
  }
  std::unique_ptr<Flow> flow = std::move(flow_);
  FillUpstreamFacts(*flow);
  state_ = State::kDone;
  layer_.RespondLocally(id_, std::move(flow), ErrorPage(status, message, detail), phase, message);
}

void Exchange::Finish() {
  bool keep_alive =
      layer_.codec().keep_alive() && upstream_->codec->keep_alive() && request_done_;
  bool upgraded = upstream_->codec->upgraded();
  Record();
  layer_.conn().ReportBytes();
  ReportBytes(layer_.conn().ctx().connections, *upstream_);
  upstream_->wire->set_observer(nullptr);
  layer_.OnExchangeDone(std::move(upstream_), keep_alive, upgraded);  // may retire this
}

void Exchange::FillUpstreamFacts(Flow& flow) const {
  if (!upstream_) return;
  flow.server_tls = upstream_->tls;
  if (upstream_->cert()) flow.server_cert = upstream_->cert();
  if (flow.server_addr.empty()) flow.server_addr = upstream_->addr;
  if (flow.upstream_conn_id == 0) flow.upstream_conn_id = upstream_->id;
  flow.timings.upstream_connect_start = upstream_->connect_start;
  flow.timings.upstream_connect_end = upstream_->connect_end;
  flow.timings.upstream_tls_end = upstream_->tls_end;
}

void Exchange::Record(std::optional<Phase> phase, const std::string& message) {
  if (!flow_) return;
  std::unique_ptr<Flow> flow = std::move(flow_);
  if (phase && !flow->error) flow->error = FlowError{std::string(ToString(*phase)), message};
  FillUpstreamFacts(*flow);
  state_ = State::kDone;
  layer_.conn().Record(std::move(flow));
}

}  // namespace mitmd::proxy
