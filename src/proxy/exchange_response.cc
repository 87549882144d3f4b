// The Exchange's response side: the upstream codec's events relayed to the client with
// back-pressure both ways, the flow's live snapshots, and the upstream connection's end (a
// reused one that failed before answering is retried once on a new one).
// The request side and the endings are in exchange.cc, rules and hold in exchange_rules.cc.

#include "core/strings.h"
#include "proxy/alpn_policy.h"
#include "proxy/exchange.h"
#include "proxy/upstream/h2_only_hosts.h"

namespace mitmd::proxy {
namespace {

// Body progress is published at most this often per flow (seconds).
constexpr double kPublishInterval = 0.25;

}  // namespace

void Exchange::OnWireEvent(Wire&, WireEvent event) {
  host_.conn().Touch();
  switch (event) {
    case WireEvent::kReadable:
      ReadUpstream();
      return;
    case WireEvent::kDrained:
      if (!host_.conn().client().reading() && upstream_->codec->Writable(id_)) {
        host_.conn().client().SetReading(true);
      }
      return;
    case WireEvent::kEof:
      OnUpstreamEof();
      return;
    case WireEvent::kError:
      OnUpstreamError();
      return;
    case WireEvent::kHandshakeDone:
    case WireEvent::kHandshakePaused:
      return;
  }
}

bool Exchange::Receiving() const {
  return flow_ != nullptr && !host_.conn().closed() && !unsolicited_upgrade_ &&
         stream_error_.empty();
}

void Exchange::ReadUpstream() {
  evbuffer* input = upstream_->wire->input();
  if (!upstream_spoke_ && evbuffer_get_length(input) > 0) {
    upstream_spoke_ = true;
    char first[9];
    // Only where h2 could be offered instead: over TLS, for an HTTP/1 client not offering it.
    if (upstream_->responses == 0 && upstream_->codec->protocol() == http::Protocol::kHttp1 &&
        key_.tls && !OffersH2(key_.alpn) && host_.codec().protocol() == http::Protocol::kHttp1 &&
        evbuffer_copyout(input, first, sizeof first) == sizeof first &&
        LooksLikeHttp2Server({first, sizeof first})) {
      std::string why = "it answered an HTTP/1.1 request with HTTP/2 frames";
      h2_probe_failure_ = StrCat("the upstream server ", key_.host, ":", key_.port,
                                 " speaks only HTTP/2 (", why, ")");
      if (RetryOverH2(why, /*certain=*/true)) return;
      Fail(502, Phase::kResponse, h2_probe_failure_,
           "mitmd offers it h2 from now on: send the request again.");
      return;
    }
  }
  Status st = upstream_->codec->Receive(input, *this);
  if (!flow_ || host_.conn().closed()) return;
  if (unsolicited_upgrade_) {
    Fail(502, Phase::kResponse,
         "the server switched protocols (101) although the request asked for no upgrade");
    return;
  }
  if (!st) {
    Fail(502, Phase::kResponse, StrCat("malformed response from upstream: ", st.error().message));
    return;
  }
  if (!stream_error_.empty()) {
    // A refused stream was not processed (RFC 9113, 8.7): like a reused connection's close.
    if (stream_refused_ && Retry(stream_error_)) return;
    Fail(502, Phase::kResponse, stream_error_);
    return;
  }
  if (response_done_ && response_buffer_.active) {
    ReleaseResponse();
  } else if (response_done_) {
    Finish();
  } else if (head_unpublished_) {
    Publish(/*throttled=*/false);
  }
}

void Exchange::OnHead(http::StreamId, http::Response&& response) {
  if (response_timer_) response_timer_->Cancel();  // the server answers
  const http::ResponseHead& head = response.head;
  if (response.interim()) {
    if (!flow_->response) flow_->response.emplace();
    flow_->response->informational.push_back(head.status);
    host_.codec().SendHead(id_, response);
    return;
  }
  if (head.status == 101 && !FindHeader(request_.head.headers, "Upgrade")) {
    // Relaying it would turn the connection into an unrecorded tunnel the client never asked
    // for, with its later requests going to this server. Failed once the codec returns.
    unsolicited_upgrade_ = true;
    return;
  }
  std::vector<int> informational;
  if (flow_->response) informational = std::move(flow_->response->informational);
  HttpResponse& resp = flow_->response.emplace();
  resp.informational = std::move(informational);
  resp.status = head.status;
  resp.reason = head.reason;
  resp.version = head.version;
  resp.headers = head.headers;
  flow_->timings.response_start = host_.conn().ctx().now();
  flow_->upstream_conn_id = upstream_->id;
  flow_->upstream_reused = ++upstream_->responses > 1;
  host_.conn().ctx().connections.AddRequest(upstream_->id, host_.conn().id());
  flow_->server_addr = upstream_->addr;
  state_ = State::kResponding;
  // Published once the codec returns, unless the response is already complete by then: a
  // small response is then recorded without a live snapshot of its head (ReadUpstream).
  head_unpublished_ = true;
  // A buffered response's head goes on with its whole body (ReleaseResponse).
  if (!rules_->empty() && ApplyResponseRules(response)) return;
  host_.codec().SendHead(id_, response);
}

void Exchange::OnBodyRaw(http::StreamId, std::string_view raw) {
  if (response_buffer_.active) {
    BufferResponse(raw, {});
    return;
  }
  if (!raw_bodies()) return;
  host_.codec().SendBodyRaw(id_, raw);
  if (!host_.codec().Writable(id_)) upstream_->wire->SetReading(false);
}

void Exchange::OnData(http::StreamId, std::string_view data) {
  if (flow_->response) flow_->response->body.Append(data.data(), data.size(), flow_->body_record_cap);
  if (response_buffer_.active) {
    BufferResponse({}, data);
  } else if (!raw_bodies()) {
    host_.codec().SendData(id_, data);
    if (!host_.codec().Writable(id_)) upstream_->wire->SetReading(false);
  }
  Publish(/*throttled=*/true);
}

void Exchange::Publish(bool throttled) {
  double now = host_.conn().ctx().now();
  if (!flow_ || (throttled && now - last_publish_ < kPublishInterval)) return;
  last_publish_ = now;
  head_unpublished_ = false;
  host_.conn().Publish(*flow_);
}

void Exchange::OnTrailers(http::StreamId, const HeaderList& trailers) {
  if (flow_->response) flow_->response->trailers = trailers;
  response_trailers_ = true;
  if (!raw_bodies() && !response_buffer_.active) host_.codec().SendTrailers(id_, trailers);
}

void Exchange::OnEnd(http::StreamId) {
  flow_->timings.response_end = host_.conn().ctx().now();
  response_done_ = true;
  // After a 101 the client's stream (an HTTP/2 extended CONNECT) carries what follows.
  bool switched = flow_->response && flow_->response->status == 101;
  if (!raw_bodies() && !response_trailers_ && !response_buffer_.active && !switched) {
    host_.codec().SendEnd(id_);
  }
}

void Exchange::OnStreamReset(http::StreamId, uint32_t code, const std::string& message) {
  // Acted on once the codec returns (ReadUpstream), like every ending.
  stream_error_ = StrCat("the upstream server reset the stream: ", message);
  stream_refused_ = code == http::kResetRefusedStream;
}

void Exchange::OnUpstreamEof() {
  upstream_->peer_closed = true;
  if (state_ == State::kResponding) {
    // The client sees the server's close as it happened: without close_notify, when so.
    bool truncated = upstream_->wire->truncated();
    if (truncated) host_.conn().client().SkipCloseNotify();
    Status st = upstream_->codec->ReceiveEof(*this);  // completes a close-delimited body
    if (!st && flow_) {
      Cut(Phase::kResponse, st.error().message);
    } else if (response_done_ && response_buffer_.active) {
      ReleaseResponse();
    } else if (response_done_) {
      if (truncated) {
        AddNote(*flow_,
                "the server closed the connection without close_notify: this close-delimited "
                "body may be truncated");
      }
      Finish();
    }
    return;
  }
  std::string failure = StrCat("the upstream server ", key_.host, ":", key_.port,
                               " closed the connection without responding");
  if (ProbeH2(failure)) return;
  if (Retry("the server closed it without responding")) return;
  Fail(502, Phase::kResponse, failure);
}

bool Exchange::ProbeH2(const std::string& failure) {
  // nghttpd and Python h2 servers complete the handshake without a protocol for an HTTP/1
  // offer, then close without a byte.
  if (upstream_spoke_ || evbuffer_get_length(upstream_->wire->input()) > 0 || !upstream_->tls ||
      !upstream_->tls->alpn.empty()) {
    return false;
  }
  h2_probe_failure_ = failure;
  return RetryOverH2(StrCat("it chose no application protocol for an offer of ",
                            OfferText(key_.alpn), " and closed without a byte"),
                     /*certain=*/false);
}

bool Exchange::Idempotent() const {
  static constexpr std::string_view kIdempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT",
                                                     "DELETE"};
  for (std::string_view m : kIdempotent) {
    if (request_.head.method == m) return true;
  }
  return false;
}

