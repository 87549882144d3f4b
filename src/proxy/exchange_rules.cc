// The Exchange's rules and hold: the rule set it took at its start applied to its request and
// response, messages buffered whole to rewrite or hold them, and the user's resume or kill.
// The rest of the Exchange is in exchange.cc and exchange_response.cc.

#include <algorithm>

#include "core/strings.h"
#include "http/body_decoder.h"
#include "http/status.h"
#include "proxy/exchange.h"
#include "rules/apply.h"

namespace mitmd::proxy {
namespace {

// Replaces a message's body: the headers then frame it by length, as nothing else can.
void SetBodyHeaders(HeaderList& headers, size_t size) {
  RemoveHeader(headers, "Transfer-Encoding");
  SetHeader(headers, "Content-Length", StrCat(size));
}

void RecordBody(BodyRecord& record, std::string_view body, size_t cap) {
  record = BodyRecord{};
  record.Append(body.data(), body.size(), cap);
}

// An HTTP/2 head carries its method and target in pseudo-headers too (recorded as they came):
// a change sets both, or the old values would go out.
void SetPseudoHeader(HeaderList& headers, std::string_view name, const std::string& value) {
  for (auto& [n, v] : headers) {
    if (n == name) v = value;
  }
}

// "https://a.test:8443/x" with the port left out when it is the scheme's default.
std::string Authority(const Target& t) {
  bool v6 = t.host.find(':') != std::string::npos;
  std::string host = v6 ? StrCat("[", t.host, "]") : t.host;
  bool default_port =
      (t.scheme == "https" && t.port == 443) || (t.scheme == "http" && t.port == 80);
  return default_port ? host : StrCat(host, ":", t.port);
}

}  // namespace

size_t Exchange::hold_max_body() const { return host_.conn().ctx().config.hold_max_body; }

bool Exchange::ApplyRequestRules() {
  const rules::RuleSet& set = *rules_;
  Flow& flow = *flow_;
  if (const rules::Rule* local = rules::FindMapLocal(set, flow)) {
    AnswerLocally(*local);
    return true;
  }
  std::vector<Modification>& mods = flow.modified_by;
  bool changed = false;
  if (set.Has(rules::RuleKind::kMapRemote)) {
    if (auto url = rules::MapRemote(set, flow, flow.request->Url(), mods)) {
      if (auto st = Retarget(*url); !st) {
        Fail(502, Phase::kProxyRequest, st.error().message);
        return true;
      }
      changed = true;
    }
  }
  if (set.Has(rules::RuleKind::kModifyHeaders)) {
    changed |= rules::ModifyHeaders(set, flow, rules::Side::kRequest, request_.head.headers, mods);
  }
  if (changed) {
    request_.raw.clear();
    flow.request->headers = request_.head.headers;
  }
  hold_request_ = set.HoldsRequest(flow);
  request_buffer_.active = hold_request_ || rules::WantsBody(set, flow);
  return false;
}

Status Exchange::Retarget(const std::string& url) {
  auto target = ParseAbsoluteForm(url);
  if (!target)
    return mitmd::Fail(StrCat("cannot send the request to '", url, "': ", target.error().message));
  if (auto refusal = host_.conn().services().hooks.CheckTarget(*target)) {
    return mitmd::Fail(refusal->message);
  }
  target_ = std::move(*target);
  key_.host = target_.host;
  key_.port = target_.port;
  key_.tls = target_.scheme == "https";
  key_.sni = key_.tls ? target_.host : std::string();
  request_.head.target = target_.path;
  if (FindHeader(request_.head.headers, "Host")) {
    SetHeader(request_.head.headers, "Host", Authority(target_));
  }
  SetPseudoHeader(request_.head.headers, ":scheme", target_.scheme);
  SetPseudoHeader(request_.head.headers, ":authority", Authority(target_));
  SetPseudoHeader(request_.head.headers, ":path", target_.path);
  request_.raw.clear();
  HttpRequest& req = *flow_->request;
  req.scheme = target_.scheme;
  req.host = target_.host;
  req.port = target_.port;
  req.path = target_.path;
  req.target = target_.path;
  req.headers = request_.head.headers;
  flow_->server_host = key_.host;
  flow_->server_port = key_.port;
  return {};
}

void Exchange::AnswerLocally(const rules::Rule& rule) {
  rules::LocalAnswer answer = rules::ServeLocal(rule, target_.path);
  LocalResponse response;
  response.status = answer.status;
  response.headers = {{"Content-Type", answer.content_type},
                      {"Content-Length", StrCat(answer.body.size())},
                      {"Cache-Control", "no-store"},
                      {"Connection", "close"}};
  response.body = std::move(answer.body);
  std::string note = answer.file.empty()
                         ? StrCat("map-local could not serve this request (", rule.Written(), ")")
                         : StrCat("answered by map-local from ", answer.file);
  flow_->modified_by.push_back(
      Modification{rule.Written(), "response", "", answer.file.empty() ? note : answer.file});
  flow_->timings.request_end = host_.conn().ctx().now();
  state_ = State::kDone;
  host_.RespondLocally(id_, std::move(flow_), response, std::nullopt, note,
                       EqualsIgnoreCase(request_.head.method, "HEAD"));
}

void Exchange::QueueUpstream(std::string raw, std::string data) {
  // Reading stays on (no LimitHeld): Connect may attach a kept upstream at once, which does
  // not resume the client, and what is queued is bounded by --hold-max-body.
  held_raw_.append(raw);
  held_data_.append(data);
}

void Exchange::BufferRequest(std::string_view raw, std::string_view data) {
  Buffer& b = request_buffer_;
  b.raw.append(raw);
  b.data.append(data);
  if (std::max(b.raw.size(), b.data.size()) <= hold_max_body()) return;
  // Too large to hold or rewrite: it streams on as it came.
  b.active = false;
  hold_request_ = false;
  flow_->note = StrCat("the request body is larger than --hold-max-body (", hold_max_body(),
                       " bytes): it went on without being held or rewritten");
  QueueUpstream(std::move(b.raw), std::move(b.data));
  request_buffer_ = Buffer{};
  Publish(/*throttled=*/false);
  Connect();
}

void Exchange::ReleaseRequest() {
  request_buffer_.active = false;
  Buffer& b = request_buffer_;
  if (rules::WantsBody(*rules_, *flow_) &&
      rules::ModifyBody(*rules_, *flow_, rules::Side::kRequest, b.data, flow_->modified_by)) {
    SetBodyHeaders(request_.head.headers, b.data.size());
    request_.raw.clear();
    flow_->request->headers = request_.head.headers;
    RecordBody(flow_->request->body, b.data, flow_->body_record_cap);
    b.raw = b.data;
  }
  if (hold_request_) {
    EnterHeld();  // the buffer waits with it: the user may replace the body
    return;
  }
  QueueUpstream(std::move(b.raw), std::move(b.data));
  request_buffer_ = Buffer{};
  Connect();
}

bool Exchange::ApplyResponseRules(http::Response& response) {
  const rules::RuleSet& set = *rules_;
  Flow& flow = *flow_;
  if (set.Has(rules::RuleKind::kModifyHeaders) &&
      rules::ModifyHeaders(set, flow, rules::Side::kResponse, response.head.headers,
                           flow.modified_by)) {
    response.raw.clear();
    flow.response->headers = response.head.headers;
  }
  hold_response_ = set.HoldsResponse(flow);
  if (!hold_response_ && !rules::WantsBody(set, flow)) return false;
  response_buffer_.active = true;
  response_raw_ = raw_bodies();
  response_ = std::move(response);
  return true;
}

void Exchange::BufferResponse(std::string_view raw, std::string_view data) {
  Buffer& b = response_buffer_;
  b.raw.append(raw);
  b.data.append(data);
  if (std::max(b.raw.size(), b.data.size()) <= hold_max_body()) return;
  hold_response_ = false;
  flow_->note = StrCat("the response body is larger than --hold-max-body (", hold_max_body(),
                       " bytes): it went on without being held or rewritten");
  http::Codec& out = host_.codec();
  out.SendHead(id_, response_);
  if (response_raw_) {
    out.SendBodyRaw(id_, b.raw);
  } else if (!b.data.empty()) {
    out.SendData(id_, b.data);
  }
  response_buffer_ = Buffer{};
  if (!out.Writable(id_)) upstream_->wire->SetReading(false);
}

void Exchange::ReleaseResponse() {
  if (rules::WantsBody(*rules_, *flow_)) {
    HeaderList& headers = response_.head.headers;
    const std::string* coding = FindHeader(headers, "Content-Encoding");
    auto decoded = DecodeBodyForHeaders(response_buffer_.data, headers, hold_max_body());
    if (!decoded || decoded->partial) {
      flow_->note = StrCat("modify-body left the response alone: its ",
                           coding ? *coding : std::string("encoded"), " body could not be decoded",
                           decoded ? std::string() : StrCat(" (", decoded.error().message, ")"));
    } else if (rules::ModifyBody(*rules_, *flow_, rules::Side::kResponse, decoded->data,
                                 flow_->modified_by)) {
      // Sent decoded: re-encoding would only hide the change from whoever reads the wire.
      if (coding) {
        flow_->modified_by.push_back(
            Modification{"modify-body", "response header Content-Encoding", *coding, ""});
        RemoveHeader(headers, "Content-Encoding");
      }
      SetBodyHeaders(headers, decoded->data.size());
      response_.raw.clear();
      response_buffer_.data = std::move(decoded->data);
      response_buffer_.raw = response_buffer_.data;
      flow_->response->headers = headers;
      RecordBody(flow_->response->body, response_buffer_.raw, flow_->body_record_cap);
    }
  }
  if (hold_response_) {
    EnterHeld();
    return;
  }
  SendBufferedResponse();
  Finish();
}

void Exchange::SendBufferedResponse() {
  Buffer b = std::move(response_buffer_);
  response_buffer_ = Buffer{};
  http::Codec& out = host_.codec();
  out.SendHead(id_, response_);
  if (response_raw_) {
    if (!b.raw.empty()) out.SendBodyRaw(id_, b.raw);
    return;
  }
  if (!b.data.empty()) out.SendData(id_, b.data);
  if (response_trailers_ && flow_ && flow_->response) {
    out.SendTrailers(id_, flow_->response->trailers);
  } else {
    out.SendEnd(id_);
  }
}

void Exchange::EnterHeld() {
  bool response = state_ == State::kResponding;
  if (response && upstream_) {
    // The response is complete: its upstream connection goes back to the pool rather than
    // waiting for the user.
    upstream_keep_alive_ = upstream_->codec->keep_alive();
    FillUpstreamFacts(*flow_);
    ReportBytes(host_.conn().ctx().connections, *upstream_);
    upstream_->wire->set_observer(nullptr);
    if (upstream_keep_alive_ && !upstream_->codec->upgraded()) {
      host_.conn().services().upstreams.Return(std::move(upstream_));
    } else {
      host_.conn().services().upstreams.Release(std::move(upstream_), "response held");
    }
  }
  state_ = State::kHeld;
  flow_->state = FlowState::kHeld;
  held_registered_ = true;
  rules::HeldInfo info;
  info.side = response ? "response" : "request";
  info.method = flow_->request->method;
  info.url = flow_->request->Url();
  if (response) info.status = response_.head.status;
  info.flow = std::make_shared<const Flow>(*flow_);
  host_.conn().services().hooks.Hold(flow_->id, this, std::move(info));
  host_.conn().Log(LogLevel::kInfo, "flow held",
                   {{"flow", flow_->id}, {"held", response ? "response" : "request"}});
  Publish(/*throttled=*/false);
}

void Exchange::Unhold() {
  if (!held_registered_) return;
  held_registered_ = false;
  host_.conn().services().hooks.Unhold(flow_ ? flow_->id : std::string());
}

Status Exchange::Control(rules::Command command) {
  if (state_ != State::kHeld || !flow_) {
    return mitmd::Fail(StrCat("flow is ", ToString(state_), ", not held; nothing was done"));
  }
  if (command.action == rules::Command::Action::kKill) {
    std::string id = flow_->id;
    Unhold();
    host_.conn().Log(LogLevel::kInfo, "flow killed by the user", {{"flow", id}});
    Fail(502, Phase::kKilled, "the mitmd user killed this exchange while it was held");
    return {};
  }
  bool response = response_.head.status != 0;
  if (response && command.edit.request) {
    return mitmd::Fail(
        "this flow is held at its response: the request already went upstream; edit "
        "the response");
  }
  if (!response && command.edit.response) {
    return mitmd::Fail("this flow is held before going upstream: edit its request");
  }
  Status st = response ? ResumeResponse(command.edit) : ResumeRequest(command.edit);
  if (!st) return st;  // still held: the user can correct the edit
  return {};
}

Status Exchange::ResumeRequest(const rules::Edit& edit) {
  if (edit.request) {
    const rules::RequestEdit& e = *edit.request;
    std::vector<Modification>& mods = flow_->modified_by;
    if (e.url && *e.url != flow_->request->Url()) {
      std::string before = flow_->request->Url();
      if (auto st = Retarget(*e.url); !st) return st;
      mods.push_back(Modification{"edit", "request url", before, *e.url});
    }
    if (e.method && *e.method != request_.head.method) {
      mods.push_back(Modification{"edit", "request method", request_.head.method, *e.method});
      request_.head.method = *e.method;
      SetPseudoHeader(request_.head.headers, ":method", *e.method);
      flow_->request->method = *e.method;
      flow_->request->headers = request_.head.headers;
      request_.raw.clear();
    }
    bool reframe = false;
    if (e.headers && *e.headers != request_.head.headers) {
      std::string before, after;
      AppendHeaderLines(before, request_.head.headers);
      AppendHeaderLines(after, *e.headers);
      mods.push_back(Modification{"edit", "request headers", before, after});
      request_.head.headers = *e.headers;
      reframe = true;
    }
    Buffer& b = request_buffer_;
    if (e.body && *e.body != b.data) {
      mods.push_back(Modification{"edit", "request body", rules::BodyForModification(b.data),
                                  rules::BodyForModification(*e.body)});
      b.data = *e.body;
      RecordBody(flow_->request->body, b.data, flow_->body_record_cap);
      reframe = true;
    }
    if (reframe) {
      // Edited messages go out framed by length, whatever framing they came with.
      if (!b.data.empty() || e.body) SetBodyHeaders(request_.head.headers, b.data.size());
      b.raw = b.data;
      request_.raw.clear();
    }
    flow_->request->headers = request_.head.headers;
  }
  QueueUpstream(std::move(request_buffer_.raw), std::move(request_buffer_.data));
  request_buffer_ = Buffer{};
  Unhold();
  state_ = State::kConnecting;
  flow_->state = FlowState::kLive;
  Log("resumed");
  Publish(/*throttled=*/false);
  Connect();
  return {};
}

Status Exchange::ResumeResponse(const rules::Edit& edit) {
  if (edit.response) {
    const rules::ResponseEdit& e = *edit.response;
    std::vector<Modification>& mods = flow_->modified_by;
    http::ResponseHead& head = response_.head;
    if (e.status && *e.status != head.status) {
      mods.push_back(
          Modification{"edit", "response status", StrCat(head.status), StrCat(*e.status)});
      head.status = *e.status;
      flow_->response->status = *e.status;
      if (!e.reason) head.reason = std::string(http::ReasonPhrase(*e.status));
      response_.raw.clear();
    }
    if (e.reason && *e.reason != head.reason) {
      mods.push_back(Modification{"edit", "response reason", head.reason, *e.reason});
      head.reason = *e.reason;
      response_.raw.clear();
    }
    flow_->response->reason = head.reason;
    bool reframe = false;
    if (e.headers && *e.headers != head.headers) {
      std::string before, after;
      AppendHeaderLines(before, head.headers);
      AppendHeaderLines(after, *e.headers);
      mods.push_back(Modification{"edit", "response headers", before, after});
      head.headers = *e.headers;
      reframe = true;
    }
    Buffer& b = response_buffer_;
    if (e.body && *e.body != b.data) {
      mods.push_back(Modification{"edit", "response body", rules::BodyForModification(b.data),
                                  rules::BodyForModification(*e.body)});
      b.data = *e.body;
      // Sent as given, so no longer in the server's content coding (unless the edit's own
      // headers say otherwise).
      if (!e.headers) RemoveHeader(head.headers, "Content-Encoding");
      RecordBody(flow_->response->body, b.data, flow_->body_record_cap);
      reframe = true;
    }
    if (reframe) {
      if (!b.data.empty() || e.body) SetBodyHeaders(head.headers, b.data.size());
      b.raw = b.data;
      response_.raw.clear();
    }
    flow_->response->headers = head.headers;
  }
  Unhold();
  state_ = State::kResponding;
  flow_->state = FlowState::kLive;
  Log("resumed");
  SendBufferedResponse();
  Finish();
  return {};
}

}  // namespace mitmd::proxy
