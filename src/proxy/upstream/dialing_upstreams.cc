#include "proxy/upstream/dialing_upstreams.h"

#include "core/strings.h"
#include "http/h2_codec.h"
#include "proxy/conn_wire.h"
#include "proxy/socks5_client.h"
#include "proxy/tls_in_tls_wire.h"

namespace mitmd::proxy {

// One connection being made: dial, then (for TLS) the verified handshake. Through a next proxy,
// its steps come between: TLS to the proxy (https), then CONNECT (http, https) or the SOCKS5
// handshake (socks5).
class DialingUpstreams::Attempt : public Upstreams::Pending, public WireObserver {
 public:
  enum class Step { kDialing, kHopTls, kHopConnect, kHopSocks5, kServerTls };
  static std::string_view ToString(Step step) {
    switch (step) {
      case Step::kDialing: return "dialing";
      case Step::kHopTls: return "upstream_proxy_tls";
      case Step::kHopConnect: return "upstream_proxy_connect";
      case Step::kHopSocks5: return "upstream_proxy_socks5";
      case Step::kServerTls: return "server_tls";
    }
    return "unknown";
  }

  Attempt(DialingUpstreams& owner, const UpstreamKey& key, uint64_t client_id, Callback done)
      : o_(owner), key_(key), client_id_(client_id), done_(std::move(done)) {}

  ~Attempt() override {
    if (conn_) CloseUpstream(o_.ctx_.connections, *conn_, "the exchange that wanted it ended");
  }

  void Start() {
    connect_start_ = o_.ctx_.now();
    const ProxyMode* via = o_.via_;
    dial_ = o_.dialer_.Dial(via ? via->host : key_.host, via ? via->port : key_.port,
                            o_.ctx_.config.connect_timeout,
                            [this](std::expected<net::Dialed, net::DialError> r) {
                              OnDialed(std::move(r));
                            });
  }

 private:
  void OnDialed(std::expected<net::Dialed, net::DialError> result) {
    dial_.reset();
    if (!result) {
      std::string message = result.error().message;
      if (o_.via_) {
        message = StrCat("the upstream proxy ", HostPort{o_.via_->host, o_.via_->port}.ToString(),
                         " (", o_.via_->Describe(), "): ", message);
      }
      Finish(std::unexpected(UpstreamError{PhaseOf(result.error().phase), std::move(message)}));
      return;
    }
    ProxyContext& ctx = o_.ctx_;
    conn_ = std::make_unique<UpstreamConn>();
    conn_->key = key_;
    conn_->addr = result->addr_text;
    conn_->connect_start = connect_start_;
    conn_->connect_end = ctx.now();
    conn_->wire = std::make_unique<ConnWire>(o_.base_, result->fd, o_.graveyard_);
    conn_->id = ctx.connections.OpenUpstream(client_id_, key_.host, key_.port);
    ctx.connections.SetAddresses(conn_->id, conn_->addr, conn_->wire->local_address());
    ctx.log.Debug("upstream connected", {{"conn", client_id_}, {"upstream", conn_->id},
                                         {"addr", conn_->addr}});
    if (!o_.via_) {
      StartUpstreamTls();
    } else if (o_.via_->scheme == "https") {
      StartHopTls();
    } else if (o_.via_->scheme == "socks5") {
      StartSocks5();
    } else {
      SendConnect();
    }
  }

  void Enter(Step step) {
    step_ = step;
    o_.ctx_.log.Debug("upstream step", {{"conn", client_id_}, {"upstream", conn_->id},
                                        {"step", ToString(step)}});
  }

  // TLS to the next proxy itself, verified for its name like any server (the system CAs and
  // --upstream-proxy-ca), before CONNECT goes through it.
  void StartHopTls() {
    Enter(Step::kHopTls);
    hop_verification_ = std::make_unique<UpstreamVerification>();
    hop_verification_->host = o_.via_->host;
    hop_verification_->insecure = false;
    conn_->wire->set_observer(this);
    timer_ = o_.timers_.New("upstream_proxy_tls", [this] {
      FailConnect(StrCat("timed out: no TLS handshake with the upstream proxy within ",
                         DurationText(o_.ctx_.config.handshake_timeout)));
    });
    timer_->Arm(o_.ctx_.config.handshake_timeout);
    conn_->wire->StartTls(o_.hop_tls_->NewSsl(o_.via_->host, {"http/1.1"},
                                              hop_verification_.get()));
  }

