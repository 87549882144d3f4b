#include "proxy/layers/http_layer.h"

#include "core/strings.h"
#include "proxy/alpn_policy.h"
#include "proxy/exchange.h"
#include "proxy/layers/detect.h"
#include "proxy/layers/tunnel.h"

namespace mitmd::proxy {
namespace {

// A client that completes the handshake and hangs up this fast without a request has most
// likely refused the certificate after checking a pin (curl --pinnedpubkey, pinned apps).
constexpr double kPinnedHangupSeconds = 1.0;

}  // namespace

HttpLayer::HttpLayer(ConnectionHandler& conn, Mode mode)
    : Layer(conn), mode_(mode), codec_(http::H1Codec::Side::kServer, conn.client()) {
  reap_timer_ = conn_.services().timers.New("reap", [this] { reaped_.clear(); });
  head_timer_ = conn_.services().timers.New("head", [this] { OnHeadTimeout(); });
}

HttpLayer::HttpLayer(ConnectionHandler& conn, TunnelTarget tunnel)
    : Layer(conn),
      mode_(Mode::kTunnel),
      tunnel_(std::move(tunnel)),
      codec_(http::H1Codec::Side::kServer, conn.client()) {
  reap_timer_ = conn_.services().timers.New("reap", [this] { reaped_.clear(); });
  head_timer_ = conn_.services().timers.New("head", [this] { OnHeadTimeout(); });
  idle_upstream_ = std::move(tunnel_.upstream);
  if (idle_upstream_) idle_upstream_->wire->set_observer(this);
}

HttpLayer::~HttpLayer() {
  exchange_.reset();
  reaped_.clear();
  if (idle_upstream_) DropIdleUpstream("the connection closed");
}

void HttpLayer::Start() {
  if (evbuffer_get_length(conn_.client().input()) > 0) ReadClient();
}

void HttpLayer::OnClientEvent(WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
      ReadClient();
      return;
    case WireEvent::kDrained:
      if (exchange_) exchange_->OnClientDrained();
      return;
    case WireEvent::kEof:
      OnClientEof();
      return;
    case WireEvent::kError:
      OnClientError();
      return;
    case WireEvent::kHandshakeDone:
    case WireEvent::kHandshakePaused:
      return;
  }
}

bool HttpLayer::Receiving() const { return !handed_off_ && !conn_.closed(); }

void HttpLayer::ReadClient() {
  if (!Receiving()) return;
  Status st = codec_.Receive(conn_.client().input(), *this);
  if (st && connect_complete_ && Receiving()) {
    EnterConnectTunnel();
    return;
  }
  if (st && Receiving() && !exchange_ && !codec_.idle() && !head_timer_->armed()) {
    head_timer_->Arm(conn_.ctx().config.head_timeout);  // a slow head may not hold the connection
  }
  if (st || !Receiving()) return;
  std::string message = StrCat("malformed request: ", st.error().message);
  if (exchange_) {
    exchange_->OnRequestMalformed(message);
  } else if (mode_ == Mode::kProxy && requests_seen_ == 0) {
    message = StrCat("malformed proxy request: ", st.error().message);
    RespondLocally(0, conn_.NewFlow(), ErrorPage(400, message), Phase::kProxyRequest, message);
  } else {
    RespondLocally(0, conn_.NewFlow(), ErrorPage(400, message), Phase::kRequest, message);
  }
}

void HttpLayer::OnHead(http::StreamId id, http::Request&& request) {
  head_timer_->Cancel();
  if (mode_ == Mode::kProxy) {
    OnProxyRequest(id, std::move(request));
    return;
  }
  ++requests_seen_;
  auto target = TunnelRequestTarget(request.head);
  if (!target) {
    std::string message = StrCat("malformed request: ", target.error().message);
    RespondLocally(id, conn_.NewFlow(), ErrorPage(400, message), Phase::kRequest, message);
    return;
  }
  RewriteHost(tunnel_, request, *target);
  UpstreamKey key = tunnel_.key;
  // An Upgrade (a WebSocket) cannot go as a stream of an HTTP/2 connection, which the h2 offered
  // upstream for an HTTP/1 client may give (alpn_policy.h): unless the connection made during
  // the handshake speaks HTTP/1.1, it gets an HTTP/1.1 connection of its own.
  bool idle_http1 = idle_upstream_ && idle_upstream_->codec &&
                    idle_upstream_->codec->protocol() == http::Protocol::kHttp1;
  if (!idle_http1 && FindHeader(request.head.headers, "Upgrade")) {
    key.alpn = Http1Offer(key.alpn);
  }
  exchange_ = std::make_unique<Exchange>(*this, id, std::move(request), std::move(*target),
                                         std::move(key));
  exchange_->Start();
}

