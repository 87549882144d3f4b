#include "proxy/layers/client_tls.h"

#include "ca/server_certs.h"
#include "core/strings.h"
#include "proxy/layers/h2_layer.h"
#include "proxy/layers/http_layer.h"
#include "proxy/layers/tunnel.h"
#include "proxy/upstream/h2_only_hosts.h"

namespace mitmd::proxy {

std::string_view ClientTlsLayer::ToString(State state) {
  switch (state) {
    case State::kClientHello: return "client_hello";
    case State::kUpstream: return "upstream_connect";
    case State::kHandshake: return "client_handshake";
  }
  return "unknown";
}

ClientTlsLayer::ClientTlsLayer(ConnectionHandler& conn, std::string host, uint16_t port,
                               std::optional<ProxyMode> reverse)
    : Layer(conn), host_(std::move(host)), port_(port), reverse_(std::move(reverse)) {
  timer_ = conn_.services().timers.New("client_handshake", [this] {
    RecordFailure(StrCat("the client did not complete the TLS handshake within ",
                         DurationText(conn_.ctx().config.handshake_timeout)));
    conn_.Close("client handshake timeout");
  });
}

ClientTlsLayer::~ClientTlsLayer() {
  // The SSL outlives this layer: its callbacks must not find it.
  if (SSL* ssl = conn_.client().ssl()) SSL_set_app_data(ssl, nullptr);
  if (upstream_) conn_.services().upstreams.Release(std::move(upstream_), "handshake abandoned");
}

void ClientTlsLayer::Start() {
  timer_->Arm(conn_.ctx().config.handshake_timeout);
  conn_.client().StartTls(conn_.ctx().client_tls.NewSsl(this, StrCat(host_, ":", port_)));
}

ssl_select_cert_result_t ClientTlsLayer::OnClientHello(const SSL_CLIENT_HELLO* hello) {
  if (!hello_) {
    OnHello(ParseClientHello(hello));
    return ssl_select_cert_retry;
  }
  if (!leaf_) return ssl_select_cert_retry;
  // Version negotiation comes after this callback: the client gets no newer TLS than the
  // server spoke to mitmd.
  if (upstream_version_ != 0 && !SSL_set_max_proto_version(hello->ssl, upstream_version_)) {
    return ssl_select_cert_error;
  }
  std::vector<CRYPTO_BUFFER*> chain;
  for (const auto& c : leaf_->chain) chain.push_back(c.get());
  if (!SSL_set_chain_and_key(hello->ssl, chain.data(), chain.size(), leaf_->key.get(), nullptr)) {
    return ssl_select_cert_error;
  }
  return ssl_select_cert_success;
}

std::optional<std::string> ClientTlsLayer::ChooseAlpn(const std::vector<std::string>&) {
  // Decided when the upstream was known (the ClientHello's offer is the one in |hello_|).
  if (answer_.next == ClientAnswer::Next::kRefuse) return std::nullopt;
  return answer_.alpn;
}

void ClientTlsLayer::OnHello(ClientHelloInfo hello) {
  // Connect upstream first; answer the client once the server is known.
  conn_.Log(LogLevel::kDebug, "client hello", {{"sni", hello.sni}, {"alpn", hello.alpn}});
  hello_ = std::move(hello);
  key_.host = host_;
  key_.port = port_;
  key_.tls = true;
  key_.sni = reverse_ ? host_ : hello_->sni;
  H2OnlyHosts* h2_only = conn_.services().upstreams.h2_only_hosts();
  key_.alpn = UpstreamAlpnOffer(hello_->alpn, kProtocolSupport,
                                h2_only && h2_only->Find(host_, port_, conn_.ctx().now()));
  key_.insecure = conn_.ctx().config.insecure;
  state_ = State::kUpstream;
  timer_->Cancel();  // the upstream side has its own timeouts
  ConnectUpstream();
}

void ClientTlsLayer::ConnectUpstream() {
  pending_connect_ = conn_.services().upstreams.Connect(
      key_, conn_.id(), [this](Upstreams::Outcome outcome) { OnUpstream(std::move(outcome)); });
}

void ClientTlsLayer::OnUpstream(Upstreams::Outcome outcome) {
  pending_connect_.reset();
  if (!outcome && !h2_fallback_ && outcome.error().phase == Phase::kUpstreamTls &&
      RefusedForAlpn(outcome.error().message)) {
    // An HTTP/1 client's offer refused: a server that speaks only h2 (Go's, gRPC's) does so.
    std::vector<std::string> with_h2 = UpstreamAlpnOffer(hello_->alpn, kProtocolSupport, true);
    if (with_h2 != key_.alpn) {
      h2_fallback_ = StrCat("it refused the TLS handshake offering ", OfferText(key_.alpn),
                            " (no_application_protocol)");
      conn_.Log(LogLevel::kInfo, "upstream refused the HTTP/1 offer: offering h2",
                {{"error", outcome.error().message}, {"host", host_}, {"port", port_}});
      key_.alpn = std::move(with_h2);
      ConnectUpstream();
      return;
    }
  }
  if (!outcome) {
    conn_.Log(LogLevel::kInfo, "upstream failed",
              {{"phase", proxy::ToString(outcome.error().phase)},
               {"error", outcome.error().message}, {"host", host_}, {"port", port_}});
    // Finish the client's handshake anyway, so it can read the 502 that explains.
    upstream_error_ = std::move(outcome.error());
    answer_ = AnswerClient(hello_->alpn, UpstreamAlpn{.connected = false}, kProtocolSupport);
    ResumeHandshake(upstream_error_->cert);
    return;
  }
  upstream_ = std::move(*outcome);
  if (h2_fallback_ && upstream_->tls && upstream_->tls->alpn == "h2") {
    if (H2OnlyHosts* h2_only = conn_.services().upstreams.h2_only_hosts()) {
      h2_only->Remember(host_, port_, *h2_fallback_, conn_.ctx().now());
    }
  }
  if (SSL* ssl = upstream_->wire->ssl()) upstream_version_ = SSL_version(ssl);
  answer_ = AnswerClient(hello_->alpn,
                         UpstreamAlpn{.chosen = upstream_->tls ? upstream_->tls->alpn : ""},
                         kProtocolSupport);
  conn_.Log(LogLevel::kDebug, "application protocol",
            {{"next", proxy::ToString(answer_.next)}, {"alpn", answer_.alpn},
             {"translated", answer_.translated}});
  ResumeHandshake(upstream_->cert());
}

void ClientTlsLayer::ResumeHandshake(const std::optional<CertInfo>& upstream_cert) {
  ca::LeafSpec spec;
  spec.sni = hello_->sni;
  spec.host = host_;
  if (upstream_cert) {
    static constexpr std::string_view kCn = "CN=";
    const std::string& subject = upstream_cert->subject;
    if (size_t at = subject.find(kCn); at != std::string::npos) {
      size_t end = subject.find(',', at);
      spec.upstream_cn = subject.substr(
          at + kCn.size(), end == std::string::npos ? end : end - at - kCn.size());
    }
    for (const std::string& san : upstream_cert->sans) {
      if (san.starts_with("DNS:")) spec.upstream_dns.push_back(san.substr(4));
      if (san.starts_with("IP:")) spec.upstream_ips.push_back(san.substr(3));
    }
  }
  // A --cert for the name the client asked for wins over minting (reverse mode's usual case).
  std::shared_ptr<const ca::Leaf> leaf = ca::FindServerCert(
      conn_.ctx().config.server_certs, hello_->sni.empty() ? host_ : hello_->sni);
  if (!leaf) {
    auto minted = conn_.ctx().ca.LeafFor(spec);
    if (!minted) {
      RecordFailure(StrCat("cannot mint a certificate: ", minted.error().message));
      conn_.Close("leaf minting failed");
      return;
    }
    leaf = *minted;
  }
  leaf_ = std::move(leaf);
  state_ = State::kHandshake;
  timer_->Arm(conn_.ctx().config.handshake_timeout);
  conn_.client().ContinueHandshake();
}

void ClientTlsLayer::OnClientEvent(WireEvent event) {
  switch (event) {
    case WireEvent::kHandshakeDone:
      OnHandshakeDone();
      return;
    case WireEvent::kError:
      OnHandshakeFailed();
      return;
    case WireEvent::kEof:
      conn_.Close("client closed");
      return;
    default:
      return;  // bytes wait for the handshake; the pause is driven by OnClientHello
  }
}

void ClientTlsLayer::OnHandshakeDone() {
  timer_->Cancel();
  Wire& client = conn_.client();
  TunnelTarget target;
  target.host = host_;
  target.port = port_;
  target.key = key_;
  if (reverse_ && conn_.ctx().config.rewrite_host) target.rewrite_host = reverse_->Authority();
  target.client_tls_end = conn_.ctx().now();
  target.client_tls = client.DescribeTls();
  target.client_tls->sni = hello_->sni;
  target.client_tls->alpn_offered = hello_->alpn;
  conn_.ctx().connections.SetTls(conn_.id(), *target.client_tls);
  if (answer_.next == ClientAnswer::Next::kHttp2) {
    target.hello = std::move(hello_);
    target.upstream = std::move(upstream_);
    target.upstream_error = std::move(upstream_error_);
    conn_.HandOff(std::make_unique<H2Layer>(conn_, std::move(target)));
    return;
  }
  if (answer_.next == ClientAnswer::Next::kRaw) {
    RelayRaw();
    return;
  }
  target.hello = std::move(hello_);
  target.upstream = std::move(upstream_);
  target.upstream_error = std::move(upstream_error_);
  conn_.HandOff(std::make_unique<HttpLayer>(conn_, std::move(target)));
}

void ClientTlsLayer::RelayRaw() {
  Wire& client = conn_.client();
  auto flow = conn_.NewFlow();
  flow->kind = Flow::Kind::kTunnel;
  flow->server_host = host_;
  flow->server_port = port_;
  flow->client_tls = client.DescribeTls();
  flow->client_tls->sni = hello_->sni;
  flow->client_tls->alpn_offered = hello_->alpn;
  flow->timings.client_tls_end = conn_.ctx().now();
  flow->server_tls = upstream_->tls;
  flow->server_cert = upstream_->cert();
  flow->timings.upstream_tls_end = upstream_->tls_end;
  flow->note = StrCat("application protocol ", answer_.alpn,
                      ": mitmd does not parse it; the decrypted bytes are relayed as they are");
  UpstreamKey key = key_;
  conn_.HandOff(std::make_unique<Tunnel>(conn_, std::move(key), std::move(upstream_),
                                         std::move(flow)));
}

void ClientTlsLayer::OnHandshakeFailed() {
  if (answer_.next == ClientAnswer::Next::kRefuse) {
    if (upstream_error_) {
      RecordFailure(StrCat(upstream_error_->message, "; ", answer_.reason,
                           ": the client got a no_application_protocol alert"),
                    upstream_error_->phase);
    } else {
      RecordFailure(StrCat(answer_.reason, ": the client got a no_application_protocol alert"));
    }
    conn_.Close("no application protocol in common");
    return;
  }
  ProxyContext& ctx = conn_.ctx();
  std::string why = conn_.client().error();
  // A TLS 1.3 client's alert after it refused the certificate arrives under keys the server
  // has moved past: BoringSSL reports a record it cannot decrypt, not the alert.
  bool rejected = why.find("alert") != std::string::npos ||
                  why.find("bad record mac") != std::string::npos;
  std::string message =
      rejected ? StrCat("the client rejected mitmd's certificate during the TLS handshake (", why,
                        "): the client does not trust mitmd's root, or pins the server's key")
               : StrCat("the client TLS handshake failed: ", why);
  if (rejected) {
    auto verdict = ctx.passthrough.RecordRejection(
        conn_.client_addr(), host_, PassthroughPolicy::Evidence::kAlert, why,
        hello_ && PassthroughPolicy::OffersHttp(hello_->alpn), ctx.now());
    if (!verdict.message.empty()) message += StrCat("; ", verdict.message);
  }
  RecordFailure(message);
  conn_.Close(why);
}

void ClientTlsLayer::RecordFailure(const std::string& message, Phase phase) {
  auto flow = conn_.NewFlow();
  flow->server_host = host_;
  flow->server_port = port_;
  if (upstream_) {
    flow->server_tls = upstream_->tls;
    flow->server_cert = upstream_->cert();
    flow->server_addr = upstream_->addr;
    flow->upstream_conn_id = upstream_->id;
    flow->timings.upstream_connect_start = upstream_->connect_start;
    flow->timings.upstream_connect_end = upstream_->connect_end;
    flow->timings.upstream_tls_end = upstream_->tls_end;
  }
  if (upstream_error_) flow->server_cert = upstream_error_->cert;
  flow->error = FlowError{std::string(proxy::ToString(phase)), message};
  conn_.Log(LogLevel::kInfo, "flow failed", {{"phase", proxy::ToString(phase)}, {"error", message}});
  conn_.Record(std::move(flow));
}

void ClientTlsLayer::OnClose(std::string_view reason) {
  timer_->Cancel();
  pending_connect_.reset();
  if (upstream_) conn_.services().upstreams.Release(std::move(upstream_), reason);
}

}  // namespace mitmd::proxy
