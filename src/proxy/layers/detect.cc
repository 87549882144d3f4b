#include "proxy/layers/detect.h"

#include "core/strings.h"
#include "proxy/client_hello.h"
#include "proxy/layers/client_tls.h"
#include "proxy/layers/h2_layer.h"
#include "proxy/layers/http_layer.h"
#include "proxy/layers/tunnel.h"
#include "proxy/tls_in_tls_wire.h"

namespace mitmd::proxy {
namespace {

constexpr uint8_t kTlsHandshakeRecord = 0x16;
// What an HTTP/2 client with prior knowledge sends first (RFC 9113, 3.4): h2c in the tunnel.
constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// A ClientHello is read whole before deciding by its SNI; beyond this much it is left to the
// TLS library (post-quantum key shares make them a few KiB, never this large).
constexpr size_t kMaxPeek = 64 * 1024;

}  // namespace

std::optional<std::string> Detect::PassthroughReason(const std::string& name) const {
  ProxyContext& ctx = conn_.ctx();
  if (auto reason = ctx.passthrough.Reason(conn_.client_addr(), name, port_, ctx.now())) {
    return reason;
  }
  if (!ctx.ca.InScope(name)) {
    return StrCat("not intercepted: ", name, " is outside the root CA's scope (",
                  ctx.ca.scope_description(), ")");
  }
  return std::nullopt;
}

Detect::Detect(ConnectionHandler& conn, std::string host, uint16_t port)
    : Layer(conn), host_(std::move(host)), port_(port) {
  server_first_ = conn_.services().timers.New("server_first", [this] { DialForServerFirst(); });
}

Detect::~Detect() { DropServerFirst("the connection went on"); }

void Detect::OnClose(std::string_view reason) { DropServerFirst(reason); }

void Detect::DialForServerFirst() {
  UpstreamKey key;
  key.host = host_;
  key.port = port_;
  pending_ = conn_.services().upstreams.ConnectFresh(
      key, conn_.id(), [this](Upstreams::Outcome outcome) {
        pending_.reset();
        if (!outcome) return;  // the client may still speak; its layer reports failures
        upstream_ = std::move(*outcome);
        upstream_->wire->set_observer(this);
        if (evbuffer_get_length(upstream_->wire->input()) > 0) {
          OnWireEvent(*upstream_->wire, WireEvent::kReadable);
        }
      });
}

void Detect::OnWireEvent(Wire&, WireEvent event) {
  if (event == WireEvent::kReadable) {
    upstream_->wire->set_observer(nullptr);
    TunnelUntouched(StrCat("the server spoke first (the client sent nothing for ",
                           DurationText(kServerFirstAfter), " after CONNECT): relayed as a tunnel"),
                    std::move(upstream_));
  } else if (event == WireEvent::kEof || event == WireEvent::kError) {
    DropServerFirst("the server closed before anyone spoke");
  }
}

void Detect::DropServerFirst(std::string_view reason) {
  pending_.reset();
  if (!upstream_) return;
  upstream_->wire->set_observer(nullptr);
  conn_.services().upstreams.Release(std::move(upstream_), reason);
}

void Detect::Start() {
  if (auto reason = PassthroughReason(host_)) {
    TunnelUntouched(std::move(*reason));
    return;
  }
  if (evbuffer_get_length(conn_.client().input()) > 0) {
    Decide();
  } else {
    server_first_->Arm(kServerFirstAfter);
  }
}

void Detect::OnClientEvent(WireEvent event) {
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

void Detect::Decide() {
  server_first_->Cancel();
  DropServerFirst("the client spoke first");
  evbuffer* in = conn_.client().input();
  size_t available = evbuffer_get_length(in);
  uint8_t first;
  if (evbuffer_copyout(in, &first, 1) != 1) return;
  if (first == kTlsHandshakeRecord) {
    size_t peek = std::min(available, kMaxPeek);
    std::string_view bytes(reinterpret_cast<const char*>(evbuffer_pullup(in, peek)), peek);
    PeekedHello hello = PeekClientHello(bytes);
    if (hello.status == PeekedHello::Status::kNeedMore && available < kMaxPeek &&
        !conn_.client().peer_closed()) {
      return;
    }
    if (hello.status == PeekedHello::Status::kComplete && !hello.info.sni.empty() &&
        hello.info.sni != host_) {
      if (auto reason = PassthroughReason(hello.info.sni)) {
        TunnelUntouched(std::move(*reason));
        return;
      }
    }
    if (conn_.client().ssl()) {
      // The client reached mitmd as an HTTPS proxy: this TLS runs inside that one.
      Timers& timers = conn_.services().timers;
      conn_.WrapClient([&timers](std::unique_ptr<Wire> outer) -> std::unique_ptr<Wire> {
        return std::make_unique<TlsInTlsWire>(std::move(outer), timers);
      });
    }
    conn_.HandOff(std::make_unique<ClientTlsLayer>(conn_, host_, port_));
    return;
  }
  // Not TLS: plain HTTP through the tunnel when it looks like a request line (HTTP/2 when it
  // is the prior-knowledge preface), else raw bytes.
  if (first >= 'A' && first <= 'Z') {
    TunnelTarget target;
    target.host = host_;
    target.port = port_;
    target.key.host = host_;
    target.key.port = port_;
    target.key.insecure = conn_.ctx().config.insecure;
    size_t n = std::min(available, kH2Preface.size());
    std::string_view start(reinterpret_cast<const char*>(evbuffer_pullup(in, n)), n);
    if (start == kH2Preface.substr(0, n)) {
      if (n < kH2Preface.size() && !conn_.client().peer_closed()) return;  // wait for the rest
      if (n == kH2Preface.size()) {
        conn_.HandOff(std::make_unique<H2Layer>(conn_, std::move(target)));
        return;
      }
    }
    conn_.HandOff(std::make_unique<HttpLayer>(conn_, std::move(target)));
    return;
  }
  TunnelUntouched("");
}

void Detect::TunnelUntouched(std::string note, std::unique_ptr<UpstreamConn> upstream) {
  if (!note.empty()) conn_.Log(LogLevel::kDebug, "passthrough", {{"reason", note}});
  auto flow = conn_.NewFlow();
  flow->kind = Flow::Kind::kTunnel;
  flow->server_host = host_;
  flow->server_port = port_;
  flow->note = std::move(note);
  UpstreamKey key;
  key.host = host_;
  key.port = port_;
  conn_.HandOff(
      std::make_unique<Tunnel>(conn_, std::move(key), std::move(upstream), std::move(flow)));
}

}  // namespace mitmd::proxy
