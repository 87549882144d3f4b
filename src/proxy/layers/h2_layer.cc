#include "proxy/layers/h2_layer.h"

#include "core/strings.h"
#include "http/translate.h"
#include "proxy/exchange.h"

namespace mitmd::proxy {

H2Layer::H2Layer(ConnectionHandler& conn, TunnelTarget tunnel)
    : Layer(conn),
      tunnel_(std::move(tunnel)),
      codec_(http::H2Codec::Side::kServer, conn.client()) {
  reap_timer_ = conn_.services().timers.New("reap", [this] { reaped_.clear(); });
  flush_timer_ = conn_.services().timers.New("h2_flush", [this] { codec_.Flush(); });
  codec_.set_on_deferred([this] { flush_timer_->Arm(std::chrono::milliseconds(0)); });
  idle_upstream_ = std::move(tunnel_.upstream);
}

H2Layer::~H2Layer() {
  exchanges_.clear();
  reaped_.clear();
  if (idle_upstream_) {
    conn_.services().upstreams.Release(std::move(idle_upstream_), "the connection closed");
  }
}

void H2Layer::Start() {
  codec_.Flush();  // our SETTINGS
  if (evbuffer_get_length(conn_.client().input()) > 0) ReadClient();
}

void H2Layer::OnClientEvent(WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
      ReadClient();
      return;
    case WireEvent::kDrained:
      codec_.Flush();
      ResumeStreams();
      return;
    case WireEvent::kEof:
      AbortAll(Phase::kRequest, Phase::kResponse,
               "the client closed the connection before the stream was complete");
      conn_.Close("client closed");
      return;
    case WireEvent::kError: {
      std::string error = conn_.client().error();
      AbortAll(Phase::kRequest, Phase::kResponse, StrCat("client connection failed: ", error));
      conn_.Close(error);
      return;
    }
    case WireEvent::kHandshakeDone:
    case WireEvent::kHandshakePaused:
      return;
  }
}

bool H2Layer::Receiving() const { return !closing_ && !conn_.closed(); }

void H2Layer::ReadClient() {
  if (!Receiving()) return;
  Status st = codec_.Receive(conn_.client().input(), *this);
  if (!st) {
    std::string message = StrCat("the client broke the HTTP/2 protocol: ", st.error().message);
    AbortAll(Phase::kRequest, Phase::kResponse, message);
    conn_.Log(LogLevel::kInfo, "h2 connection failed", {{"error", message}});
    conn_.Close(message);
    return;
  }
  ResumeStreams();  // WINDOW_UPDATEs may have opened streams
}

void H2Layer::ResumeStreams() {
  for (auto& [id, exchange] : exchanges_) exchange->OnClientDrained();
}

Exchange* H2Layer::Find(http::StreamId id) {
  auto it = exchanges_.find(id);
  return it == exchanges_.end() ? nullptr : it->second.get();
}

void H2Layer::Retire(http::StreamId id) {
  auto it = exchanges_.find(id);
  if (it == exchanges_.end()) return;
  reaped_.push_back(std::move(it->second));
  exchanges_.erase(it);
  reap_timer_->Arm(std::chrono::milliseconds(0));
}

void H2Layer::OnHead(http::StreamId id, http::Request&& request) {
  const HeaderList& fields = request.head.headers;
  if (EqualsIgnoreCase(request.head.method, "CONNECT")) {
    // No SETTINGS_ENABLE_CONNECT_PROTOCOL is sent, so a client asks this only when broken.
    auto flow = conn_.NewFlow();
    flow->stream_id = id;
    flow->request = RecordedRequest(request.head);
    RespondLocally(id, std::move(flow),
                   ErrorPage(501, "mitmd does not relay CONNECT inside HTTP/2"),
                   Phase::kRequest, "CONNECT inside HTTP/2 is not supported");
    return;
  }
  Target target;
  const std::string* scheme = http::PseudoHeader(fields, ":scheme");
  target.scheme = scheme ? *scheme : (tunnel_.hello ? "https" : "http");
  const std::string* authority = http::PseudoHeader(fields, ":authority");
  if (!authority) authority = FindHeader(fields, "host");
  Target from_authority = authority ? ParseHostHeader(*authority, tunnel_.port) : Target{};
  if (!from_authority.host.empty()) {
    target.host = from_authority.host;
  } else if (tunnel_.hello && !tunnel_.hello->sni.empty()) {
    target.host = tunnel_.hello->sni;
  } else {
    target.host = tunnel_.host;
  }
  target.port = tunnel_.port;
  target.path = request.head.target;
  RewriteHost(tunnel_, request, target);
  auto exchange =
      std::make_unique<Exchange>(*this, id, std::move(request), std::move(target), tunnel_.key);
  Exchange* ex = exchange.get();
  exchanges_[id] = std::move(exchange);
  ex->Start();
}

