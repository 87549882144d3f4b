// The Exchange's request side (from its head to the upstream connection it goes on) and its
// endings (recorded once, the connection handed back). The response side is in
// exchange_response.cc, rules and hold in exchange_rules.cc.

#include "proxy/exchange.h"

#include <charconv>

#include "core/strings.h"
#include "proxy/alpn_policy.h"
#include "proxy/upstream/h2_only_hosts.h"
#include "proxy/ws_recorder.h"

namespace mitmd::proxy {
namespace {

// Request bytes held while the upstream connection is being made, before reading pauses.
constexpr size_t kHeldLimit = 64 * 1024;

// The headers that address the proxy (or mitmd's replay): never forwarded, never recorded.
constexpr std::string_view kProxyHeaders[] = {"Proxy-Authorization", "Proxy-Connection",
                                              kReplayHeader};

}  // namespace

void Exchange::AddNote(Flow& flow, std::string_view text) {
  flow.note = flow.note.empty() ? std::string(text) : StrCat(flow.note, "; ", text);
}

HttpRequest RecordedRequest(const http::RequestHead& head) {
  HttpRequest req;
  req.method = head.method;
  req.target = WithoutUserinfo(head.target);
  req.version = head.version;
  req.headers = head.headers;
  for (std::string_view name : kProxyHeaders) RemoveHeader(req.headers, name);
  return req;
}

std::string_view ToString(Exchange::State state) {
  switch (state) {
    case Exchange::State::kConnecting: return "connecting";
    case Exchange::State::kForwarding: return "forwarding";
    case Exchange::State::kResponding: return "responding";
    case Exchange::State::kHeld: return "held";
    case Exchange::State::kDone: return "done";
  }
  return "unknown";
}

Exchange::Exchange(ExchangeHost& host, http::StreamId id, http::Request request, Target target,
                   UpstreamKey key)
    : host_(host),
      id_(id),
      request_(std::move(request)),
      target_(std::move(target)),
      key_(std::move(key)) {}

Exchange::~Exchange() {
  Unhold();
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    host_.conn().services().upstreams.Release(std::move(upstream_), "the exchange ended");
  }
}

void Exchange::Log(std::string_view message) const {
  // Checked before the fields are built: building them was a tenth of a small exchange's cost.
  if (!host_.conn().ctx().log.Enabled(LogLevel::kDebug)) return;
  host_.conn().Log(LogLevel::kDebug, message,
                    {{"stream", id_}, {"exchange", ToString(state_)},
                     {"flow", flow_ ? flow_->id : std::string()}});
}

void Exchange::Start() {
  ConnectionHandler& conn = host_.conn();
  flow_ = conn.NewFlow();
  ReplayMark replay = conn.services().hooks.ReadReplayMark(request_.head.headers);
  flow_->replay_of = std::move(replay.replay_of);
  if (!replay.flow_id.empty()) flow_->id = std::move(replay.flow_id);
  flow_->server_host = key_.host;
  flow_->server_port = key_.port;
  flow_->insecure = conn.ctx().config.insecure && key_.tls;
  flow_->timings.request_start = conn.ctx().now();
  if (host_.codec().protocol() == http::Protocol::kHttp2) flow_->stream_id = id_;
  flow_->timings.client_tls_end = host_.tunnel().client_tls_end;
  flow_->client_tls = host_.tunnel().client_tls;
  HttpRequest& req = flow_->request.emplace(RecordedRequest(request_.head));
  req.scheme = target_.scheme;
  req.host = target_.host;
  req.port = target_.port;
  req.path = target_.path;
  conn.ctx().connections.AddRequest(conn.id());

  // The proxy's own headers stop here; the raw head is rewritten only when something changed.
  size_t stripped = 0;
  for (std::string_view name : kProxyHeaders) stripped += RemoveHeader(request_.head.headers, name);
  // An authority-form target (a CONNECT relayed to a proxy behind a tunnel) has no path.
  bool retarget = !target_.path.empty() && request_.head.target != target_.path;
  if (stripped > 0 || retarget) {
    request_.raw = RewriteRequestHead(request_.raw, target_.path, kProxyHeaders);
    request_.head.target = target_.path;
  }
  rules_ = conn.services().hooks.Rules();
  if (!rules_->empty() && !host_.tunnel().upstream_error && ApplyRequestRules()) return;
  Log("request");
  Publish(/*throttled=*/false);
  if (host_.tunnel().upstream_error) return;  // answered with the error once the request is in
  if (request_buffer_.active) return;  // goes on once complete (ReleaseRequest)
  Connect();
}

