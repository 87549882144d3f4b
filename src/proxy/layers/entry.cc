#include "proxy/layers/entry.h"

#include <cstdio>

#include "core/strings.h"
#include "proxy/error_page.h"
#include "proxy/layers/client_tls.h"
#include "proxy/layers/detect.h"
#include "proxy/layers/http_layer.h"
#include "proxy/layers/proxy_tls.h"
#include "proxy/layers/socks5.h"

namespace mitmd::proxy {
namespace {

constexpr uint8_t kSocks4 = 0x04;
constexpr uint8_t kSocks5 = 0x05;
constexpr uint8_t kTlsHandshakeRecord = 0x16;
// SOCKS4's "request rejected or failed" reply (version byte 0, code 91, port and address 0).
constexpr char kSocks4Rejected[] = {0x00, 0x5b, 0, 0, 0, 0, 0, 0};

// Records why the connection cannot be served, sends |reply| (the refusal in the client's own
// protocol, may be empty), and closes.
class RefusedEntry : public Layer {
 public:
  RefusedEntry(ConnectionHandler& conn, std::string entry, std::string message,
               std::optional<HostPort> target, std::string reply = {})
      : Layer(conn), entry_(std::move(entry)), message_(std::move(message)),
        target_(std::move(target)), reply_(std::move(reply)) {}

  std::string_view name() const override { return "refused"; }
  void Start() override {
    auto flow = conn_.NewFlow();
    flow->entry = entry_;
    if (target_) {
      flow->server_host = target_->host;
      flow->server_port = target_->port;
    }
    flow->error = FlowError{std::string(ToString(Phase::kProxyRequest)), message_};
    conn_.Log(LogLevel::kInfo, "flow failed", {{"phase", "proxy_request"}, {"error", message_}});
    conn_.Record(std::move(flow));
    if (!reply_.empty()) conn_.client().Write(reply_);
    conn_.Close(message_);
  }
  void OnClientEvent(WireEvent) override {}

 private:
  const std::string entry_;
  const std::string message_;
  const std::optional<HostPort> target_;
  const std::string reply_;
};

std::unique_ptr<Layer> TransparentEntry(ConnectionHandler& conn, const EntryFacts& facts) {
  if (!facts.original_destination) {
    return std::make_unique<RefusedEntry>(
        conn, "transparent",
        StrCat("transparent mode: the connection's original destination is unknown (",
               facts.original_destination.error().message,
               "); redirect traffic to mitmd with iptables/nftables REDIRECT (see "
               "tools/mitmd-transparent)"),
        std::nullopt);
  }
  const HostPort& dst = *facts.original_destination;
  bool to_listener = dst.port == facts.listener.port &&
                     (dst.host == facts.listener.host || IsLoopbackHost(dst.host));
  if (to_listener) {
    return std::make_unique<RefusedEntry>(
        conn, "transparent",
        StrCat("transparent mode: this connection was not redirected (it was made to mitmd's "
               "transparent port ", facts.listener.ToString(),
               " itself); point clients at their servers and redirect them with "
               "tools/mitmd-transparent, or use a regular --mode for explicit proxying"),
        dst);
  }
  Target target;
  target.host = dst.host;
  target.port = dst.port;
  if (auto refusal = conn.services().hooks.CheckTarget(target)) {
    return std::make_unique<RefusedEntry>(conn, "transparent", refusal->message, dst);
  }
  conn.set_entry("transparent");
  conn.ctx().connections.SetTarget(conn.id(), dst.host, dst.port);
  return std::make_unique<Detect>(conn, dst.host, dst.port);
}

}  // namespace

std::unique_ptr<Layer> EntryLayerFor(ConnectionHandler& conn, const EntryFacts& facts) {
  switch (facts.mode.kind) {
    case ProxyMode::Kind::kRegular:
    case ProxyMode::Kind::kUpstream:
      return std::make_unique<ProxyEntry>(conn);
    case ProxyMode::Kind::kReverse:
      return std::make_unique<ReverseEntry>(conn, facts.mode);
    case ProxyMode::Kind::kTransparent:
      return TransparentEntry(conn, facts);
  }
  return std::make_unique<ProxyEntry>(conn);
}

void ProxyEntry::Start() {
  if (evbuffer_get_length(conn_.client().input()) > 0) Decide();
}

void ProxyEntry::OnClientEvent(WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
      Decide();
      return;
    case WireEvent::kEof:
      conn_.Close("client closed");
      return;
    case WireEvent::kError:
      conn_.Close(conn_.client().error());
      return;
    default:
      return;
  }
}

