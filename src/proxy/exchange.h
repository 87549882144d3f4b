#pragma once
// Exchange: one request and its response, from the request head to the last response byte.
// It gets an upstream connection (kept from the previous exchange or dialed), forwards the
// request (the raw head when nothing changed it), relays the response with back-pressure on
// both sides, and records its flow exactly once. Its errors are its own: 502 when nothing of
// the response was sent yet, else its stream is reset (HTTP/2) or the connection cut (HTTP/1).
//
// Bodies go raw (byte for byte, framing included) when both codecs speak HTTP/1, else as
// payload that each codec frames itself (see http/codec.h).
//
// The rule set in force when it starts applies to it throughout (exchange_rules.cc): map-local
// answers it, map-remote retargets it, modify-headers changes heads. A message whose body a rule
// rewrites, or which the user holds, is buffered whole (up to --hold-max-body; larger ones
// stream unchanged and the flow says so); a held one waits in kHeld for Control().

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "flow/flow.h"
#include "http/codec.h"
#include "proxy/phase.h"
#include "proxy/request_target.h"
#include "proxy/exchange_host.h"
#include "proxy/upstream/upstream_conn.h"
#include "proxy/wire.h"
#include "rules/controls.h"
#include "rules/rule_set.h"

namespace mitmd::proxy {

class Exchange : private http::CodecEvents, private WireObserver, public rules::Holdable {
 public:
  enum class State {
    kConnecting,  // waiting for the upstream connection; request bytes are held
    kForwarding,  // request going upstream, waiting for the response head
    kResponding,  // response head sent to the client, body streaming
    kHeld,        // the whole request, or response, waits for the user (Control)
    kDone,        // recorded
  };

  // |target| is where the request goes (scheme, host, port, origin-form path).
  Exchange(ExchangeHost& host, http::StreamId id, http::Request request, Target target,
           UpstreamKey key);
  ~Exchange() override;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void Start();
  // The client's request body and its end.
  void OnRequestBodyRaw(std::string_view raw);
  void OnRequestData(std::string_view data);
  void OnRequestTrailers(const HeaderList& trailers);
  void OnRequestEnd();
  // The client's request could not be read (malformed): 400, or cut when the response started.
  void OnRequestMalformed(const std::string& message);
  // The client's output drained: resume reading the upstream.
  void OnClientDrained();
  // The connection is closing: records the flow as failed with |message| if it is still
  // open, gives the upstream connection back.
  void Abort(Phase phase, const std::string& message);

  // The user's resume (with edits) or kill, delivered on this exchange's worker.
  Status Control(rules::Command command) override;

  State state() const { return state_; }
  // After a WebSocket upgrade: the flow, not yet recorded, for the layer that relays it.
  std::unique_ptr<Flow> TakeUpgradedFlow() { return std::move(upgraded_flow_); }
  bool request_done() const { return request_done_; }
  bool response_started() const { return state_ == State::kResponding; }

 private:
  // http::CodecEvents (the response from upstream). They never end the exchange themselves:
  // the codec is still running; ReadUpstream acts once it returns.
  void OnHead(http::StreamId id, http::Response&& response) override;
  void OnBodyRaw(http::StreamId id, std::string_view raw) override;
  void OnData(http::StreamId id, std::string_view data) override;
  void OnTrailers(http::StreamId id, const HeaderList& trailers) override;
  void OnEnd(http::StreamId id) override;
  void OnStreamReset(http::StreamId id, uint32_t code, const std::string& message) override;
  bool Receiving() const override;
  // WireObserver: the upstream connection while this exchange has it.
  void OnWireEvent(Wire& wire, WireEvent event) override;

  // Starts the --response-timeout countdown once the whole request went upstream.
  void ArmResponseTimer();
  // Takes the idle upstream connection the host kept for this key, or dials one.
  void Connect();
  void OnConnected(Upstreams::Outcome outcome);
  // Takes |upstream| and sends the request on it; |resume_client| reads the rest of the
  // request (false while the layer is already reading it).
  void Attach(std::unique_ptr<UpstreamConn> upstream, bool resume_client);
  // Stops reading the client while too much of the request waits for the upstream.
  void LimitHeld();
  void ReadUpstream();
  void OnUpstreamEof();
  void OnUpstreamError();
  // A reused connection that failed before any response byte: an idempotent request without
  // a body goes once more on a new connection. True when it does.
  bool Retry(std::string_view why);
  // The upstream (HTTP/1, over TLS, offered no h2, for an HTTP/1 client) speaks only HTTP/2, or
  // |certain| false: may (it chose no protocol and closed without a byte). The request goes once
  // more on a connection that offers h2 too, when it can be sent again (its body so far
  // recorded whole). |why| in words for the log, the flow and the remembered host. True when
  // it does.
  bool RetryOverH2(std::string why, bool certain);
  // An HTTP/1 client's request to a server learned to speak only h2 offers it h2 at once.
  void OfferH2IfLearned();
  // The upstream closed or failed without a byte after choosing no protocol: RetryOverH2,
  // not certain; |failure| is reported if the server does not choose h2 either.
  bool ProbeH2(const std::string& failure);
  bool Idempotent() const;
  // Fails the exchange: an error page when nothing was sent yet, else a cut connection.
  void Fail(int status, Phase phase, const std::string& message, std::string_view detail = {});
  // The response has started and cannot complete: records the failure, then resets the
  // client's stream, or closes the connection when its protocol cannot reset one stream.
  void Cut(Phase phase, const std::string& message);
  // Both codecs speak HTTP/1: bodies are relayed as raw spans.
  bool raw_bodies() const;
  // The response is complete: record, and hand the connection back to the layer.
  void Finish();
  void FillUpstreamFacts(Flow& flow) const;
  void Record(std::optional<Phase> phase = std::nullopt, const std::string& message = {});
  void Log(std::string_view message) const;
  // Appends |text| to the flow's note.
  static void AddNote(Flow& flow, std::string_view text);
  // Publishes the running flow; |throttled| ones at most kPublishInterval apart.
  void Publish(bool throttled);

