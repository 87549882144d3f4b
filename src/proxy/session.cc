#include "proxy/session.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <openssl/base64.h>
#include <openssl/mem.h>

#include "core/strings.h"
#include "net/tls_errors.h"
#include "proxy/cert_info.h"
#include "proxy/error_page.h"
#include "proxy/request_target.h"

namespace mitmd::proxy {
namespace {

constexpr size_t kHighWater = 256 * 1024;   // pause the source when the sink holds this much
constexpr size_t kPendingLimit = 64 * 1024; // request bytes held while the upstream connects
constexpr size_t kMaxIovecs = 16;
constexpr std::string_view kCertHost = "mitmd.cert";  // answered by mitmd itself

std::string LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return net::SockaddrToString(reinterpret_cast<sockaddr*>(&ss));
}

// A client that completes the handshake and hangs up this fast without a request has most
// likely refused the certificate after checking a pin (curl --pinnedpubkey, pinned apps).
constexpr double kPinnedHangupSeconds = 1.0;

// The parts of a flow's request that come straight from the request head.
HttpRequest RequestFromHead(const http::RequestHead& head) {
  HttpRequest req;
  req.method = head.method;
  req.target = head.target;
  req.version = head.version;
  req.headers = head.headers;
  return req;
}

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

TlsInfo DescribeTls(const SSL* ssl) {
  TlsInfo t;
  t.version = net::TlsVersionName(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) t.cipher = SSL_CIPHER_standard_name(c);
  const uint8_t* alpn;
  unsigned alpn_len;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  t.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  return t;
}

std::string SecondsText(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return StrCat(ms.count() / 1000, " s");
  return StrCat(ms.count(), " ms");
}

// Feeds what |buf| holds to |parser| chunk by chunk, draining what it consumed. Stops at a
// message boundary (the parser stops there) or when |keep_going| turns false.
Status FeedParser(http::Parser& parser, evbuffer* buf, http::ParserEvents& events,
                  const std::function<bool()>& keep_going) {
  while (keep_going() && evbuffer_get_length(buf) > 0) {
    evbuffer_iovec vec[kMaxIovecs];
    int n = evbuffer_peek(buf, -1, nullptr, vec, kMaxIovecs);
    size_t consumed = 0;
    bool stopped = false;
    for (int i = 0; i < n && i < static_cast<int>(kMaxIovecs); ++i) {
      std::string_view chunk(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len);
      auto used = parser.Feed(chunk, events);
      if (!used) {
        evbuffer_drain(buf, consumed);
        return std::unexpected(used.error());
      }
      consumed += *used;
      if (*used < chunk.size() || !keep_going()) {
        stopped = true;
        break;
      }
    }
    evbuffer_drain(buf, consumed);
    if (stopped) return {};
  }
  return {};
}

}  // namespace

std::string_view ToString(Session::State state) {
  switch (state) {
    case Session::State::kProxyRequest: return "proxy_request";
    case Session::State::kDetect: return "detect";
    case Session::State::kClientHello: return "client_hello";
    case Session::State::kUpstreamConnect: return "upstream_connect";
    case Session::State::kUpstreamTls: return "upstream_tls";
    case Session::State::kClientHandshake: return "client_handshake";
    case Session::State::kHttp: return "http";
    case Session::State::kTunnel: return "tunnel";
    case Session::State::kClosed: return "closed";
  }
  return "unknown";
}

class Session::RequestEvents : public http::ParserEvents {
 public:
  explicit RequestEvents(Session* s) : s_(s) {}
  void OnRequestHead(const http::RequestHead& head, std::string_view raw) override {
    if (!s_->closed_) s_->OnRequestHead(head, raw);
  }
  void OnBodyRaw(std::string_view raw) override {
    if (!s_->closed_) s_->OnRequestBody(raw);
  }
  void OnBodyData(std::string_view data) override {
    if (!s_->closed_ && s_->flow_ && s_->flow_->request) {
      s_->flow_->request->body.Append(data.data(), data.size(), s_->ctx_.config.max_body_record);
    }
  }
  void OnTrailers(const HeaderList& trailers) override {
    if (s_->flow_ && s_->flow_->request) s_->flow_->request->trailers = trailers;
  }
  void OnMessageComplete() override {
    if (!s_->closed_) s_->OnRequestComplete();
  }

 private:
  Session* s_;
};

class Session::ResponseEvents : public http::ParserEvents {
 public:
  explicit ResponseEvents(Session* s) : s_(s) {}
  void OnResponseHead(const http::ResponseHead& head, std::string_view raw) override {
    if (!s_->closed_ && s_->flow_) s_->OnResponseHead(head, raw);
  }
  void OnBodyRaw(std::string_view raw) override {
    if (!s_->closed_ && s_->flow_) s_->OnResponseBody(raw);
  }
  void OnBodyData(std::string_view data) override {
    if (!s_->closed_ && s_->flow_ && s_->flow_->response) {
      s_->flow_->response->body.Append(data.data(), data.size(), s_->ctx_.config.max_body_record);
    }
  }
  void OnTrailers(const HeaderList& trailers) override {
    if (s_->flow_ && s_->flow_->response) s_->flow_->response->trailers = trailers;
  }
  void OnMessageComplete() override {
    if (!s_->closed_ && s_->flow_) s_->OnResponseComplete();
  }

 private:
  Session* s_;
};

