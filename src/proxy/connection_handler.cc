#include "proxy/connection_handler.h"

#include "core/strings.h"
#include "proxy/layers/entry.h"

namespace mitmd::proxy {

ConnectionHandler::ConnectionHandler(ProxyContext& ctx, Services services,
                                     std::unique_ptr<Wire> client, std::string client_addr,
                                     Done done)
    : ctx_(ctx),
      services_(services),
      client_(std::move(client)),
      id_(ctx.connections.OpenClient(client_addr, client_->local_address())),
      client_addr_(std::move(client_addr)),
      done_(std::move(done)),
      accepted_at_(ctx.now()) {
  client_->set_observer(this);
  idle_timer_ = services_.timers.New("idle", [this] { OnIdleTimer(); });
  done_timer_ = services_.timers.New("done", [this] { done_(this); });  // deletes this
}

ConnectionHandler::~ConnectionHandler() {
  client_->set_observer(nullptr);
  // Layers go first: they hold timers and upstream connections that refer to this handler.
  layer_.reset();
  retired_.clear();
}

void ConnectionHandler::Log(LogLevel level, std::string_view message,
                            nlohmann::json fields) const {
  if (!ctx_.log.Enabled(level)) return;
  if (!fields.is_object()) fields = nlohmann::json::object();
  fields["conn"] = id_;
  fields["layer"] = layer_name();
  ctx_.log.Log(level, message, std::move(fields));
}

void ConnectionHandler::Start(std::unique_ptr<Layer> first) {
  Log(LogLevel::kDebug, "client connected", {{"client", client_addr_}});
  Touch();
  HandOff(first ? std::move(first) : std::make_unique<ProxyEntry>(*this));
}

void ConnectionHandler::WrapClient(
    const std::function<std::unique_ptr<Wire>(std::unique_ptr<Wire>)>& wrap) {
  client_->set_observer(nullptr);
  client_ = wrap(std::move(client_));
  client_->set_observer(this);
}

void ConnectionHandler::HandOff(std::unique_ptr<Layer> next) {
  if (closed_) return;
  retired_.push_back(std::move(layer_));
  layer_ = std::move(next);
  Log(LogLevel::kDebug, "layer");
  layer_->Start();
}

void ConnectionHandler::OnWireEvent(Wire&, WireEvent event) {
  if (closed_) return;
  Touch();
  if (event == WireEvent::kEof || event == WireEvent::kError) client_closed_first_ = true;
  layer_->OnClientEvent(event);
  if (!closed_) retired_.clear();  // no frame of a retired layer is left on the stack
}

void ConnectionHandler::Touch() {
  last_activity_ = ctx_.now();
  if (!idle_timer_->armed()) idle_timer_->Arm(ctx_.config.idle_timeout);
}

void ConnectionHandler::OnIdleTimer() {
  if (closed_) return;
  auto idle = ctx_.config.idle_timeout;
  double since = ctx_.now() - last_activity_;
  double limit = static_cast<double>(idle.count()) / 1000.0;
  if (since + 0.001 < limit) {
    idle_timer_->Arm(std::chrono::milliseconds(static_cast<int64_t>((limit - since) * 1000) + 1));
    return;
  }
  std::string message = StrCat("no traffic for ", DurationText(idle), " (idle timeout)");
  if (!layer_->OnIdle(message)) {
    last_activity_ = ctx_.now();
    idle_timer_->Arm(idle);
    return;
  }
  Close("idle timeout");
}

void ConnectionHandler::Shutdown() {
  if (closed_) return;
  layer_->OnShutdown();
  Close("mitmd is stopping");
}

std::unique_ptr<Flow> ConnectionHandler::NewFlow() const {
  auto f = std::make_unique<Flow>();
  f->id = NewFlowId();
  f->client_conn_id = id_;
  f->client_addr = client_addr_;
  f->body_record_cap = ctx_.config.max_body_record;
  f->timings.accepted = accepted_at_;
  f->entry = entry_;
  return f;
}

void ConnectionHandler::Publish(Flow& flow) {
  ++flow.revision;
  if (flow.state == FlowState::kHeld) {
    // The user edits a held flow: its bodies go with it (once; it does not change while held).
    ctx_.flows.Publish(std::make_shared<Flow>(flow));
    return;
  }
  std::string request_body, response_body;
  if (flow.request) request_body = std::exchange(flow.request->body.content, {});
  if (flow.response) response_body = std::exchange(flow.response->body.content, {});
  auto snapshot = std::make_shared<Flow>(flow);
  if (flow.request) flow.request->body.content = std::move(request_body);
  if (flow.response) flow.response->body.content = std::move(response_body);
  snapshot->state = FlowState::kLive;
  ctx_.flows.Publish(std::move(snapshot));
}

void ConnectionHandler::Record(std::unique_ptr<Flow> flow) {
  // A request over mitmd's TLS: this client trusts the root (evidence for auto-passthrough).
  if (flow->client_tls && flow->request) ctx_.passthrough.NoteAccepted(client_addr_, ctx_.now());
  flow->state = FlowState::kDone;
  ++flow->revision;
  if (ctx_.log.Enabled(LogLevel::kDebug)) {
    Log(LogLevel::kDebug, "flow recorded", {{"flow", flow->id}});  // fields built only then
  }
  ctx_.flows.Record(std::shared_ptr<const Flow>(std::move(flow)));
}

void ConnectionHandler::ReportBytes() {
  uint64_t in = client_->bytes_read(), out = client_->bytes_written();
  ctx_.connections.AddBytes(id_, in - bytes_in_reported_, out - bytes_out_reported_);
  bytes_in_reported_ = in;
  bytes_out_reported_ = out;
}

void ConnectionHandler::Close(std::string_view reason) {
  if (closed_) return;
  closed_ = true;
  Log(LogLevel::kDebug, "connection closed", {{"reason", reason}});
  if (layer_) layer_->OnClose(reason);
  idle_timer_->Cancel();
  ReportBytes();
  ctx_.connections.Close(id_, client_closed_first_ ? ClosedBy::kPeer : ClosedBy::kMitmd,
                         std::string(reason));
  client_->set_observer(nullptr);
  client_->Close(Wire::Linger::kClient);
  done_timer_->Arm(std::chrono::milliseconds(0));
}

}  // namespace mitmd::proxy