  // ---- Rules and hold (exchange_rules.cc) ----
  // A message being buffered whole: as on the wire, and its payload.
  struct Buffer {
    bool active = false;
    std::string raw;
    std::string data;
  };
  // At the request head: map-local, map-remote, modify-headers; decides whether the request is
  // buffered. True when the exchange was answered (map-local) or failed.
  bool ApplyRequestRules();
  // Points the request at |url| (map-remote, an edit). The error says why it cannot go there.
  Status Retarget(const std::string& url);
  // map-local answers in place of the server.
  void AnswerLocally(const rules::Rule& rule);
  // A buffered request body, to go upstream once connected.
  void QueueUpstream(std::string raw, std::string data);
  // Buffered body bytes; past --hold-max-body the message streams on unchanged.
  void BufferRequest(std::string_view raw, std::string_view data);
  void BufferResponse(std::string_view raw, std::string_view data);
  // The whole message is in: modify-body, then hold or send it on.
  void ReleaseRequest();
  void ReleaseResponse();
  // At the response head: modify-headers; decides whether the response is buffered. True when
  // it is (the head is not sent yet).
  bool ApplyResponseRules(http::Response& response);
  // Sends the buffered response head and body (and its end, when the codec frames it).
  void SendBufferedResponse();
  void EnterHeld();
  Status ResumeRequest(const rules::Edit& edit);
  Status ResumeResponse(const rules::Edit& edit);
  void Unhold();
  size_t hold_max_body() const;

  ExchangeHost& host_;
  const http::StreamId id_;
  http::Request request_;  // as forwarded upstream
  Target target_;          // map-remote and edits may retarget it
  UpstreamKey key_;
  State state_ = State::kConnecting;
  std::unique_ptr<Flow> flow_;  // null once recorded
  std::unique_ptr<Flow> upgraded_flow_;  // a WebSocket's, until the layer takes it
  std::unique_ptr<Upstreams::Pending> pending_connect_;
  std::unique_ptr<Timer> response_timer_;  // --response-timeout, while waiting for the head
  std::unique_ptr<UpstreamConn> upstream_;
  // The request body waiting for the upstream connection, raw (as the client framed it) and
  // as payload: which one goes depends on the upstream codec.
  std::string held_raw_;
  std::string held_data_;
  bool request_trailers_ = false;   // the request ended with trailers
  bool response_trailers_ = false;  // ... the response
  bool request_done_ = false;
  bool response_done_ = false;
  double last_publish_ = 0;
  bool head_unpublished_ = false;  // the response head is not in a published snapshot yet
  uint64_t body_bytes_sent_ = 0;
  bool retried_ = false;
  bool upstream_spoke_ = false;  // the upstream sent a byte on this exchange's connection
  // RetryOverH2's connect: why the server may speak only h2, and whether that is certain.
  std::optional<std::pair<std::string, bool>> h2_probe_;
  std::string h2_probe_failure_;  // ... the failure reported when the server does not choose h2
  bool unsolicited_upgrade_ = false;  // a 101 to a request that asked for no upgrade
  std::string stream_error_;          // the upstream codec ended this stream alone
  bool stream_refused_ = false;       // ... refused it unprocessed (HTTP/2 REFUSED_STREAM)
  std::shared_ptr<const rules::RuleSet> rules_;  // taken once, when the exchange starts
  Buffer request_buffer_;
  Buffer response_buffer_;
  http::Response response_;      // a buffered response's head, until it is sent
  bool response_raw_ = false;    // ... whose body goes raw (both codecs HTTP/1)
  bool hold_request_ = false;    // the request is held once complete
  bool hold_response_ = false;   // the response is held once complete
  bool held_registered_ = false;
  bool upstream_keep_alive_ = true;  // of an upstream given back while the response is held
};

std::string_view ToString(Exchange::State state);

// A request head as recorded: the proxy's own headers (Proxy-Authorization, Proxy-Connection)
// and the credentials of a URL left out, so that no token or password reaches the flow log, the
// viewer or an export.
HttpRequest RecordedRequest(const http::RequestHead& head);

}  // namespace mitmd::proxy