Session::Session(ProxyContext& ctx, event_base* base, net::Dialer& dialer,
                 net::ConnGraveyard& graveyard, int client_fd, std::string client_addr,
                 DoneCallback done)
    : ctx_(ctx),
      base_(base),
      dialer_(dialer),
      graveyard_(graveyard),
      id_(ctx.connections.OpenClient(client_addr, LocalAddress(client_fd))),
      client_addr_(std::move(client_addr)),
      done_(std::move(done)),
      accepted_at_(ctx.now()) {
  client_ = std::make_unique<net::Conn>(base, client_fd, this);
  idle_timer_ = evtimer_new(base, IdleCb, this);
  handshake_timer_ = evtimer_new(base, HandshakeTimeoutCb, this);
  done_event_ = event_new(base, -1, 0, [](evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Session*>(arg);
    self->done_(self);  // deletes the session
  }, this);
  verification_.insecure = ctx.config.insecure;
}

Session::~Session() {
  if (client_) client_->set_delegate(nullptr);
  if (upstream_) upstream_->set_delegate(nullptr);
  event_free(idle_timer_);
  event_free(handshake_timer_);
  event_free(done_event_);
}

void Session::Log(LogLevel level, std::string_view message, nlohmann::json fields) const {
  if (!ctx_.log.Enabled(level)) return;
  if (!fields.is_object()) fields = nlohmann::json::object();
  fields["conn"] = id_;
  fields["state"] = ToString(state_);
  if (flow_) fields["flow"] = flow_->id;
  ctx_.log.Log(level, message, std::move(fields));
}

void Session::Start() {
  Log(LogLevel::kDebug, "client connected", {{"client", client_addr_}});
  Touch();
  if (evbuffer_get_length(client_->input()) > 0) ReadProxyRequest();
}

void Session::Touch() {
  last_activity_ = ctx_.now();
  if (!evtimer_pending(idle_timer_, nullptr)) {
    auto ms = ctx_.config.idle_timeout.count();
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    evtimer_add(idle_timer_, &tv);
  }
}

void Session::IdleCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Session*>(arg);
  double idle_s = static_cast<double>(self->ctx_.config.idle_timeout.count()) / 1000.0;
  double since = self->ctx_.now() - self->last_activity_;
  if (since + 0.001 < idle_s) {
    double left = idle_s - since;
    timeval tv{static_cast<time_t>(left), static_cast<suseconds_t>((left - static_cast<time_t>(left)) * 1e6)};
    evtimer_add(self->idle_timer_, &tv);
    return;
  }
  std::string message = StrCat("no traffic for ", SecondsText(self->ctx_.config.idle_timeout),
                               " (idle timeout)");
  if (self->flow_) self->RecordFailure(self->request_done_ ? "response" : "request", message);
  self->Close("idle timeout");
}

void Session::ArmHandshakeTimer() {
  auto ms = ctx_.config.handshake_timeout.count();
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(handshake_timer_, &tv);
}

void Session::HandshakeTimeoutCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Session*>(arg);
  std::string limit = SecondsText(self->ctx_.config.handshake_timeout);
  if (self->state_ == State::kUpstreamTls) {
    self->UpstreamFailed("upstream_tls",
        StrCat("timed out: ", self->target_host_, ":", self->target_port_,
               " did not complete the TLS handshake within ", limit));
  } else if (self->state_ == State::kClientHello || self->state_ == State::kClientHandshake) {
    self->RecordFailure("client_tls",
                        StrCat("the client did not complete the TLS handshake within ", limit));
    self->Close("client handshake timeout");
  }
}

void Session::OnConnEvent(net::Conn& conn, net::ConnEvent event) {
  if (closed_) return;
  Touch();
  if (&conn == client_.get()) {
    OnClientEvent(event);
  } else if (&conn == upstream_.get()) {
    OnUpstreamEvent(event);
  }
}

void Session::OnClientEvent(net::ConnEvent event) {
  switch (event) {
    case net::ConnEvent::kReadable:
      switch (state_) {
        case State::kProxyRequest: ReadProxyRequest(); break;
        case State::kDetect: DetectProtocol(); break;
        case State::kHttp: PumpClient(); break;
        case State::kTunnel: if (upstream_) PumpTunnel(*client_, *upstream_); break;
        default: break;  // held until the state that reads it
      }
      return;
    case net::ConnEvent::kDrained:
      if (upstream_ && !upstream_->reading() && client_->output_pending() <= kHighWater) {
        upstream_->SetReading(true);
      }
      return;
    case net::ConnEvent::kHandshakePaused:
      return;  // OnClientHello has started the upstream side
    case net::ConnEvent::kHandshakeDone:
      OnClientHandshakeDone();
      return;
    case net::ConnEvent::kEof:
      OnClientEof();
      return;
    case net::ConnEvent::kError:
      client_peer_closed_ = true;
      if (state_ == State::kClientHello || state_ == State::kClientHandshake ||
          state_ == State::kUpstreamConnect || state_ == State::kUpstreamTls) {
        std::string why = client_->error();
        bool rejected = why.find("alert") != std::string::npos;
        std::string message =
            rejected
                ? StrCat("the client rejected mitmd's certificate during the TLS handshake (",
                         why, "): the client does not trust mitmd's root, or pins the server's key")
                : StrCat("the client TLS handshake failed: ", why);
        if (rejected && ctx_.passthrough.RecordRejection(target_host_, why, ctx_.now())) {
          message += StrCat("; ", target_host_, " is tunnelled for now (auto-passthrough). If this "
                            "client should trust mitmd, install the root (tools/mitmd-trust, or "
                            "the viewer's /ca page), or run with --no-auto-passthrough");
        }
        RecordFailure("client_tls", message);
      } else if (flow_) {
        const char* phase = state_ == State::kTunnel ? "tunnel"
                            : request_done_          ? "response"
                                                     : "request";
        RecordFailure(phase, StrCat("client connection failed: ", client_->error()));
      }
      Close(client_->error());
      return;
  }
}

