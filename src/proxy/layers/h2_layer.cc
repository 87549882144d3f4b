#include "proxy/layers/h2_layer.h"

#include <openssl/base64.h>
#include <openssl/rand.h>

#include "core/strings.h"
#include "http/translate.h"
#include "proxy/alpn_policy.h"
#include "proxy/exchange.h"

namespace mitmd::proxy {
namespace {

// A Sec-WebSocket-Key: 16 random bytes in base64 (RFC 6455 section 4.1).
std::string NewWebSocketKey() {
  uint8_t nonce[16];
  RAND_bytes(nonce, sizeof nonce);
  char out[32];
  size_t n = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out), nonce, sizeof nonce);
  return std::string(out, n);
}

}  // namespace

H2Layer::H2Layer(ConnectionHandler& conn, TunnelTarget tunnel)
    : Layer(conn),
      tunnel_(std::move(tunnel)),
      codec_(http::H2Codec::Side::kServer, conn.client()) {
  reap_timer_ = conn_.services().timers.New("reap", [this] {
    reaped_.clear();
    reaped_websockets_.clear();
  });
  flush_timer_ = conn_.services().timers.New("h2_flush", [this] { codec_.Flush(); });
  codec_.set_on_deferred([this] { flush_timer_->Arm(std::chrono::milliseconds(0)); });
  idle_upstream_ = std::move(tunnel_.upstream);
}

H2Layer::~H2Layer() {
  exchanges_.clear();
  reaped_.clear();
  websockets_.clear();
  reaped_websockets_.clear();
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
  std::vector<http::StreamId> sockets;
  for (const auto& [id, ws] : websockets_) sockets.push_back(id);
  for (http::StreamId id : sockets) {
    if (H2WebSocket* ws = FindWebSocket(id)) ws->OnClientDrained();  // may end one
  }
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
    const std::string* protocol = http::ExtendedConnectProtocol(fields);
    if (protocol && EqualsIgnoreCase(*protocol, "websocket")) {
      OpenWebSocket(id, std::move(request));
      return;
    }
    auto flow = conn_.NewFlow();
    flow->stream_id = id;
    flow->request = RecordedRequest(request.head);
    std::string message =
        protocol ? StrCat("mitmd relays no protocol but websocket over an HTTP/2 CONNECT (",
                          *protocol, " was asked)")
                 : std::string("mitmd does not relay CONNECT inside HTTP/2");
    RespondLocally(id, std::move(flow), ErrorPage(501, message), Phase::kRequest, message);
    return;
  }
  Target target = TargetFor(request);
  RewriteHost(tunnel_, request, target);
  auto exchange =
      std::make_unique<Exchange>(*this, id, std::move(request), std::move(target), tunnel_.key);
  Exchange* ex = exchange.get();
  exchanges_[id] = std::move(exchange);
  ex->Start();
}

Target H2Layer::TargetFor(const http::Request& request) const {
  const HeaderList& fields = request.head.headers;
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
  const std::string* path = http::PseudoHeader(fields, ":path");
  target.path = path ? *path : request.head.target;
  return target;
}

void H2Layer::OpenWebSocket(http::StreamId id, http::Request&& request) {
  // Checked the same whichever way it goes upstream.
  if (auto upgrade = http::UpgradeForExtendedConnect(request.head, "checked"); !upgrade) {
    auto flow = conn_.NewFlow();
    flow->stream_id = id;
    flow->request = RecordedRequest(request.head);
    std::string message = StrCat("malformed WebSocket request: ", upgrade.error().message);
    RespondLocally(id, std::move(flow), ErrorPage(400, message), Phase::kRequest, message);
    return;
  }
  if (tunnel_.upstream_error || !tunnel_.key.tls || !OffersH2(tunnel_.key.alpn)) {
    // No HTTP/2 to be had upstream (or the Upgrade's exchange explains the failure).
    UpgradeWebSocket(id, std::move(request), {}, {});
    return;
  }
  // The server may speak HTTP/2 and allow extended CONNECT: the request goes to it as it is.
  Target target = TargetFor(request);
  RewriteHost(tunnel_, request, target);
  auto ws = std::make_unique<H2WebSocket>(
      *this, codec_, id, std::move(request), target, tunnel_.key,
      [this](http::StreamId done) { RetireWebSocket(done); },
      [this](http::StreamId done, http::Request connect, std::string early, std::string reason) {
        RetireWebSocket(done);
        UpgradeWebSocket(done, std::move(connect), std::move(early), std::move(reason));
      });
  H2WebSocket* relay = ws.get();
  websockets_[id] = std::move(ws);
  relay->Connect();
}

void H2Layer::UpgradeWebSocket(http::StreamId id, http::Request&& request, std::string early,
                               std::string why) {
  std::string key = NewWebSocketKey();
  auto upgrade = http::UpgradeForExtendedConnect(request.head, key);
  if (!upgrade) return;  // checked by OpenWebSocket
  Target target = TargetFor(request);
  RewriteHost(tunnel_, *upgrade, target);
  // The server gets the WebSocket as HTTP/1.1 Upgrade: an HTTP/1.1 connection of its own.
  UpstreamKey upstream_key = tunnel_.key;
  upstream_key.alpn = Http1Offer(upstream_key.alpn);
  ws_handshakes_[id] = WsHandshake{.key = std::move(key),
                                   .request = RecordedRequest(request.head),
                                   .early = std::move(early),
                                   .why = std::move(why)};
  auto exchange = std::make_unique<Exchange>(*this, id, std::move(*upgrade), std::move(target),
                                             std::move(upstream_key));
  Exchange* ex = exchange.get();
  exchanges_[id] = std::move(exchange);
  ex->Start();
  // The Upgrade request has no body; what the client sends on the stream is the socket's.
  if (Find(id) == ex) ex->OnRequestEnd();
}