Result<Target> HttpLayer::TunnelRequestTarget(const http::RequestHead& head) const {
  Target target;
  // What the server is spoken to with (a reverse proxy may take plain HTTP to a TLS server).
  target.scheme = tunnel_.key.tls ? "https" : "http";
  target.port = tunnel_.port;
  if (head.target.find("://") != std::string::npos) {
    // Absolute-form, from a client that takes the server for a proxy: the URL names the host
    // (RFC 9112 section 3.2.2); the request still goes to this tunnel's server, in origin-form.
    auto url = ParseAbsoluteForm(head.target);
    if (!url) return std::unexpected(url.error());
    target.host = std::move(url->host);
    target.path = std::move(url->path);
    return target;
  }
  if (EqualsIgnoreCase(head.method, "CONNECT")) {
    // Authority-form: the server is a proxy itself. Relayed as it is; the path stays empty.
    auto authority = ParseAuthorityForm(head.target);
    if (!authority) return std::unexpected(authority.error());
    target.host = std::move(authority->host);
    target.port = authority->port;
    return target;
  }
  const std::string* host = FindHeader(head.headers, "Host");
  Target from_host = host ? ParseHostHeader(*host, tunnel_.port) : Target{};
  if (!from_host.host.empty()) {
    target.host = from_host.host;
  } else if (tunnel_.hello && !tunnel_.hello->sni.empty()) {
    target.host = tunnel_.hello->sni;
  } else {
    target.host = tunnel_.host;
  }
  target.path = head.target;
  return target;
}

void HttpLayer::OnProxyRequest(http::StreamId id, http::Request&& request) {
  const http::RequestHead& head = request.head;
  if (auto refusal = conn_.services().hooks.CheckProxyAuth(head, conn_.client_addr())) {
    auto flow = conn_.NewFlow();
    flow->request = RecordedRequest(head);
    RespondLocally(id, std::move(flow), refusal->response, refusal->error_phase, refusal->message);
    return;
  }
  if (EqualsIgnoreCase(head.method, "CONNECT")) {
    auto target = ParseAuthorityForm(head.target);
    if (!target) {
      Reject(id, head, 400, target.error().message);
      return;
    }
    if (RefuseTarget(id, head, *target)) return;
    connect_target_.emplace(target->host, target->port);
    return;  // 200 once the CONNECT message is complete
  }
  if (!head.target.empty() && head.target[0] != '/' && head.target != "*" &&
      head.target.find("://") == std::string::npos) {
    Reject(id, head, 405,
           StrCat("method ", head.method, " with target '", head.target,
                  "' is not supported: only CONNECT takes a host:port target"),
           {}, {{"Allow", "CONNECT, GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"}});
    return;
  }
  if (head.target.find("://") == std::string::npos) {
    Reject(id, head, 400,
           StrCat("'", head.method, " ", head.target,
                  "' was sent to mitmd itself: mitmd is a proxy; configure it as your HTTP "
                  "proxy (request absolute URLs, or CONNECT host:port)"));
    return;
  }
  auto target = ParseAbsoluteForm(head.target);
  if (!target) {
    Reject(id, head, 400, target.error().message);
    return;
  }
  if (auto page = conn_.services().hooks.ServeLocally(head, *target)) {
    auto flow = FlowFor(head, *target);
    flow->timings.request_start = flow->timings.request_end = conn_.ctx().now();
    RespondLocally(id, std::move(flow), page->response, page->error_phase, page->message,
                   EqualsIgnoreCase(head.method, "HEAD"));
    return;
  }
  if (RefuseTarget(id, head, *target)) return;
  ++requests_seen_;
  UpstreamKey key;
  key.host = target->host;
  key.port = target->port;
  key.tls = target->scheme == "https";
  if (key.tls) key.sni = target->host;  // as a client asking for this URL itself would send
  key.insecure = conn_.ctx().config.insecure;
  exchange_ = std::make_unique<Exchange>(*this, id, std::move(request), std::move(*target),
                                         std::move(key));
  exchange_->Start();
}

bool HttpLayer::RefuseTarget(http::StreamId id, const http::RequestHead& head,
                             const Target& target) {
  auto refusal = conn_.services().hooks.CheckTarget(target);
  if (!refusal) return false;
  RespondLocally(id, FlowFor(head, target), refusal->response, refusal->error_phase,
                 refusal->message);
  return true;
}