void Session::OnUpstreamEvent(net::ConnEvent event) {
  switch (event) {
    case net::ConnEvent::kReadable:
      if (state_ == State::kHttp) PumpUpstream();
      else if (state_ == State::kTunnel) PumpTunnel(*upstream_, *client_);
      return;
    case net::ConnEvent::kDrained:
      if (!client_->reading() && upstream_->output_pending() <= kHighWater) {
        client_->SetReading(true);
      }
      return;
    case net::ConnEvent::kHandshakePaused:
      return;
    case net::ConnEvent::kHandshakeDone:
      OnUpstreamHandshakeDone();
      return;
    case net::ConnEvent::kEof:
      OnUpstreamEof();
      return;
    case net::ConnEvent::kError:
      if (state_ == State::kUpstreamTls) {
        std::string message = verification_.done && !verification_.ok && !verification_.insecure
                                  ? verification_.message
                                  : UpstreamTlsFailure(upstream_->error());
        UpstreamFailed("upstream_tls", message);
      } else if (state_ == State::kTunnel) {
        Close(upstream_->error());
      } else if (!flow_) {
        DropIdleUpstream();
      } else if (!response_started_) {
        // TLS 1.3 servers refuse a missing client certificate only after the handshake.
        bool mtls = verification_.client_cert_requested;
        RespondError(502, mtls ? "upstream_tls" : "response",
                     mtls ? UpstreamTlsFailure(upstream_->error())
                          : StrCat("the upstream connection failed: ", upstream_->error()));
      } else {
        if (flow_) RecordFailure("response", StrCat("the upstream connection failed: ", upstream_->error()));
        Close(upstream_->error());
      }
      return;
  }
}

// ---- Proxy request -------------------------------------------------------------------------

void Session::ReadProxyRequest() {
  RequestEvents events(this);
  Status st = FeedParser(req_parser_, client_->input(), events,
                         [this] { return !closed_ && state_ == State::kProxyRequest; });
  if (closed_) return;
  if (!st) {
    RespondError(400, "proxy_request", StrCat("malformed proxy request: ", st.error().message));
    return;
  }
  if (connect_ready_) {
    connect_ready_ = false;
    client_->Write("HTTP/1.1 200 Connection established\r\n\r\n");
    req_parser_ = http::Parser(http::Parser::Kind::kRequest);
    ctx_.connections.SetTarget(id_, target_host_, target_port_);
    if (auto reason = PassthroughReason()) {
      // Tunnel untouched: no TLS termination, the flow records the bytes and why.
      note_ = std::move(*reason);
      Log(LogLevel::kDebug, "passthrough", {{"reason", note_}});
      state_ = State::kUpstreamConnect;
      client_->SetReading(false);
      ConnectUpstream();
      return;
    }
    state_ = State::kDetect;
    DetectProtocol();
  }
}

void Session::HandleProxyRequest(const http::RequestHead& head, std::string_view raw) {
  // Refusals are recorded with the request that caused them.
  auto reject = [&](int status, const std::string& message, std::string_view detail = {},
                    std::string_view extra_headers = {}) {
    flow_ = NewFlow();
    flow_->request = RequestFromHead(head);
    RespondErrorWith(status, "proxy_request", message, detail, extra_headers);
  };
  // Clients beyond loopback must prove they know the token.
  if (!ctx_.config.proxy_token.empty()) {
    const std::string* auth = FindHeader(head.headers, "Proxy-Authorization");
    bool ok = false;
    if (auth && auth->size() > 6 && EqualsIgnoreCase(auth->substr(0, 6), "Basic ")) {
      std::string decoded(auth->size(), '\0');
      size_t len = 0;
      std::string_view b64 = std::string_view(*auth).substr(6);
      if (EVP_DecodeBase64(reinterpret_cast<uint8_t*>(decoded.data()), &len, decoded.size(),
                           reinterpret_cast<const uint8_t*>(b64.data()), b64.size())) {
        decoded.resize(len);
        size_t colon = decoded.find(':');
        std::string_view password = colon == std::string::npos
                                        ? std::string_view(decoded)
                                        : std::string_view(decoded).substr(colon + 1);
        ok = password.size() == ctx_.config.proxy_token.size() &&
             CRYPTO_memcmp(password.data(), ctx_.config.proxy_token.data(), password.size()) == 0;
      }
    }
    if (!ok) {
      reject(407, "this mitmd listens beyond loopback and requires its proxy token",
                   "Send it as the proxy password, e.g. curl --proxy-user mitmd:TOKEN",
                   "Proxy-Authenticate: Basic realm=\"mitmd\"\r\n");
      return;
    }
    proxy_auth_strip_ = "Proxy-Authorization";
  }

  if (EqualsIgnoreCase(head.method, "CONNECT")) {
    auto target = ParseAuthorityForm(head.target);
    if (!target) {
      reject(400, target.error().message);
      return;
    }
    target_host_ = target->host;
    target_port_ = target->port;
    return;  // 200 is sent once the CONNECT message completes
  }
  if (!head.target.empty() && head.target[0] != '/' && head.target != "*" &&
      head.target.find("://") == std::string::npos) {
    reject(405, StrCat("method ", head.method, " with target '", head.target,
                        "' is not supported: only CONNECT takes a host:port target"),
                 {}, "Allow: CONNECT, GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n");
    return;
  }
  if (head.target.find("://") == std::string::npos) {
    reject(400, StrCat("'", head.method, " ", head.target,
                        "' was sent to mitmd itself: mitmd is a proxy; configure it as your HTTP "
                        "proxy (request absolute URLs, or CONNECT host:port)"));
    return;
  }
  auto target = ParseAbsoluteForm(head.target);
  if (!target) {
    reject(400, target.error().message);
    return;
  }
  if (target->scheme == "http" && EqualsIgnoreCase(target->host, kCertHost)) {
    ServeCertPage(head, *target);
    return;
  }
  plain_http_ = true;
  state_ = State::kHttp;
  OnRequestHead(head, raw);
}