void ProxyEntry::Decide() {
  uint8_t first;
  if (evbuffer_copyout(conn_.client().input(), &first, 1) != 1) return;
  if (first == kSocks5) {
    conn_.HandOff(std::make_unique<Socks5Layer>(conn_));
    return;
  }
  if (first == kTlsHandshakeRecord) {
    conn_.HandOff(std::make_unique<ProxyTlsLayer>(conn_));
    return;
  }
  if (first == kSocks4) {
    conn_.HandOff(std::make_unique<RefusedEntry>(
        conn_, "socks4",
        "the client spoke SOCKS4, which mitmd does not support: use SOCKS5 (curl "
        "--socks5-hostname, socks5h:// in Python, --proxy-server=socks5:// in Chromium)",
        std::nullopt, std::string(kSocks4Rejected, sizeof(kSocks4Rejected))));
    return;
  }
  // A method's first letter, or the empty lines HTTP lets a client send before its request.
  bool http = (first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') ||
              first == '\r' || first == '\n';
  if (!http) {
    // No HTTP request starts like this, and the parser would wait for a line end that a client
    // speaking something else may never send.
    char hex[5];
    std::snprintf(hex, sizeof(hex), "0x%02x", first);
    std::string message = StrCat(
        "unrecognised protocol on the proxy port (first byte ", hex,
        "): mitmd speaks HTTP proxy requests, SOCKS5 and TLS (HTTPS proxy) here");
    std::string page = Encode(ErrorPage(400, message));
    conn_.HandOff(std::make_unique<RefusedEntry>(conn_, "", std::move(message), std::nullopt,
                                                 std::move(page)));
    return;
  }
  conn_.HandOff(std::make_unique<HttpLayer>(conn_, HttpLayer::Mode::kProxy));
}

}  // namespace mitmd::proxy

namespace mitmd::proxy {

void ReverseEntry::Start() {
  conn_.set_entry("reverse");
  conn_.ctx().connections.SetTarget(conn_.id(), mode_.host, mode_.port);
  if (evbuffer_get_length(conn_.client().input()) > 0) Decide();
}

void ReverseEntry::OnClientEvent(WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
      Decide();
      return;
    case WireEvent::kEof:
      conn_.Close("client closed");
      return;
    case WireEvent::kError:
      conn_.Close(conn_.client().error());
      return;
    default:
      return;
  }
}

void ReverseEntry::Decide() {
  uint8_t first;
  if (evbuffer_copyout(conn_.client().input(), &first, 1) != 1) return;
  if (first == kTlsHandshakeRecord) {
    if (mode_.scheme != "https") {
      conn_.HandOff(std::make_unique<RefusedEntry>(
          conn_, "reverse",
          StrCat("reverse mode ", mode_.Describe(), ": the client spoke TLS, but the server is "
                 "plain HTTP; use reverse:https://… for a TLS server, or plain http:// towards "
                 "mitmd"),
          HostPort{mode_.host, mode_.port}));
      return;
    }
    conn_.HandOff(std::make_unique<ClientTlsLayer>(conn_, mode_.host, mode_.port, mode_));
    return;
  }
  TunnelTarget target;
  target.host = mode_.host;
  target.port = mode_.port;
  target.key.host = mode_.host;
  target.key.port = mode_.port;
  target.key.tls = mode_.scheme == "https";
  if (target.key.tls) target.key.sni = mode_.host;
  target.key.insecure = conn_.ctx().config.insecure;
  if (conn_.ctx().config.rewrite_host) target.rewrite_host = mode_.Authority();
  conn_.HandOff(std::make_unique<HttpLayer>(conn_, std::move(target)));
}

}  // namespace mitmd::proxy
