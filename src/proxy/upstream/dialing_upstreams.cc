#include "proxy/upstream/dialing_upstreams.h"

#include "core/strings.h"
#include "proxy/conn_wire.h"

namespace mitmd::proxy {

// One connection being made: dial, then (for TLS) the verified handshake.
class DialingUpstreams::Attempt : public Upstreams::Pending, public WireObserver {
 public:
  Attempt(DialingUpstreams& owner, const UpstreamKey& key, uint64_t client_id, Callback done)
      : o_(owner), key_(key), client_id_(client_id), done_(std::move(done)) {}

  ~Attempt() override {
    if (conn_) CloseUpstream(o_.ctx_.connections, *conn_, "the exchange that wanted it ended");
  }

  void Start() {
    connect_start_ = o_.ctx_.now();
    dial_ = o_.dialer_.Dial(key_.host, key_.port, o_.ctx_.config.connect_timeout,
                            [this](std::expected<net::Dialed, net::DialError> r) {
                              OnDialed(std::move(r));
                            });
  }

 private:
  void OnDialed(std::expected<net::Dialed, net::DialError> result) {
    dial_.reset();
    if (!result) {
      Finish(std::unexpected(UpstreamError{PhaseOf(result.error().phase), result.error().message}));
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
    if (!key_.tls) {
      Succeed();
      return;
    }
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
    conn_->codec = std::make_unique<http::H1Codec>(http::H1Codec::Side::kClient, *conn_->wire);
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
  std::unique_ptr<net::DialAttempt> dial_;
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