void Session::ServeCertPage(const http::RequestHead& head, const Target& target) {
  flow_ = NewFlow();
  flow_->server_host = target.host;
  flow_->server_port = target.port;
  flow_->timings.request_start = ctx_.now();
  HttpRequest& req = flow_->request.emplace(RequestFromHead(head));
  req.scheme = target.scheme;
  req.host = target.host;
  req.port = target.port;
  req.path = target.path;
  std::string path = target.path.substr(0, target.path.find('?'));
  auto page = ctx_.cert_page ? ctx_.cert_page(path) : std::nullopt;
  if (!page) {
    RespondError(404, "proxy_request", StrCat("http://", kCertHost, " has nothing at ", path,
                                              " (try http://", kCertHost, "/)"));
    return;
  }
  HttpResponse& resp = flow_->response.emplace();
  resp.status = page->status;
  resp.reason = page->status == 200 ? "OK" : std::string(ReasonPhrase(page->status));
  resp.version = "HTTP/1.1";
  resp.headers = {{"Content-Type", page->content_type},
                  {"Content-Length", StrCat(page->body.size())},
                  {"Cache-Control", "no-store"},
                  {"Connection", "close"}};
  if (!page->filename.empty()) {
    resp.headers.emplace_back("Content-Disposition",
                              StrCat("attachment; filename=\"", page->filename, "\""));
  }
  std::string wire = StrCat("HTTP/1.1 ", resp.status, " ", resp.reason, "\r\n");
  for (const auto& [k, v] : resp.headers) wire += StrCat(k, ": ", v, "\r\n");
  wire += "\r\n";
  if (!EqualsIgnoreCase(head.method, "HEAD")) wire += page->body;
  resp.body.Append(page->body.data(), page->body.size(), ctx_.config.max_body_record);
  flow_->timings.request_end = flow_->timings.response_start = flow_->timings.response_end =
      ctx_.now();
  flow_->note = "served by mitmd itself";
  RecordFlow();
  client_->Write(wire);
  Close("served the root CA page");
}

std::optional<std::string> Session::PassthroughReason() const {
  if (auto reason = ctx_.passthrough.Reason(target_host_, target_port_, ctx_.now())) return reason;
  if (!ctx_.ca.InScope(target_host_)) {
    return StrCat("not intercepted: ", target_host_, " is outside the root CA's scope (",
                  ctx_.ca.scope_description(), ")");
  }
  return std::nullopt;
}

void Session::DetectProtocol() {
  uint8_t first;
  if (evbuffer_copyout(client_->input(), &first, 1) != 1) return;
  if (first == 0x16) {  // TLS handshake record
    StartClientTls();
    return;
  }
  // Not TLS: plain HTTP through the tunnel when it looks like a request line, else raw bytes.
  if (first >= 'A' && first <= 'Z') {
    plain_http_ = false;
    state_ = State::kHttp;
    PumpClient();
    return;
  }
  state_ = State::kUpstreamConnect;
  client_->SetReading(false);
  ConnectUpstream();
}

void Session::StartClientTls() {
  state_ = State::kClientHello;
  intercepting_ = true;
  upstream_tls_wanted_ = true;
  ArmHandshakeTimer();
  client_->StartTls(ctx_.client_tls.NewSsl(this, StrCat(target_host_, ":", target_port_)));
}

ssl_select_cert_result_t Session::OnClientHello(const SSL_CLIENT_HELLO* hello) {
  if (!hello_) {
    // First call: learn the names, connect upstream first, answer once we know the server.
    hello_ = ParseClientHello(hello);
    Log(LogLevel::kDebug, "client hello", {{"sni", hello_->sni}, {"alpn", hello_->alpn}});
    state_ = State::kUpstreamConnect;
    ConnectUpstream();
    return ssl_select_cert_retry;
  }
  if (!leaf_) return ssl_select_cert_retry;
  std::vector<CRYPTO_BUFFER*> chain;
  for (const auto& c : leaf_->chain) chain.push_back(c.get());
  if (!SSL_set_chain_and_key(hello->ssl, chain.data(), chain.size(), leaf_->key.get(), nullptr)) {
    return ssl_select_cert_error;
  }
  return ssl_select_cert_success;
}

std::string Session::ChooseAlpn(const std::vector<std::string>& offered) {
  // mitmd speaks HTTP/1.1 to clients; answer it when offered, whatever upstream chose.
  for (const std::string& p : offered) {
    if (p == "http/1.1") return p;
  }
  return "";
}

// ---- Upstream ------------------------------------------------------------------------------

void Session::ConnectUpstream() {
  upstream_connect_start_ = ctx_.now();
  dial_ = dialer_.Dial(target_host_, target_port_, ctx_.config.connect_timeout,
                       [this](std::expected<net::Dialed, net::DialError> r) {
                         OnDialed(std::move(r));
                       });
}

