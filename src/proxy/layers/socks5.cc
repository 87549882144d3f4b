#include "proxy/layers/socks5.h"

#include "core/address.h"
#include "core/strings.h"
#include "proxy/layers/detect.h"

namespace mitmd::proxy {

Socks5Layer::Socks5Layer(ConnectionHandler& conn)
    : Layer(conn),
      // A client --allow-clients vouches for needs no password, like on the HTTP proxy.
      handshake_(InNetworks(conn.ctx().config.allow_clients, conn.client_addr())
                     ? std::string()
                     : conn.ctx().config.proxy_token) {
  timer_ = conn_.services().timers.New("socks5_handshake", [this] {
    Refuse(StrCat("the SOCKS5 client did not complete its handshake within ",
                  DurationText(conn_.ctx().config.handshake_timeout), " (stopped in ",
                  Socks5Handshake::ToString(handshake_.state()), ")"));
  });
}

Socks5Layer::~Socks5Layer() = default;

void Socks5Layer::Start() {
  conn_.set_entry("socks5");
  timer_->Arm(conn_.ctx().config.handshake_timeout);
  Read();
}

void Socks5Layer::OnClientEvent(WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
      Read();
      return;
    case WireEvent::kEof:
      Refuse(StrCat("the SOCKS5 client closed the connection during its handshake (in ",
                    Socks5Handshake::ToString(handshake_.state()), ")"));
      return;
    case WireEvent::kError:
      Refuse(StrCat("the SOCKS5 client's connection failed: ", conn_.client().error()));
      return;
    default:
      return;
  }
}

void Socks5Layer::OnClose(std::string_view) { timer_->Cancel(); }

void Socks5Layer::Read() {
  evbuffer* in = conn_.client().input();
  size_t available = evbuffer_get_length(in);
  if (available == 0) return;
  std::string_view bytes(reinterpret_cast<const char*>(evbuffer_pullup(in, -1)), available);
  Socks5Handshake::Step step = handshake_.Feed(bytes);
  evbuffer_drain(in, step.consumed);
  if (!step.reply.empty()) conn_.client().Write(step.reply);
  if (!step.error.empty()) {
    Refuse(step.error);
    return;
  }
  if (step.target) OnTarget(*step.target);
}

void Socks5Layer::OnTarget(const Socks5Target& socks_target) {
  timer_->Cancel();
  conn_.Log(LogLevel::kDebug, "socks5 connect",
            {{"host", socks_target.host}, {"port", socks_target.port},
             {"user", handshake_.username()}});
  Target target;
  target.host = socks_target.host;
  target.port = socks_target.port;
  if (auto refusal = conn_.services().hooks.CheckTarget(target)) {
    conn_.client().Write(Socks5Handshake::Reply(Socks5Handshake::ReplyCode::kNotAllowed));
    Refuse(refusal->message, &socks_target);
    return;
  }
  conn_.client().Write(Socks5Handshake::Reply(Socks5Handshake::ReplyCode::kSucceeded));
  conn_.ctx().connections.SetTarget(conn_.id(), socks_target.host, socks_target.port);
  conn_.HandOff(std::make_unique<Detect>(conn_, socks_target.host, socks_target.port));
}

void Socks5Layer::Refuse(const std::string& message, const Socks5Target* target) {
  timer_->Cancel();
  auto flow = conn_.NewFlow();
  if (target) {
    flow->server_host = target->host;
    flow->server_port = target->port;
  }
  flow->error = FlowError{std::string(ToString(Phase::kProxyRequest)), message};
  conn_.Log(LogLevel::kInfo, "flow failed", {{"phase", "proxy_request"}, {"error", message}});
  conn_.Record(std::move(flow));
  conn_.Close(message);
}

}  // namespace mitmd::proxy