void Exchange::OfferH2IfLearned() {
  ConnectionHandler& conn = host_.conn();
  H2OnlyHosts* learned = conn.services().upstreams.h2_only_hosts();
  if (!learned || !key_.tls || OffersH2(key_.alpn) ||
      host_.codec().protocol() != http::Protocol::kHttp1 ||
      FindHeader(request_.head.headers, "Upgrade") ||
      !learned->Find(key_.host, key_.port, conn.ctx().now())) {
    return;
  }
  key_.alpn = WithH2(key_.alpn);
}

bool Exchange::RetryOverH2(std::string why, bool certain) {
  ConnectionHandler& conn = host_.conn();
  if (!flow_ || !upstream_ || !key_.tls || OffersH2(key_.alpn) ||
      upstream_->responses > 0 || upstream_->codec->protocol() != http::Protocol::kHttp1 ||
      host_.codec().protocol() != http::Protocol::kHttp1 ||
      FindHeader(request_.head.headers, "Upgrade")) {
    return false;
  }
  H2OnlyHosts* learned = conn.services().upstreams.h2_only_hosts();
  if (certain && learned) learned->Remember(key_.host, key_.port, why, conn.ctx().now());
  // Sent again from the recorded body (what the client sent so far: the rest follows as it
  // comes), unless rules may have edited it on the way.
  const BodyRecord& body = flow_->request->body;
  if (retried_ || state_ != State::kForwarding || body.truncated ||
      (body.size > 0 && !rules_->empty())) {
    return false;
  }
  retried_ = true;
  h2_probe_ = std::pair(why, certain);
  held_raw_.clear();
  held_data_ = body.content;
  body_bytes_sent_ = 0;
  if (response_timer_) response_timer_->Cancel();  // restarted once the request is out again
  Log("retrying offering h2");
  conn.Log(LogLevel::kInfo, "the server may speak only HTTP/2: retrying offering h2",
           {{"host", key_.host}, {"port", key_.port}, {"why", why},
            {"flow", flow_->id}});
  upstream_->wire->set_observer(nullptr);
  conn.services().upstreams.Release(std::move(upstream_),
                                    StrCat("the server may speak only HTTP/2: ", why));
  key_.alpn = WithH2(key_.alpn);
  state_ = State::kConnecting;
  pending_connect_ = conn.services().upstreams.Connect(
      key_, conn.id(), [this](Upstreams::Outcome outcome) { OnConnected(std::move(outcome)); });
  return true;
}