std::unique_ptr<Flow> HttpLayer::FlowFor(const http::RequestHead& head, const Target& target) {
  auto flow = conn_.NewFlow();
  flow->server_host = target.host;
  flow->server_port = target.port;
  HttpRequest& req = flow->request.emplace(RecordedRequest(head));
  req.scheme = target.scheme;
  req.host = target.host;
  req.port = target.port;
  req.path = target.path;
  return flow;
}

void HttpLayer::Reject(http::StreamId id, const http::RequestHead& head, int status,
                       const std::string& message, std::string_view detail, HeaderList extra) {
  auto flow = conn_.NewFlow();
  flow->request = RecordedRequest(head);
  RespondLocally(id, std::move(flow), ErrorPage(status, message, detail, std::move(extra)),
                 Phase::kProxyRequest, message);
}

void HttpLayer::OnBodyRaw(http::StreamId, std::string_view raw) {
  if (exchange_) exchange_->OnRequestBodyRaw(raw);
}

void HttpLayer::OnData(http::StreamId, std::string_view data) {
  if (exchange_) exchange_->OnRequestData(data);
}

void HttpLayer::OnTrailers(http::StreamId, const HeaderList& trailers) {
  if (exchange_) exchange_->OnRequestTrailers(trailers);
}

void HttpLayer::OnEnd(http::StreamId) {
  if (connect_target_) {
    connect_complete_ = true;  // answered once the codec has consumed the request
    return;
  }
  if (exchange_) exchange_->OnRequestEnd();
}

void HttpLayer::EnterConnectTunnel() {
  auto [host, port] = *connect_target_;
  conn_.client().Write("HTTP/1.1 200 Connection established\r\n\r\n");
  conn_.ctx().connections.SetTarget(conn_.id(), host, port);
  handed_off_ = true;
  conn_.HandOff(std::make_unique<Detect>(conn_, host, port));
}

void HttpLayer::RespondLocally(http::StreamId id, std::unique_ptr<Flow> flow,
                               const LocalResponse& response, std::optional<Phase> error,
                               const std::string& message, bool head_only) {
  HttpResponse& resp = flow->response.emplace();
  http::Response head = response.Head();
  resp.status = head.head.status;
  resp.reason = head.head.reason;
  resp.version = head.head.version;
  resp.headers = head.head.headers;
  resp.body.Append(response.body.data(), response.body.size(), flow->body_record_cap);
  flow->timings.response_start = flow->timings.response_end = conn_.ctx().now();
  if (error) {
    flow->error = FlowError{std::string(ToString(*error)), message};
    conn_.Log(LogLevel::kInfo, "error response",
              {{"status", response.status}, {"phase", ToString(*error)}, {"error", message}});
  } else {
    flow->note = message;
  }
  conn_.Record(std::move(flow));
  codec_.SendHead(id, head);
  if (!head_only) codec_.SendBodyRaw(id, response.body);
  conn_.Close(message);
}

std::unique_ptr<UpstreamConn> HttpLayer::TakeIdleUpstream(const UpstreamKey& key) {
  if (!idle_upstream_) return nullptr;
  if (!idle_upstream_->usable()) {
    DropIdleUpstream("idle upstream closed");
    return nullptr;
  }
  if (!(idle_upstream_->key == key)) {
    DropIdleUpstream("the next request goes to another server");
    return nullptr;
  }
  idle_upstream_->wire->set_observer(nullptr);
  return std::move(idle_upstream_);
}

void HttpLayer::OnExchangeDone(http::StreamId, std::unique_ptr<UpstreamConn> upstream,
                               bool keep_alive, bool upgraded) {
  reaped_.push_back(std::move(exchange_));
  reap_timer_->Arm(std::chrono::milliseconds(0));
  if (upgraded && upstream) {
    // The response switched protocols: what follows is relayed as bytes.
    handed_off_ = true;
    UpstreamKey key = upstream->key;
    std::unique_ptr<Flow> flow = reaped_.back()->TakeUpgradedFlow();  // a WebSocket stays live
    conn_.HandOff(
        std::make_unique<Tunnel>(conn_, std::move(key), std::move(upstream), std::move(flow)));
    return;
  }
  if (!keep_alive) {
    if (upstream) conn_.services().upstreams.Release(std::move(upstream), "not kept alive");
    conn_.Close("connection not kept alive");
    return;
  }
  if (upstream) conn_.services().upstreams.Return(std::move(upstream));
  codec_.Resume();
  if (!conn_.client().reading()) conn_.client().SetReading(true);
  ReadClient();
}