  void OnHopTlsEvent(Wire& wire, WireEvent event) {
    switch (event) {
      case WireEvent::kHandshakeDone:
        // No verification callback runs after the handshake: the SSL stops pointing at state
        // this attempt owns.
        SSL_set_app_data(wire.ssl(), nullptr);
        timer_.reset();
        SendConnect();
        return;
      case WireEvent::kError: {
        const UpstreamVerification& v = *hop_verification_;
        FailConnect(v.done && !v.ok ? StrCat("its certificate: ", v.message)
                                    : StrCat("TLS to the upstream proxy failed: ", wire.error()));
        return;
      }
      case WireEvent::kEof:
        FailConnect("the upstream proxy closed the connection during the TLS handshake");
        return;
      default:
        return;
    }
  }

  // SOCKS5 to the next proxy: the server by name (the proxy resolves it).
  void StartSocks5() {
    Enter(Step::kHopSocks5);
    socks_ = std::make_unique<Socks5Client>(key_.host, key_.port, o_.via_->user,
                                            o_.via_->password);
    conn_->wire->set_observer(this);
    timer_ = o_.timers_.New("upstream_proxy_socks5", [this] {
      FailConnect(StrCat("timed out: the SOCKS5 proxy did not complete its handshake within ",
                         DurationText(o_.ctx_.config.handshake_timeout)));
    });
    timer_->Arm(o_.ctx_.config.handshake_timeout);
    conn_->wire->Write(socks_->Start());
  }

  void OnSocks5Readable() {
    evbuffer* in = conn_->wire->input();
    // Each SOCKS5 answer is a few bytes, never more than 262: one pull-up each time is cheap.
    size_t len = evbuffer_get_length(in);
    std::string_view bytes(reinterpret_cast<const char*>(evbuffer_pullup(in, -1)), len);
    auto step = socks_->Feed(bytes);
    if (!step) {
      FailConnect(StrCat("the SOCKS5 proxy: ", step.error().message));
      return;
    }
    evbuffer_drain(in, step->consumed);
    if (!step->send.empty()) conn_->wire->Write(step->send);
    if (socks_->state() != Socks5Client::State::kOpen) return;
    timer_.reset();
    conn_->wire->set_observer(nullptr);
    StartUpstreamTls();
  }

  // The next proxy: CONNECT to the server, then TLS to it through the tunnel.
  void SendConnect() {
    const ProxyMode& via = *o_.via_;
    std::string authority = key_.host.find(':') != std::string::npos
                                ? StrCat("[", key_.host, "]:", key_.port)
                                : StrCat(key_.host, ":", key_.port);
    std::string request = StrCat("CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n");
    if (!via.user.empty() || !via.password.empty()) {
      request += StrCat("Proxy-Authorization: Basic ",
                        Base64Encode(StrCat(via.user, ":", via.password)), "\r\n");
    }
    request += "\r\n";
    Enter(Step::kHopConnect);
    conn_->wire->set_observer(this);
    timer_ = o_.timers_.New("upstream_proxy_connect", [this] {
      FailConnect(StrCat("timed out: the upstream proxy did not answer CONNECT within ",
                         DurationText(o_.ctx_.config.handshake_timeout)));
    });
    timer_->Arm(o_.ctx_.config.handshake_timeout);
    conn_->wire->Write(request);
  }

  // The next proxy's answer to CONNECT: 2xx opens the tunnel; anything else is its error,
  // passed on as it said it.
  void OnConnectResponse() {
    constexpr size_t kMaxHead = 16 * 1024;
    evbuffer* in = conn_->wire->input();
    size_t len = evbuffer_get_length(in);
    std::string_view bytes(reinterpret_cast<const char*>(evbuffer_pullup(in, -1)), len);
    size_t end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (len > kMaxHead) FailConnect("the upstream proxy's answer to CONNECT has no end of head");
      return;
    }
    std::string_view line = bytes.substr(0, bytes.find("\r\n"));
    bool ok = line.starts_with("HTTP/1.") && line.size() >= 12 && line[9] == '2';
    if (!ok) {
      FailConnect(StrCat("the upstream proxy refused CONNECT ", key_.host, ":", key_.port, ": ",
                         line.substr(0, 200)));
      return;
    }
    evbuffer_drain(in, end + 4);
    timer_.reset();
    conn_->wire->set_observer(nullptr);
    if (o_.via_->scheme == "https" && key_.tls) {
      // The server's TLS runs inside the proxy's.
      conn_->wire = std::make_unique<TlsInTlsWire>(std::move(conn_->wire), o_.timers_);
    }
    StartUpstreamTls();
  }

  void FailConnect(std::string message) {
    std::string hop = StrCat("via ", o_.via_->Describe(), ": ");
    UpstreamError error{Phase::kConnect, hop + message, std::nullopt};
    CloseUpstream(o_.ctx_.connections, *conn_, error.message);
    conn_.reset();
    Finish(std::unexpected(std::move(error)));
  }