void Session::OnDialed(std::expected<net::Dialed, net::DialError> result) {
  dial_.reset();
  if (!result) {
    UpstreamFailed(std::string(net::ToString(result.error().phase)), result.error().message);
    return;
  }
  upstream_connect_end_ = ctx_.now();
  server_addr_ = result->addr_text;
  upstream_ = std::make_unique<net::Conn>(base_, result->fd, this);
  upstream_id_ = ctx_.connections.OpenUpstream(id_, target_host_, target_port_);
  ctx_.connections.SetAddresses(upstream_id_, server_addr_, LocalAddress(result->fd));
  upstream_requests_ = 0;
  upstream_peer_closed_ = false;
  Log(LogLevel::kDebug, "upstream connected", {{"addr", server_addr_}, {"upstream", upstream_id_}});
  if (upstream_tls_wanted_) {
    std::string sni = hello_ ? hello_->sni : (IsIpLiteral(target_host_) ? "" : target_host_);
    std::vector<std::string> alpn;
    if (hello_ && !hello_->alpn.empty()) alpn = {"http/1.1"};
    verification_ = UpstreamVerification{};
    verification_.insecure = ctx_.config.insecure;
    verification_.host = !sni.empty() ? sni : target_host_;
    state_ = State::kUpstreamTls;
    ArmHandshakeTimer();
    std::string cert_error;
    auto cred = ctx_.client_certs.For(verification_.host, &cert_error);
    if (!cert_error.empty()) Log(LogLevel::kWarn, "client certificate unusable", {{"error", cert_error}});
    upstream_->StartTls(ctx_.upstream_tls.NewSsl(sni, alpn, &verification_, cred.get()));
    return;
  }
  if (hello_ == std::nullopt && state_ == State::kUpstreamConnect && !plain_http_ && !flow_) {
    EnterTunnel();
    return;
  }
  state_ = State::kHttp;
  FlushPending();
}

void Session::OnUpstreamHandshakeDone() {
  evtimer_del(handshake_timer_);
  upstream_tls_end_ = ctx_.now();
  server_tls_info_ = DescribeTls(upstream_->ssl());
  server_tls_info_->sni = verification_.host;
  ctx_.connections.SetTls(upstream_id_, *server_tls_info_);
  if (!intercepting_ || client_->handshake_done()) {
    state_ = State::kHttp;  // a reconnect for a request that is waiting
    FlushPending();
    return;
  }
  ResumeClientHandshake();
}

void Session::ResumeClientHandshake() {
  ca::LeafSpec spec;
  spec.sni = hello_ ? hello_->sni : "";
  spec.host = target_host_;
  if (verification_.cert) {
    static constexpr std::string_view kCn = "CN=";
    const std::string& subject = verification_.cert->subject;
    if (size_t at = subject.find(kCn); at != std::string::npos) {
      size_t end = subject.find(',', at);
      spec.upstream_cn = subject.substr(at + kCn.size(), end == std::string::npos ? end : end - at - kCn.size());
    }
    for (const std::string& san : verification_.cert->sans) {
      if (san.starts_with("DNS:")) spec.upstream_dns.push_back(san.substr(4));
      if (san.starts_with("IP:")) spec.upstream_ips.push_back(san.substr(3));
    }
  }
  auto leaf = ctx_.ca.LeafFor(spec);
  if (!leaf) {
    RecordFailure("client_tls", StrCat("cannot mint a certificate: ", leaf.error().message));
    Close("leaf minting failed");
    return;
  }
  leaf_ = *leaf;
  state_ = State::kClientHandshake;
  ArmHandshakeTimer();
  client_->ContinueHandshake();
}

std::string Session::UpstreamTlsFailure(const std::string& tls_error) const {
  std::string where = StrCat(target_host_, ":", target_port_);
  if (verification_.client_cert_requested && verification_.client_cert_source.empty()) {
    return StrCat("the upstream server ", where, " requires a client certificate (mutual TLS) "
                  "and mitmd has none to present (", tls_error, "); give mitmd one with "
                  "--client-cert FILE or --client-cert-dir DIR (DIR/", verification_.host, ".pem)");
  }
  if (verification_.client_cert_requested) {
    return StrCat("the upstream server ", where, " rejected the client certificate mitmd "
                  "presented from ", verification_.client_cert_source, " (", tls_error, ")");
  }
  return StrCat("upstream TLS handshake with ", where, " failed: ", tls_error);
}

void Session::UpstreamFailed(std::string phase, std::string message) {
  evtimer_del(handshake_timer_);
  dial_.reset();
  if (upstream_) ReleaseUpstream(message);
  Log(LogLevel::kInfo, "upstream failed", {{"phase", phase}, {"error", message},
                                           {"host", target_host_}, {"port", target_port_}});
  upstream_error_ = FlowError{phase, message};
  if (intercepting_ && !client_->handshake_done()) {
    // Finish the client's handshake anyway, so it can read the 502 that explains.
    ResumeClientHandshake();
    return;
  }
  if (flow_ || state_ == State::kHttp) {
    state_ = State::kHttp;
    if (flow_) {
      RespondError(502, phase, message);
    }
    return;
  }
  // A raw tunnel that could not connect: nothing to answer with but the closing.
  RecordFailure(phase, message);
  Close(message);
}