void Exchange::Connect() {
  ConnectionHandler& conn = host_.conn();
  OfferH2IfLearned();
  std::unique_ptr<UpstreamConn> idle = host_.TakeIdleUpstream(key_);
  if (!idle) idle = conn.services().upstreams.TakeIdle(key_);
  if (idle) {
    Attach(std::move(idle), /*resume_client=*/false);
    return;
  }
  pending_connect_ = conn.services().upstreams.Connect(
      key_, conn.id(), [this](Upstreams::Outcome outcome) { OnConnected(std::move(outcome)); });
}

void Exchange::OnConnected(Upstreams::Outcome outcome) {
  pending_connect_.reset();
  if (outcome && h2_probe_) {
    auto [why, certain] = std::move(*h2_probe_);
    h2_probe_.reset();
    bool h2 = (*outcome)->tls && (*outcome)->tls->alpn == "h2";
    ConnectionHandler& conn = host_.conn();
    if (h2 && !certain) {
      if (H2OnlyHosts* learned = conn.services().upstreams.h2_only_hosts()) {
        learned->Remember(key_.host, key_.port, why, conn.ctx().now());
      }
    } else if (!h2) {
      // Not h2-only after all: the failure stands as it was.
      conn.services().upstreams.Release(std::move(*outcome), "the server did not choose h2");
      Fail(502, Phase::kResponse, h2_probe_failure_);
      return;
    }
  }
  if (!outcome) {
    flow_->server_cert = outcome.error().cert;
    Fail(502, outcome.error().phase, outcome.error().message);
    return;
  }
  Attach(std::move(*outcome), /*resume_client=*/true);
}

void Exchange::Attach(std::unique_ptr<UpstreamConn> upstream, bool resume_client) {
  upstream_ = std::move(upstream);
  upstream_->wire->set_observer(this);
  state_ = State::kForwarding;
  upstream_spoke_ = false;
  if (host_.codec().protocol() == http::Protocol::kHttp1 &&
      upstream_->codec->protocol() == http::Protocol::kHttp2) {
    ConnectionHandler& conn = host_.conn();
    H2OnlyHosts* learned = conn.services().upstreams.h2_only_hosts();
    if (const std::string* why =
            learned ? learned->Find(key_.host, key_.port, conn.ctx().now()) : nullptr) {
      AddNote(*flow_, StrCat("translated: HTTP/1.1 from the client, HTTP/2 to the server, which "
                             "speaks only HTTP/2 (", *why, ")"));
    }
  }
  http::Codec& out = *upstream_->codec;
  out.SendHead(id_, request_);
  if (raw_bodies()) {
    body_bytes_sent_ += held_raw_.size();
    if (!held_raw_.empty()) out.SendBodyRaw(id_, held_raw_);
  } else {
    body_bytes_sent_ += held_data_.size();
    if (!held_data_.empty()) out.SendData(id_, held_data_);
    if (request_done_ && request_trailers_) {
      out.SendTrailers(id_, flow_->request->trailers);
    } else if (request_done_) {
      out.SendEnd(id_);
    }
  }
  held_raw_ = std::string();
  held_data_ = std::string();
  ArmResponseTimer();
  Wire& client = host_.conn().client();
  if (!upstream_->codec->Writable(id_)) {
    client.SetReading(false);
  } else if (resume_client) {
    client.SetReading(true);
    host_.ReadClient();  // the rest of the request body
  }
}

