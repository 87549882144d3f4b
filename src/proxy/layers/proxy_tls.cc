#include "proxy/layers/proxy_tls.h"

#include "core/strings.h"
#include "proxy/client_hello.h"
#include "proxy/layers/http_layer.h"

namespace mitmd::proxy {
namespace {

// "127.0.0.1:8080" -> "127.0.0.1", "[::1]:8080" -> "::1".
std::string HostOf(const std::string& address) {
  if (address.starts_with('[')) return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

}  // namespace

ProxyTlsLayer::ProxyTlsLayer(ConnectionHandler& conn) : Layer(conn) {
  timer_ = conn_.services().timers.New("proxy_tls", [this] {
    Fail(StrCat("the client did not complete the TLS handshake with mitmd (as an HTTPS proxy) "
                "within ",
                DurationText(conn_.ctx().config.handshake_timeout)));
  });
}

ProxyTlsLayer::~ProxyTlsLayer() {
  // The SSL outlives this layer: its callbacks must not find it. (Once the handshake is done
  // the client wire may be a TlsInTlsWire whose SSL belongs to another layer.)
  if (handshake_done_) return;
  if (SSL* ssl = conn_.client().ssl()) SSL_set_app_data(ssl, nullptr);
}

void ProxyTlsLayer::Start() {
  conn_.set_entry("https-proxy");
  timer_->Arm(conn_.ctx().config.handshake_timeout);
  // Sessions resume only into the same scope: the proxy itself, never a proxied server.
  conn_.client().StartTls(
      conn_.ctx().client_tls.NewSsl(this, StrCat("mitmd-proxy ", conn_.client().local_address())));
}

ssl_select_cert_result_t ProxyTlsLayer::OnClientHello(const SSL_CLIENT_HELLO* hello) {
  ClientHelloInfo info = ParseClientHello(hello);
  sni_ = info.sni;
  ca::LeafSpec spec;
  spec.sni = info.sni;
  spec.host = HostOf(conn_.client().local_address());
  auto leaf = conn_.ctx().ca.LeafFor(spec);
  if (!leaf) {
    conn_.Log(LogLevel::kWarn, "cannot mint the proxy's certificate",
              {{"error", leaf.error().message}});
    return ssl_select_cert_error;
  }
  std::vector<CRYPTO_BUFFER*> chain;
  for (const auto& c : (*leaf)->chain) chain.push_back(c.get());
  if (!SSL_set_chain_and_key(hello->ssl, chain.data(), chain.size(), (*leaf)->key.get(),
                             nullptr)) {
    return ssl_select_cert_error;
  }
  return ssl_select_cert_success;
}

std::optional<std::string> ProxyTlsLayer::ChooseAlpn(const std::vector<std::string>& offered) {
  // Proxy requests are HTTP/1.1.
  for (const std::string& p : offered) {
    if (p == "http/1.1") return p;
  }
  return "";
}

void ProxyTlsLayer::OnClientEvent(WireEvent event) {
  switch (event) {
    case WireEvent::kHandshakeDone: {
      timer_->Cancel();
      handshake_done_ = true;
      SSL_set_app_data(conn_.client().ssl(), nullptr);  // no callback comes after the handshake
      TlsInfo tls = conn_.client().DescribeTls();
      tls.sni = sni_;
      conn_.ctx().connections.SetTls(conn_.id(), tls);
      conn_.Log(LogLevel::kDebug, "https proxy", {{"sni", sni_}, {"version", tls.version}});
      conn_.HandOff(std::make_unique<HttpLayer>(conn_, HttpLayer::Mode::kProxy));
      return;
    }
    case WireEvent::kError: {
      // Clients report an untrusted proxy certificate in different ways (an alert, or a
      // connection torn mid-record), so the likely cause is named whatever the error.
      Fail(StrCat("the TLS handshake with mitmd as an HTTPS proxy failed (",
                  conn_.client().error(),
                  "): a client that does not trust mitmd's root as the proxy's CA fails this "
                  "way; give it the root (curl --proxy-cacert ~/.mitmd/mitmd-ca.pem)"));
      return;
    }
    case WireEvent::kEof:
      Fail("the client closed the connection during the TLS handshake with mitmd (as an HTTPS "
           "proxy): it most likely does not trust mitmd's root as the proxy's CA");
      return;
    default:
      return;
  }
}

void ProxyTlsLayer::OnClose(std::string_view) { timer_->Cancel(); }

void ProxyTlsLayer::Fail(const std::string& message) {
  timer_->Cancel();
  auto flow = conn_.NewFlow();
  flow->error = FlowError{std::string(ToString(Phase::kClientTls)), message};
  conn_.Log(LogLevel::kInfo, "flow failed", {{"phase", "client_tls"}, {"error", message}});
  conn_.Record(std::move(flow));
  conn_.Close(message);
}

}  // namespace mitmd::proxy