void Session::OnClientHandshakeDone() {
  evtimer_del(handshake_timer_);
  client_tls_end_ = ctx_.now();
  client_tls_info_ = DescribeTls(client_->ssl());
  if (hello_) {
    client_tls_info_->sni = hello_->sni;
    client_tls_info_->alpn_offered = hello_->alpn;
  }
  ctx_.connections.SetTls(id_, *client_tls_info_);
  state_ = State::kHttp;
  PumpClient();
}

void Session::EnterTunnel() {
  state_ = State::kTunnel;
  client_->SetReading(true);
  if (!flow_) {
    flow_ = NewFlow();
    flow_->kind = Flow::Kind::kTunnel;
    flow_->note = note_;
    flow_->timings.request_start = ctx_.now();
  }
  PumpTunnel(*client_, *upstream_);
  if (!closed_ && upstream_) PumpTunnel(*upstream_, *client_);
}

void Session::PumpTunnel(net::Conn& from, net::Conn& to) {
  evbuffer* in = from.input();
  size_t len = evbuffer_get_length(in);
  if (len > 0) {
    if (flow_) (&from == client_.get() ? flow_->bytes_up : flow_->bytes_down) += len;
    evbuffer_iovec vec[kMaxIovecs];
    int n = evbuffer_peek(in, -1, nullptr, vec, kMaxIovecs);
    size_t moved = 0;
    for (int i = 0; i < n && i < static_cast<int>(kMaxIovecs); ++i) {
      to.Write(std::string_view(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len));
      moved += vec[i].iov_len;
    }
    evbuffer_drain(in, moved);
    if (to.output_pending() > kHighWater) from.SetReading(false);
  }
}

// ---- HTTP relay ----------------------------------------------------------------------------

void Session::PumpClient() {
  RequestEvents events(this);
  Status st = FeedParser(req_parser_, client_->input(), events, [this] {
    return !closed_ && state_ == State::kHttp && !(flow_ && request_done_);
  });
  if (!st) {
    if (flow_ && request_done_) return;
    if (response_started_) {
      RecordFailure("request", StrCat("malformed request: ", st.error().message));
      Close("malformed request");
      return;
    }
    RespondError(400, "request", StrCat("malformed request: ", st.error().message));
    return;
  }
  if (!closed_ && flow_ && request_done_ && upstream_error_) {
    FlowError e = *upstream_error_;
    RespondError(502, e.phase, e.message,
                 StrCat("mitmd could not reach ", target_host_, ":", target_port_,
                        " for this request."));
  }
}

std::unique_ptr<Flow> Session::NewFlow() {
  auto f = std::make_unique<Flow>();
  f->id = NewFlowId();
  f->client_conn_id = id_;
  f->client_addr = client_addr_;
  f->server_host = target_host_;
  f->server_port = target_port_;
  f->insecure = ctx_.config.insecure && upstream_tls_wanted_;
  f->body_record_cap = ctx_.config.max_body_record;
  f->timings.accepted = accepted_at_;
  f->timings.client_tls_end = client_tls_end_;
  return f;
}

void Session::OnRequestHead(const http::RequestHead& head, std::string_view raw) {
  if (state_ == State::kProxyRequest) {
    HandleProxyRequest(head, raw);
    return;
  }
  flow_ = NewFlow();
  ++requests_seen_;
  ctx_.connections.AddRequest(id_);
  request_done_ = false;
  response_started_ = false;
  flow_->timings.request_start = ctx_.now();
  HttpRequest& req = flow_->request.emplace(RequestFromHead(head));

  std::string forward_target = head.target;
  if (plain_http_) {
    auto target = ParseAbsoluteForm(head.target);
    if (!target) {
      RespondError(400, "request", target.error().message);
      return;
    }
    req.scheme = target->scheme;
    req.host = target->host;
    req.port = target->port;
    req.path = target->path;
    forward_target = target->path;
    bool same = upstream_ && target->host == target_host_ && target->port == target_port_ &&
                (target->scheme == "https") == upstream_tls_wanted_;
    if (!same) {
      if (upstream_) ReleaseUpstream("the next request goes to another server");
      resp_parser_ = http::Parser(http::Parser::Kind::kResponse);
      target_host_ = target->host;
      target_port_ = target->port;
      upstream_tls_wanted_ = target->scheme == "https";
      flow_->server_host = target_host_;
      flow_->server_port = target_port_;
    }
  } else {
    req.scheme = intercepting_ ? "https" : "http";
    const std::string* host = FindHeader(head.headers, "Host");
    Target t = host ? ParseHostHeader(*host, target_port_) : Target{};
    req.host = t.host.empty() ? (hello_ && !hello_->sni.empty() ? hello_->sni : target_host_) : t.host;
    req.port = target_port_;
    req.path = head.target;
  }
  if (!upstream_error_) resp_parser_.ExpectResponseTo(head.method);

  if (upstream_error_) {
    // The upstream failed during the handshake: this request gets the explanation.
    return;
  }
  if (plain_http_ || !proxy_auth_strip_.empty()) {
    SendUpstream(RewriteRequestHead(raw, forward_target, plain_http_ ? proxy_auth_strip_ : ""));
  } else {
    SendUpstream(raw);
  }
  if (!upstream_ && !dial_) {
    state_ = State::kUpstreamConnect;
    ConnectUpstream();
    state_ = State::kHttp;
  }
}

void Session::OnRequestBody(std::string_view raw) {
  if (!upstream_error_) SendUpstream(raw);
}

void Session::OnRequestComplete() {
  if (!flow_) {
    // A CONNECT request has been read in full; ReadProxyRequest answers it after the parse.
    connect_ready_ = state_ == State::kProxyRequest && !target_host_.empty();
    return;
  }
  flow_->timings.request_end = ctx_.now();
  request_done_ = true;
}