void H2Layer::OnData(http::StreamId id, std::string_view data) {
  if (Exchange* ex = Find(id)) ex->OnRequestData(data);
  // The exchange holds or forwards what it got: the client may send as much again.
  codec_.Consume(id, data.size());
}

void H2Layer::OnTrailers(http::StreamId id, const HeaderList& trailers) {
  if (Exchange* ex = Find(id)) ex->OnRequestTrailers(trailers);
}

void H2Layer::OnEnd(http::StreamId id) {
  if (Exchange* ex = Find(id)) ex->OnRequestEnd();
}

void H2Layer::OnStreamReset(http::StreamId id, uint32_t, const std::string& message) {
  Exchange* ex = Find(id);
  if (!ex) return;
  std::string why = StrCat("the client ended the stream: ", message);
  ex->Abort(ex->request_done() ? Phase::kResponse : Phase::kRequest, why);
  Retire(id);
}

std::unique_ptr<UpstreamConn> H2Layer::TakeIdleUpstream(const UpstreamKey& key) {
  if (!idle_upstream_ || !(idle_upstream_->key == key)) return nullptr;
  if (!idle_upstream_->usable()) {
    conn_.services().upstreams.Release(std::move(idle_upstream_), "idle upstream closed");
    return nullptr;
  }
  return std::move(idle_upstream_);
}

void H2Layer::RespondLocally(http::StreamId id, std::unique_ptr<Flow> flow,
                             const LocalResponse& response, std::optional<Phase> error,
                             const std::string& message, bool head_only) {
  HttpResponse& resp = flow->response.emplace();
  http::Response head = response.Head();
  // HTTP/2 carries no Connection header, and the connection goes on.
  RemoveHeader(head.head.headers, "Connection");
  head.raw.clear();
  resp.status = head.head.status;
  resp.reason = head.head.reason;
  resp.version = std::string(http::kHttp2Version);
  resp.headers = http::ToH2Response(head.head);
  resp.body.Append(response.body.data(), response.body.size(), flow->body_record_cap);
  flow->stream_id = id;
  flow->timings.response_start = flow->timings.response_end = conn_.ctx().now();
  if (error) {
    flow->error = FlowError{std::string(ToString(*error)), message};
    conn_.Log(LogLevel::kInfo, "error response",
              {{"stream", id}, {"status", response.status}, {"phase", ToString(*error)},
               {"error", message}});
  } else {
    flow->note = message;
  }
  conn_.Record(std::move(flow));
  bool body = !head_only && !response.body.empty();
  codec_.SendResponse(id, head, /*end_stream=*/!body);
  if (body) {
    codec_.SendData(id, response.body);
    codec_.SendEnd(id);
  }
  Retire(id);
}

void H2Layer::OnExchangeDone(http::StreamId id, std::unique_ptr<UpstreamConn> upstream,
                             bool keep_alive, bool upgraded) {
  // HTTP/2 has no protocol switch to follow: a flow kept for one is recorded as it is.
  Exchange* ex = Find(id);
  if (auto kept = upgraded && ex ? ex->TakeUpgradedFlow() : nullptr) conn_.Record(std::move(kept));
  Retire(id);
  if (!upstream) return;
  if (keep_alive && !upgraded) {
    conn_.services().upstreams.Return(std::move(upstream));
  } else {
    conn_.services().upstreams.Release(std::move(upstream), "not kept alive");
  }
}

void H2Layer::AbortAll(Phase request_phase, Phase response_phase, const std::string& message) {
  std::vector<http::StreamId> ids;
  for (const auto& [id, ex] : exchanges_) ids.push_back(id);
  for (http::StreamId id : ids) {
    Exchange* ex = Find(id);
    if (!ex) continue;
    ex->Abort(ex->request_done() ? response_phase : request_phase, message);
    Retire(id);
  }
}

bool H2Layer::OnIdle(const std::string& message) {
  // A stream waiting for its response is not idleness (a long poll, a server stream).
  for (const auto& [id, ex] : exchanges_) {
    if (ex->request_done() && ex->state() != Exchange::State::kResponding) return false;
  }
  AbortAll(Phase::kRequest, Phase::kResponse, message);
  return true;
}

void H2Layer::OnShutdown() {
  codec_.Shutdown();
  AbortAll(Phase::kShutdown, Phase::kShutdown, "mitmd stopped while this stream was in flight");
}

void H2Layer::OnClose(std::string_view reason) {
  closing_ = true;
  AbortAll(Phase::kRequest, Phase::kResponse, std::string(reason));
  if (idle_upstream_) conn_.services().upstreams.Release(std::move(idle_upstream_), reason);
}

}  // namespace mitmd::proxy