void HttpLayer::OnWireEvent(Wire& wire, WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
      // Bytes from upstream with no request in flight: nothing can frame them.
      evbuffer_drain(wire.input(), evbuffer_get_length(wire.input()));
      DropIdleUpstream("the server sent bytes with no request in flight");
      return;
    case WireEvent::kEof:
    case WireEvent::kError:
      idle_upstream_->peer_closed = event == WireEvent::kEof;
      DropIdleUpstream("idle upstream closed");
      // Plain HTTP in a tunnel goes to that one server: nothing more can be forwarded.
      if (mode_ == Mode::kTunnel && !tunnel_.hello) conn_.Close("upstream closed");
      return;
    default:
      return;
  }
}

void HttpLayer::DropIdleUpstream(std::string_view reason) {
  if (!idle_upstream_) return;
  idle_upstream_->wire->set_observer(nullptr);
  conn_.services().upstreams.Release(std::move(idle_upstream_), reason);
}

void HttpLayer::RecordConnectionFailure(Phase phase, const std::string& message) {
  auto flow = conn_.NewFlow();
  flow->server_host = tunnel_.host;
  flow->server_port = tunnel_.port;
  flow->client_tls = tunnel_.client_tls;
  flow->timings.client_tls_end = tunnel_.client_tls_end;
  if (tunnel_.upstream_error) flow->server_cert = tunnel_.upstream_error->cert;
  flow->error = FlowError{std::string(ToString(phase)), message};
  conn_.Log(LogLevel::kInfo, "flow failed", {{"phase", ToString(phase)}, {"error", message}});
  conn_.Record(std::move(flow));
}

void HttpLayer::OnHeadTimeout() {
  if (exchange_ || conn_.closed()) return;
  std::string message =
      StrCat("the client did not complete its request head within ",
             DurationText(conn_.ctx().config.head_timeout), " (--head-timeout)");
  RespondLocally(0, conn_.NewFlow(), ErrorPage(408, message), Phase::kRequest, message);
}

void HttpLayer::OnClientEof() {
  ProxyContext& ctx = conn_.ctx();
  if (tunnel_.hello && !exchange_ && requests_seen_ == 0 && !tunnel_.upstream_error &&
      ctx.now() - tunnel_.client_tls_end < kPinnedHangupSeconds) {
    std::string message =
        "the client closed the connection right after the TLS handshake without sending a "
        "request: it most likely rejected mitmd's certificate (certificate or key pinning)";
    auto verdict = ctx.passthrough.RecordRejection(
        conn_.client_addr(), tunnel_.host, PassthroughPolicy::Evidence::kHangup,
        "closed right after the handshake, repeatedly",
        PassthroughPolicy::OffersHttp(tunnel_.hello->alpn), ctx.now());
    if (!verdict.message.empty()) message += StrCat("; ", verdict.message);
    RecordConnectionFailure(Phase::kClientTls, message);
    conn_.Close("client hung up after the handshake");
    return;
  }
  // HTTP clients do not half-close: an end of input mid-exchange means the client gave up.
  if (exchange_ && exchange_->request_done()) {
    exchange_->Abort(Phase::kResponse,
                     "the client closed the connection before the response was complete");
  } else if (exchange_) {
    exchange_->Abort(Phase::kRequest,
                     "the client closed the connection before the request was complete");
  } else if (const auto& error = tunnel_.upstream_error) {
    RecordConnectionFailure(error->phase, error->message);
  }
  conn_.Close("client closed");
}

void HttpLayer::OnClientError() {
  std::string error = conn_.client().error();
  if (exchange_) {
    exchange_->Abort(exchange_->request_done() ? Phase::kResponse : Phase::kRequest,
                     StrCat("client connection failed: ", error));
  }
  conn_.Close(error);
}

bool HttpLayer::OnIdle(const std::string& message) {
  if (!exchange_) return true;
  // Waiting for a response is not idleness: a long poll may take many minutes; nor is waiting
  // for the user to resume a held exchange.
  if ((exchange_->request_done() && exchange_->state() == Exchange::State::kForwarding) ||
      exchange_->state() == Exchange::State::kHeld) {
    return false;
  }
  exchange_->Abort(exchange_->request_done() ? Phase::kResponse : Phase::kRequest, message);
  return true;
}

void HttpLayer::OnShutdown() {
  if (exchange_) {
    exchange_->Abort(Phase::kShutdown, "mitmd stopped while this exchange was in flight");
  }
}

void HttpLayer::OnClose(std::string_view reason) {
  if (exchange_) {
    exchange_->Abort(exchange_->request_done() ? Phase::kResponse : Phase::kRequest,
                     std::string(reason));
  }
  DropIdleUpstream(reason);
}

}  // namespace mitmd::proxy