void Session::SendUpstream(std::string_view data) {
  if (upstream_ && state_ == State::kHttp && (!upstream_tls_wanted_ || upstream_->handshake_done())) {
    upstream_->Write(data);
    if (upstream_->output_pending() > kHighWater) client_->SetReading(false);
    return;
  }
  pending_upstream_.append(data);
  if (pending_upstream_.size() > kPendingLimit) client_->SetReading(false);
}

void Session::FlushPending() {
  if (!pending_upstream_.empty() && upstream_) {
    upstream_->Write(pending_upstream_);
    pending_upstream_.clear();
    pending_upstream_.shrink_to_fit();
  }
  if (upstream_ && upstream_->output_pending() <= kHighWater) {
    client_->SetReading(true);
  }
  PumpClient();
}

void Session::SendClient(std::string_view data) {
  client_->Write(data);
  if (upstream_ && client_->output_pending() > kHighWater) upstream_->SetReading(false);
}

void Session::PumpUpstream() {
  if (!flow_) {
    // Bytes from upstream with no request in flight: nothing can frame them.
    evbuffer_drain(upstream_->input(), evbuffer_get_length(upstream_->input()));
    ReleaseUpstream("the server sent bytes with no request in flight");
    return;
  }
  ResponseEvents events(this);
  Status st = FeedParser(resp_parser_, upstream_->input(), events,
                         [this] { return !closed_ && state_ == State::kHttp && flow_ && upstream_; });
  if (closed_) return;
  if (!st) {
    std::string message = StrCat("malformed response from upstream: ", st.error().message);
    if (!response_started_) {
      RespondError(502, "response", message);
    } else {
      RecordFailure("response", message);
      Close(message);
    }
    return;
  }
  if (response_done_) FinishExchange();
}