bool Exchange::raw_bodies() const {
  return upstream_ && upstream_->codec->protocol() == http::Protocol::kHttp1 &&
         host_.codec().protocol() == http::Protocol::kHttp1;
}

void Exchange::LimitHeld() {
  if (held_raw_.size() + held_data_.size() > kHeldLimit) host_.conn().client().SetReading(false);
}

void Exchange::OnRequestBodyRaw(std::string_view raw) {
  if (host_.tunnel().upstream_error) return;
  if (request_buffer_.active) {
    BufferRequest(raw, {});
  } else if (!upstream_) {
    held_raw_.append(raw);
    LimitHeld();
  } else if (raw_bodies()) {
    body_bytes_sent_ += raw.size();
    upstream_->codec->SendBodyRaw(id_, raw);
    if (!upstream_->codec->Writable(id_)) host_.conn().client().SetReading(false);
  }
}

void Exchange::OnRequestData(std::string_view data) {
  if (flow_) flow_->request->body.Append(data.data(), data.size(), flow_->body_record_cap);
  if (host_.tunnel().upstream_error) return;
  if (request_buffer_.active) {
    BufferRequest({}, data);
  } else if (!upstream_) {
    held_data_.append(data);
    LimitHeld();
  } else if (!raw_bodies()) {
    body_bytes_sent_ += data.size();
    upstream_->codec->SendData(id_, data);
    if (!upstream_->codec->Writable(id_)) host_.conn().client().SetReading(false);
  }
}

void Exchange::OnRequestTrailers(const HeaderList& trailers) {
  request_trailers_ = true;
  if (!flow_) return;
  flow_->request->trailers = trailers;
  if (upstream_ && !raw_bodies()) upstream_->codec->SendTrailers(id_, trailers);
}

void Exchange::OnRequestEnd() {
  request_done_ = true;
  if (!flow_) return;
  if (upstream_ && !raw_bodies() && !request_trailers_) upstream_->codec->SendEnd(id_);
  ArmResponseTimer();
  flow_->timings.request_end = host_.conn().ctx().now();
  if (const auto& error = host_.tunnel().upstream_error) {
    // The upstream failed during the client's handshake: this request gets the explanation.
    flow_->server_cert = error->cert;
    Fail(502, error->phase, error->message,
         StrCat("mitmd could not reach ", key_.host, ":", key_.port, " for this request."));
    return;
  }
  if (request_buffer_.active) ReleaseRequest();
}

void Exchange::ArmResponseTimer() {
  auto timeout = host_.conn().ctx().config.response_timeout;
  if (timeout.count() > 0 && upstream_ && request_done_ && state_ == State::kForwarding) {
    // Made only when used: the option is off by default, and a timer per request costs an
    // allocation and a libevent event made and freed.
    if (!response_timer_) {
      response_timer_ = host_.conn().services().timers.New("response", [this, timeout] {
        Fail(504, Phase::kResponse,
             StrCat("the server did not answer within ", DurationText(timeout),
                    " (--response-timeout)"));
      });
    }
    response_timer_->Arm(timeout);
  }
}

void Exchange::OnRequestMalformed(const std::string& message) {
  if (state_ == State::kResponding) {
    Cut(Phase::kRequest, message);
    return;
  }
  Fail(400, Phase::kRequest, message);
}

void Exchange::OnClientDrained() {
  if (upstream_ && !upstream_->wire->reading() && host_.codec().Writable(id_)) {
    upstream_->wire->SetReading(true);
  }
}

void Exchange::Abort(Phase phase, const std::string& message) {
  Record(phase, message);
  pending_connect_.reset();
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    host_.conn().services().upstreams.Release(std::move(upstream_), message);
  }
}

// ---- Endings --------------------------------------------------------------------------------