  void StartUpstreamTls() {
    ProxyContext& ctx = o_.ctx_;
    if (!key_.tls) {
      Succeed();
      return;
    }
    Enter(Step::kServerTls);
    conn_->verification = std::make_unique<UpstreamVerification>();
    UpstreamVerification& v = *conn_->verification;
    v.insecure = key_.insecure;
    v.host = key_.verify_host();
    std::string cert_error;
    auto cred = ctx.client_certs.For(v.host, &cert_error);
    if (!cert_error.empty()) {
      ctx.log.Warn("client certificate unusable", {{"conn", client_id_}, {"error", cert_error}});
    }
    conn_->wire->set_observer(this);
    timer_ = o_.timers_.New("upstream_handshake", [this] {
      Fail(StrCat("timed out: ", key_.host, ":", key_.port,
                  " did not complete the TLS handshake within ",
                  DurationText(o_.ctx_.config.handshake_timeout)));
    });
    timer_->Arm(ctx.config.handshake_timeout);
    conn_->wire->StartTls(ctx.upstream_tls.NewSsl(key_.sni, key_.alpn, &v, cred.get()));
  }

  void OnWireEvent(Wire& wire, WireEvent event) override {
    if (step_ == Step::kHopTls) {
      OnHopTlsEvent(wire, event);
      return;
    }
    if (step_ == Step::kHopConnect || step_ == Step::kHopSocks5) {
      if (event == WireEvent::kReadable) {
        if (step_ == Step::kHopConnect) {
          OnConnectResponse();
        } else {
          OnSocks5Readable();
        }
      } else if (event == WireEvent::kEof || event == WireEvent::kError) {
        FailConnect(event == WireEvent::kEof
                        ? StrCat("the upstream proxy closed the connection without answering ",
                                 step_ == Step::kHopConnect ? "CONNECT" : "the SOCKS5 handshake")
                        : StrCat("the connection to the upstream proxy failed: ", wire.error()));
      }
      return;
    }
    switch (event) {
      case WireEvent::kHandshakeDone: {
        conn_->tls_end = o_.ctx_.now();
        conn_->tls = wire.DescribeTls();
        conn_->tls->sni = conn_->verification->host;
        o_.ctx_.connections.SetTls(conn_->id, *conn_->tls);
        Succeed();
        return;
      }
      case WireEvent::kError: {
        const UpstreamVerification& v = *conn_->verification;
        Fail(v.done && !v.ok && !v.insecure ? v.message
                                            : UpstreamTlsFailure(key_, v, wire.error()));
        return;
      }
      case WireEvent::kEof:
        conn_->peer_closed = true;
        Fail(UpstreamTlsFailure(key_, *conn_->verification,
                                "the server closed the connection during the handshake"));
        return;
      default:
        return;
    }
  }

  void Fail(std::string message) {
    UpstreamError error{Phase::kUpstreamTls, std::move(message), conn_->cert()};
    CloseUpstream(o_.ctx_.connections, *conn_, error.message);
    conn_.reset();
    Finish(std::unexpected(std::move(error)));
  }

  void Succeed() {
    timer_.reset();
    conn_->wire->set_observer(nullptr);
    // The server's ALPN choice says which protocol the connection speaks.
    if (conn_->tls && (conn_->tls->alpn == "h2" || conn_->tls->alpn == "grpc-exp")) {
      conn_->codec = std::make_unique<http::H2Codec>(http::H2Codec::Side::kClient, *conn_->wire);
    } else {
      conn_->codec = std::make_unique<http::H1Codec>(http::H1Codec::Side::kClient, *conn_->wire);
    }
    Finish(std::move(conn_));
  }

  void Finish(Outcome outcome) {
    timer_.reset();
    Callback done = std::move(done_);
    done(std::move(outcome));  // may destroy this attempt: nothing after
  }

  DialingUpstreams& o_;
  UpstreamKey key_;
  uint64_t client_id_;
  Callback done_;
  double connect_start_ = 0;
  Step step_ = Step::kDialing;
  std::unique_ptr<net::DialAttempt> dial_;
  // The next proxy's certificate check; the outer SSL points here until its handshake ends, so
  // it is declared before (destroyed after) the connection.
  std::unique_ptr<UpstreamVerification> hop_verification_;
  std::unique_ptr<Socks5Client> socks_;
  std::unique_ptr<UpstreamConn> conn_;
  std::unique_ptr<Timer> timer_;
};

std::unique_ptr<Upstreams::Pending> DialingUpstreams::Connect(const UpstreamKey& key,
                                                              uint64_t client_id, Callback done) {
  auto attempt = std::make_unique<Attempt>(*this, key, client_id, std::move(done));
  attempt->Start();
  return attempt;
}

void DialingUpstreams::Release(std::unique_ptr<UpstreamConn> conn, std::string_view reason) {
  if (conn) CloseUpstream(ctx_.connections, *conn, reason);
}

}  // namespace mitmd::proxy