void Session::OnResponseHead(const http::ResponseHead& head, std::string_view raw) {
  if (head.status < 200 && head.status != 101) {
    flow_->response.emplace().informational.push_back(head.status);
    SendClient(raw);
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
  flow_->timings.response_start = ctx_.now();
  flow_->upstream_conn_id = upstream_id_;
  flow_->upstream_reused = ++upstream_requests_ > 1;  // the Nth response on this connection
  ctx_.connections.AddRequest(upstream_id_);
  flow_->server_addr = server_addr_;
  response_started_ = true;
  SendClient(raw);
}

void Session::OnResponseBody(std::string_view raw) { SendClient(raw); }

void Session::OnResponseComplete() {
  flow_->timings.response_end = ctx_.now();
  response_done_ = true;
}

void Session::FinishExchange() {
  bool keep_alive = req_parser_.keep_alive() && resp_parser_.keep_alive() && request_done_;
  bool upgraded = resp_parser_.upgraded();
  RecordFlow();
  ReportBytes();
  request_done_ = false;
  response_started_ = false;
  response_done_ = false;
  if (upgraded && upstream_) {
    state_ = State::kTunnel;
    PumpTunnel(*client_, *upstream_);
    if (!closed_ && upstream_) PumpTunnel(*upstream_, *client_);
    return;
  }
  if (!keep_alive) {
    Close("connection not kept alive");
    return;
  }
  if (!client_->reading() && upstream_ && upstream_->output_pending() <= kHighWater) {
    client_->SetReading(true);
  }
  PumpClient();
}

void Session::OnUpstreamEof() {
  upstream_peer_closed_ = true;
  if (state_ == State::kTunnel) {
    client_->ShutdownWrite();
    if (client_->eof()) Close("both sides closed");
    return;
  }
  if (flow_ && response_started_) {
    ResponseEvents events(this);
    Status st = resp_parser_.FeedEof(events);  // completes a close-delimited body
    if (!st && flow_) {
      RecordFailure("response", st.error().message);
      Close(st.error().message);
    } else if (response_done_) {
      FinishExchange();
    }
    return;
  }
  if (flow_) {
    RespondError(502, "response",
                 StrCat("the upstream server ", target_host_, ":", target_port_,
                        " closed the connection without responding"));
    return;
  }
  DropIdleUpstream();
}

void Session::DropIdleUpstream() {
  // An idle keep-alive connection the server closed (or broke): the next request reconnects.
  ReleaseUpstream("idle upstream closed");
  resp_parser_ = http::Parser(http::Parser::Kind::kResponse);
  if (!intercepting_ && !plain_http_) Close("upstream closed");
}

void Session::OnClientEof() {
  client_peer_closed_ = true;
  if (state_ == State::kTunnel) {
    if (upstream_) {
      upstream_->ShutdownWrite();
      if (upstream_->eof()) Close("both sides closed");
    } else {
      Close("client closed");
    }
    return;
  }
  if (state_ == State::kHttp && intercepting_ && !flow_ && requests_seen_ == 0 &&
      !upstream_error_ && ctx_.now() - client_tls_end_ < kPinnedHangupSeconds) {
    std::string message =
        "the client closed the connection right after the TLS handshake without sending a "
        "request: it most likely rejected mitmd's certificate (certificate or key pinning)";
    if (ctx_.passthrough.RecordRejection(target_host_, "closed right after the handshake",
                                         ctx_.now())) {
      message += StrCat("; ", target_host_, " is tunnelled from now on (auto-passthrough)");
    }
    RecordFailure("client_tls", message);
    Close("client hung up after the handshake");
    return;
  }
  // HTTP clients do not half-close: an end of input mid-exchange means the client gave up.
  if (flow_ && request_done_) {
    RecordFailure("response", "the client closed the connection before the response was complete");
  } else if (flow_) {
    RecordFailure("request", "the client closed the connection before the request was complete");
  } else if (upstream_error_ && state_ == State::kHttp) {
    RecordFailure(upstream_error_->phase, upstream_error_->message);
  }
  Close("client closed");
}

// ---- Endings -------------------------------------------------------------------------------

void Session::RespondError(int status, const std::string& phase, const std::string& message,
                           std::string_view detail) {
  RespondErrorWith(status, phase, message, detail, {});
}

void Session::RespondErrorWith(int status, const std::string& phase, const std::string& message,
                               std::string_view detail, std::string_view extra_headers) {
  Log(LogLevel::kInfo, "error response", {{"status", status}, {"phase", phase}, {"error", message}});
  std::string response = ErrorResponse(status, message, detail, extra_headers);
  if (!flow_) {
    flow_ = NewFlow();
  }
  HttpResponse& resp = flow_->response.emplace();
  resp.status = status;
  resp.reason = std::string(ReasonPhrase(status));
  resp.version = "HTTP/1.1";
  size_t head_end = response.find("\r\n\r\n");
  std::string_view head_text = std::string_view(response).substr(0, head_end);
  head_text.remove_prefix(head_text.find("\r\n") + 2);
  while (!head_text.empty()) {
    size_t eol = head_text.find("\r\n");
    std::string_view line = head_text.substr(0, eol);
    size_t colon = line.find(':');
    resp.headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
    if (eol == std::string_view::npos) break;
    head_text.remove_prefix(eol + 2);
  }
  std::string body = response.substr(head_end + 4);
  resp.body.Append(body.data(), body.size(), ctx_.config.max_body_record);
  flow_->timings.response_start = flow_->timings.response_end = ctx_.now();
  flow_->error = FlowError{phase, message};
  if (upstream_error_ && !flow_->server_cert) flow_->server_cert = verification_.cert;
  RecordFlow();
  client_->Write(response);
  Close(message);
}

void Session::RecordFailure(const std::string& phase, const std::string& message) {
  if (!flow_) flow_ = NewFlow();
  if (!flow_->error) flow_->error = FlowError{phase, message};
  Log(LogLevel::kInfo, "flow failed", {{"phase", phase}, {"error", message}});
  RecordFlow();
}

void Session::RecordFlow() {
  if (!flow_) return;
  Flow& f = *flow_;
  f.client_tls = client_tls_info_;
  f.server_tls = server_tls_info_;
  if (verification_.cert) f.server_cert = verification_.cert;
  if (f.server_addr.empty()) f.server_addr = server_addr_;
  if (f.server_host.empty()) f.server_host = target_host_;
  if (f.server_port == 0) f.server_port = target_port_;
  if (f.upstream_conn_id == 0 && upstream_) f.upstream_conn_id = upstream_id_;
  f.timings.upstream_connect_start = upstream_connect_start_;
  f.timings.upstream_connect_end = upstream_connect_end_;
  f.timings.upstream_tls_end = upstream_tls_end_;
  f.timings.client_tls_end = client_tls_end_;
  Log(LogLevel::kDebug, "flow recorded");
  ctx_.flows.Record(std::shared_ptr<const Flow>(std::move(flow_)));
  flow_.reset();
}

void Session::ReportBytes() {
  if (client_) {
    ctx_.connections.AddBytes(id_, client_->bytes_read() - client_bytes_reported_.first,
                              client_->bytes_written() - client_bytes_reported_.second);
    client_bytes_reported_ = {client_->bytes_read(), client_->bytes_written()};
  }
  if (upstream_) {
    ctx_.connections.AddBytes(upstream_id_, upstream_->bytes_read() - upstream_bytes_reported_.first,
                              upstream_->bytes_written() - upstream_bytes_reported_.second);
    upstream_bytes_reported_ = {upstream_->bytes_read(), upstream_->bytes_written()};
  }
}

void Session::ReleaseUpstream(const std::string& reason) {
  ReportBytes();
  ctx_.connections.Close(upstream_id_, upstream_peer_closed_ ? ClosedBy::kPeer : ClosedBy::kMitmd,
                         reason);
  upstream_bytes_reported_ = {0, 0};
  if (upstream_->ssl()) SSL_set_app_data(upstream_->ssl(), nullptr);
  upstream_->set_delegate(nullptr);
  graveyard_.Bury(std::move(upstream_), {1, 0});
}

void Session::Shutdown() {
  if (closed_) return;
  if (flow_) RecordFailure("shutdown", "mitmd stopped while this exchange was in flight");
  Close("mitmd is stopping");
}

void Session::Close(std::string_view reason) {
  if (closed_) return;
  if (flow_ && flow_->kind == Flow::Kind::kTunnel) {
    flow_->timings.response_end = ctx_.now();
    RecordFlow();
  }
  closed_ = true;
  Log(LogLevel::kDebug, "session closed", {{"reason", reason}});
  state_ = State::kClosed;
  evtimer_del(idle_timer_);
  evtimer_del(handshake_timer_);
  dial_.reset();
  if (upstream_) ReleaseUpstream(std::string(reason));
  if (client_) {
    ReportBytes();
    ctx_.connections.Close(id_, client_peer_closed_ ? ClosedBy::kPeer : ClosedBy::kMitmd,
                           std::string(reason));
    client_->set_delegate(nullptr);
    graveyard_.Bury(std::move(client_));
  }
  event_active(done_event_, EV_TIMEOUT, 0);
}

}  // namespace mitmd::proxy