void Exchange::Fail(int status, Phase phase, const std::string& message, std::string_view detail) {
  if (!flow_) return;
  host_.conn().Log(LogLevel::kInfo, "exchange failed",
                    {{"flow", flow_->id}, {"exchange", ToString(state_)},
                     {"phase", ToString(phase)}, {"error", message}});
  Unhold();
  if (state_ == State::kResponding && !response_buffer_.active) {
    Cut(phase, message);
    return;
  }
  std::unique_ptr<Flow> flow = std::move(flow_);
  FillUpstreamFacts(*flow);
  state_ = State::kDone;
  host_.RespondLocally(id_, std::move(flow), ErrorPage(status, message, detail), phase, message);
}

void Exchange::Cut(Phase phase, const std::string& message) {
  Record(phase, message);
  if (!host_.codec().Reset(id_, http::kResetInternalError)) {
    host_.conn().Close(message);
    return;
  }
  if (upstream_) {
    upstream_->wire->set_observer(nullptr);
    host_.conn().services().upstreams.Release(std::move(upstream_), message);
  }
  host_.OnExchangeDone(id_, nullptr, /*keep_alive=*/true, /*upgraded=*/false);  // may free this
}

void Exchange::Finish() {
  if (!request_done_ && flow_ && flow_->request) {
    // The server answered early (413, 401, ...): the client is not told to stop sending, so the
    // connection closes after the response, and the rest of the body never reaches the server.
    uint64_t received = flow_->request->body.size;
    uint64_t declared = 0;
    const std::string* length = FindHeader(request_.head.headers, "Content-Length");
    bool known = length && std::from_chars(length->data(), length->data() + length->size(),
                                           declared).ec == std::errc();
    AddNote(*flow_, StrCat("the server answered before the request was complete: ",
                           known ? StrCat(received, " of ", declared) : StrCat(received),
                           " bytes of its body had arrived; the rest was not forwarded"));
  }
  // A held response gave its upstream connection back already (EnterHeld).
  bool keep_alive = host_.codec().keep_alive() && request_done_ &&
                    (upstream_ ? upstream_->codec->keep_alive() : upstream_keep_alive_);
  bool upgraded = upstream_ && upstream_->codec->upgraded();
  if (upgraded && WsRecorder::IsWebSocketUpgrade(request_.head.headers, flow_->response->status,
                                                 flow_->response->headers)) {
    // A WebSocket: its flow stays live in the tunnel that relays it (TakeUpgradedFlow).
    FillUpstreamFacts(*flow_);
    upgraded_flow_ = std::move(flow_);
    state_ = State::kDone;
  } else {
    Record();
  }
  host_.conn().ReportBytes();
  if (upstream_) {
    ReportBytes(host_.conn().ctx().connections, *upstream_);
    upstream_->wire->set_observer(nullptr);
  }
  host_.OnExchangeDone(id_, std::move(upstream_), keep_alive, upgraded);  // may free this
}

void Exchange::FillUpstreamFacts(Flow& flow) const {
  if (!upstream_) return;
  flow.server_tls = upstream_->tls;
  if (upstream_->cert()) flow.server_cert = upstream_->cert();
  if (flow.server_addr.empty()) flow.server_addr = upstream_->addr;
  if (flow.upstream_conn_id == 0) flow.upstream_conn_id = upstream_->id;
  flow.timings.upstream_connect_start = upstream_->connect_start;
  flow.timings.upstream_connect_end = upstream_->connect_end;
  flow.timings.upstream_tls_end = upstream_->tls_end;
}

void Exchange::Record(std::optional<Phase> phase, const std::string& message) {
  if (!flow_) return;
  Unhold();
  std::unique_ptr<Flow> flow = std::move(flow_);
  if (phase && !flow->error) flow->error = FlowError{std::string(ToString(*phase)), message};
  FillUpstreamFacts(*flow);
  state_ = State::kDone;
  host_.conn().Record(std::move(flow));
}

}  // namespace mitmd::proxy