bool Exchange::Retry(std::string_view why) {
  if (retried_ || !Idempotent() || !request_done_ || body_bytes_sent_ > 0 || !upstream_ ||
      upstream_->responses == 0 || state_ != State::kForwarding) {
    return false;
  }
  retried_ = true;
  stream_error_.clear();
  stream_refused_ = false;
  if (response_timer_) response_timer_->Cancel();  // restarted once the request is out again
  Log("retrying on a new connection");
  upstream_->wire->set_observer(nullptr);
  ConnectionHandler& conn = host_.conn();
  conn.services().upstreams.Release(std::move(upstream_),
                                    StrCat("reused connection failed: ", why, "; retried"));
  state_ = State::kConnecting;
  pending_connect_ = conn.services().upstreams.ConnectFresh(
      key_, conn.id(), [this](Upstreams::Outcome outcome) { OnConnected(std::move(outcome)); });
  return true;
}

void Exchange::OnUpstreamError() {
  std::string error = upstream_->wire->error();
  if (state_ == State::kResponding) {
    Cut(Phase::kResponse, StrCat("the upstream connection failed: ", error));
    return;
  }
  if (ProbeH2(StrCat("the upstream connection failed: ", error)) || Retry(error)) return;
  // TLS 1.3 servers refuse a missing client certificate only after the handshake.
  const UpstreamVerification* v = upstream_->verification.get();
  if (v && v->client_cert_requested) {
    Fail(502, Phase::kUpstreamTls, UpstreamTlsFailure(key_, *v, error));
  } else {
    Fail(502, Phase::kResponse, StrCat("the upstream connection failed: ", error));
  }
}

}  // namespace mitmd::proxy