void H2Layer::OnData(http::StreamId id, std::string_view data) {
  if (H2WebSocket* ws = FindWebSocket(id)) {
    ws->OnClientData(data);  // consumes as the server takes it
    return;
  }
  if (auto hs = ws_handshakes_.find(id); hs != ws_handshakes_.end()) {
    // Sent before the answer: kept for the socket, bounded by the stream's window.
    hs->second.early.append(data);
    return;
  }
  if (Exchange* ex = Find(id)) ex->OnRequestData(data);
  // The exchange holds or forwards what it got: the client may send as much again.
  codec_.Consume(id, data.size());
}

void H2Layer::OnTrailers(http::StreamId id, const HeaderList& trailers) {
  if (FindWebSocket(id) || ws_handshakes_.contains(id)) return;  // a socket has no trailers
  if (Exchange* ex = Find(id)) ex->OnRequestTrailers(trailers);
}

void H2Layer::OnEnd(http::StreamId id) {
  if (H2WebSocket* ws = FindWebSocket(id)) {
    ws->OnClientEnd();
    return;
  }
  if (ws_handshakes_.contains(id)) return;  // the request ended already
  if (Exchange* ex = Find(id)) ex->OnRequestEnd();
}

void H2Layer::OnStreamReset(http::StreamId id, uint32_t code, const std::string& message) {
  if (H2WebSocket* ws = FindWebSocket(id)) {
    ws->OnClientReset(code, message);
    return;
  }
  ws_handshakes_.erase(id);
  Exchange* ex = Find(id);
  if (!ex) return;
  std::string why = StrCat("the client ended the stream: ", message);
  ex->Abort(ex->request_done() ? Phase::kResponse : Phase::kRequest, why);
  Retire(id);
}

H2WebSocket* H2Layer::FindWebSocket(http::StreamId id) {
  auto it = websockets_.find(id);
  return it == websockets_.end() ? nullptr : it->second.get();
}

void H2Layer::RetireWebSocket(http::StreamId id) {
  auto it = websockets_.find(id);
  if (it == websockets_.end()) return;
  reaped_websockets_.push_back(std::move(it->second));
  websockets_.erase(it);
  reap_timer_->Arm(std::chrono::milliseconds(0));
}

void H2Layer::RelayWebSocket(http::StreamId id, std::unique_ptr<UpstreamConn> upstream,
                             std::unique_ptr<Flow> flow) {
  auto hs = ws_handshakes_.extract(id);
  WsHandshake& handshake = hs.mapped();
  // The HTTP/1.1 handshake's proof is mitmd's to check: the client never sees it.
  const std::string* accept = FindHeader(flow->response->headers, "Sec-WebSocket-Accept");
  if (!accept || *accept != http::WebSocketAccept(handshake.key)) {
    std::string message = "the server's 101 has no Sec-WebSocket-Accept matching mitmd's key";
    flow->error = FlowError{std::string(ToString(Phase::kResponse)), message};
    conn_.Log(LogLevel::kInfo, "websocket failed", {{"stream", id}, {"error", message}});
    conn_.Record(std::move(flow));
    codec_.Reset(id, http::kResetProtocolError);
    conn_.services().upstreams.Release(std::move(upstream), message);
    return;
  }
  // Recorded as the client asked (its extended CONNECT) and as the server answered (its 101).
  HttpRequest& req = *flow->request;
  req.method = handshake.request.method;
  req.target = handshake.request.target;
  req.version = handshake.request.version;
  req.headers = std::move(handshake.request.headers);
  AppendNote(*flow, StrCat("WebSocket over HTTP/2 (RFC 8441) from the client, relayed to "
                                  "the server as an HTTP/1.1 Upgrade",
                                  handshake.why.empty() ? "" : StrCat(" (", handshake.why, ")")));
  auto ws = std::make_unique<H2WebSocket>(conn_, codec_, id, std::move(upstream), std::move(flow),
                                          [this](http::StreamId done) { RetireWebSocket(done); });
  H2WebSocket* relay = ws.get();
  websockets_[id] = std::move(ws);
  relay->Start(std::move(handshake.early));
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
  // A WebSocket answered by mitmd (a 502) goes no further; why it was not sent over HTTP/2.
  if (auto hs = ws_handshakes_.find(id); hs != ws_handshakes_.end()) {
    if (!hs->second.why.empty()) {
      AppendNote(*flow, StrCat("WebSocket sent to the server as an HTTP/1.1 Upgrade: ",
                                      hs->second.why));
    }
    ws_handshakes_.erase(hs);
  }
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
  Exchange* ex = Find(id);
  std::unique_ptr<Flow> kept = upgraded && ex ? ex->TakeUpgradedFlow() : nullptr;
  Retire(id);
  if (kept && upstream && ws_handshakes_.contains(id)) {
    RelayWebSocket(id, std::move(upstream), std::move(kept));
    return;
  }
  ws_handshakes_.erase(id);  // refused: its answer went to the client as it was
  // Any other protocol switch has nothing to follow it on HTTP/2: recorded as it is.
  if (kept) conn_.Record(std::move(kept));
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
  ws_handshakes_.clear();
  std::vector<http::StreamId> sockets;
  for (const auto& [id, ws] : websockets_) sockets.push_back(id);
  for (http::StreamId id : sockets) {
    if (H2WebSocket* ws = FindWebSocket(id)) {
      ws->Abort(response_phase == Phase::kShutdown ? Phase::kShutdown : Phase::kTunnel, message);
    }
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
