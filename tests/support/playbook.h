#pragma once
// Playbooks: the proxy's layer stack driven without sockets, in the style of mitmproxy's
// tutils.Playbook. A test lists events in (bytes from the client, a dial completing, a timer
// firing, ...) and the effects each must cause (bytes to the client or the server, a dial, a
// recorded flow, a closed connection); Run() plays them against a real ConnectionHandler over a
// FakeWire, fake upstreams and fake timers, and explains the first mismatch step by step.
//
//   Playbook pb;
//   pb >> FromClient("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n")
//      << Dial("a.test:80");
//   pb >> Dialed() << ToServer("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
//   EXPECT_TRUE(pb.Run());

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "ca/authority.h"
#include "config/config.h"
#include "core/log.h"
#include "flow/connection_registry.h"
#include "flow/flow_sink.h"
#include "proxy/connection_handler.h"
#include "proxy/proxy_context.h"
#include "proxy/upstream/pool.h"
#include "support/temp_dir.h"

namespace mitmd::testing {

// A Wire that keeps what was written and lets the test deliver bytes and closes.
class FakeWire : public proxy::Wire {
 public:
  FakeWire();
  ~FakeWire() override;

  evbuffer* input() override { return input_; }
  void Write(std::string_view data) override;
  size_t output_pending() const override { return pending_; }
  void SetReading(bool enabled) override { reading_ = enabled; }
  bool reading() const override { return reading_; }
  void StartTls(bssl::UniquePtr<SSL> ssl) override;
  void ContinueHandshake() override { handshake_continued_ = true; }
  SSL* ssl() const override { return ssl_.get(); }
  bool handshake_done() const override { return handshake_done_; }
  TlsInfo DescribeTls() const override { return tls_; }
  void ShutdownWrite() override { shutdown_ = true; }
  bool eof() const override { return eof_; }
  bool peer_closed() const override { return peer_closed_; }
  bool truncated() const override { return truncated_; }
  void SkipCloseNotify() override { skip_close_notify_ = true; }
  const std::string& error() const override { return error_; }
  uint64_t bytes_read() const override { return bytes_read_; }
  uint64_t bytes_written() const override { return bytes_written_; }
  std::string local_address() const override { return "127.0.0.1:8080"; }
  void Close(Linger linger) override;
  void set_observer(proxy::WireObserver* observer) override { observer_ = observer; }

  // Test side.
  void Deliver(std::string_view bytes);
  void DeliverEof();
  // The peer closes without close_notify.
  void DeliverTruncatedEof();
  bool close_notify_skipped() const { return skip_close_notify_; }
  void DeliverError(std::string message);
  void Emit(proxy::WireEvent event);
  // Bytes written since the last call.
  std::string TakeWritten();
  bool closed() const { return closed_; }
  bool shutdown() const { return shutdown_; }
  bool tls_started() const { return ssl_ != nullptr; }
  // Whether ContinueHandshake() was called since the last call.
  bool TakeContinued() { return std::exchange(handshake_continued_, false); }
  // Simulates back-pressure: what output_pending() reports.
  void set_pending(size_t bytes) { pending_ = bytes; }
  void set_tls(TlsInfo tls) { tls_ = std::move(tls); }
  void set_handshake_done() { handshake_done_ = true; }

 private:
  evbuffer* input_;
  std::string written_;
  proxy::WireObserver* observer_ = nullptr;
  bssl::UniquePtr<SSL> ssl_;
  TlsInfo tls_;
  std::string error_;
  size_t pending_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  bool reading_ = true;
  bool handshake_done_ = false;
  bool handshake_continued_ = false;
  bool shutdown_ = false;
  bool eof_ = false;
  bool peer_closed_ = false;
  bool truncated_ = false;
  bool skip_close_notify_ = false;
  bool closed_ = false;
};

// Timers fired by the test; the clock is the playbook's.
class FakeTimers : public proxy::Timers {
 public:
  explicit FakeTimers(double* clock) : clock_(clock) {}
  std::unique_ptr<proxy::Timer> New(std::string name, std::function<void()> fire) override;

  // Runs the timers armed with a zero delay (one loop turn), repeatedly until none is left.
  void RunZeroDelay();
  // Advances the clock to the deadline of the armed timer named |name| and fires it. False when
  // no such timer is armed.
  bool Fire(const std::string& name);
  std::vector<std::string> Armed() const;

  class FakeTimer;

 private:
  friend class FakeTimer;
  double* clock_;
  std::vector<FakeTimer*> timers_;
};

// One upstream connection the proxy asked for.
struct FakeUpstream {
  proxy::UpstreamKey key;
  proxy::Upstreams::Callback done;
  // Shared with the Pending handed out: either may outlive the other.
  std::shared_ptr<bool> cancelled = std::make_shared<bool>(false);
  FakeWire* wire = nullptr;  // once connected: owned by the proxy's UpstreamConn
  bool released = false;
};

class FakeUpstreams : public proxy::Upstreams {
 public:
  explicit FakeUpstreams(ConnectionRegistry& registry) : registry_(registry) {}
  std::unique_ptr<Pending> Connect(const proxy::UpstreamKey& key, uint64_t client_id,
                                   Callback done) override;
  void Release(std::unique_ptr<proxy::UpstreamConn> conn, std::string_view reason) override;

  // Test side: completes the oldest open request (a TLS one negotiating |alpn|).
  FakeWire* CompleteNext(double now, const std::string& alpn = "");
  bool FailNext(proxy::UpstreamError error);
  // Requests made (in order) and not yet reported as effects.
  std::vector<std::string> TakeDials();
  std::vector<std::string> TakeReleases();
  // The server wire of the |index|-th connection made (0 = first), or the latest (-1).
  FakeWire* server(int index = -1);

 private:
  ConnectionRegistry& registry_;
  std::deque<std::unique_ptr<FakeUpstream>> requests_;  // waiting for the test
  std::vector<std::string> dials_;
  std::vector<std::string> releases_;
  std::vector<FakeWire*> servers_;
  // Released connections stay here, closed, so that the test's wire pointers stay valid.
  std::vector<std::unique_ptr<proxy::UpstreamConn>> released_;
};

class RecordingSink : public FlowSink {
 public:
  void Publish(std::shared_ptr<const Flow> snapshot) override;
  void Record(std::shared_ptr<const Flow> flow) override;
  std::vector<std::shared_ptr<const Flow>> published;
  std::vector<std::shared_ptr<const Flow>> recorded;
  size_t published_reported = 0;
  size_t recorded_reported = 0;
};

// "200 GET http://a.test/" / "- GET http://a.test/ error=connect" / "tunnel a.test:443":
// what Recorded() and Published() expectations compare against.
std::string Summary(const Flow& flow);

// ---- Events and effects ---------------------------------------------------------------------

struct Event {
  enum class Kind {
    kFromClient, kFromServer, kClientEof, kServerEof, kServerTruncatedEof, kClientError,
    kServerError,
    kDialed, kDialFailed, kTimer, kClientDrained, kServerDrained, kClientHello,
    kClientHandshakeDone, kAdvance, kShutdown, kCall,
  };
  Kind kind;
  std::string text;  // bytes, timer name, error message
  int server = -1;   // which server connection (-1: the latest)
  proxy::Phase phase = proxy::Phase::kConnect;
  double seconds = 0;
  std::function<void()> call;  // kCall
  std::string Describe() const;
};

Event FromClient(std::string bytes);
Event FromServer(std::string bytes, int server = -1);
Event ClientEof();
Event ServerEof(int server = -1);
// The server closes its TLS connection without close_notify.
Event ServerTruncatedEof(int server = -1);
Event ClientError(std::string message);
Event ServerError(std::string message, int server = -1);
Event ClientDrained();
Event ServerDrained(int server = -1);
// The oldest dial completes; a TLS upstream negotiated ALPN |alpn| (none when empty).
Event Dialed(std::string alpn = "");
Event DialFailed(proxy::Phase phase, std::string message);
Event TimerFired(std::string name);
Event Advance(double seconds);
// The client's ClientHello reached the TLS layer, offering |sni| and |alpn|.
Event ClientHello(std::string sni, std::vector<std::string> alpn = {});
Event ClientHandshakeDone();
// mitmd is stopping.
Event Shutdown();
// Something from outside the connection, e.g. the user resuming a held flow from the viewer
// (through rules::FlowControl, which runs it on this thread): |what| names it in diffs.
Event Call(std::string what, std::function<void()> fn);

// The bytes of a real ClientHello (BoringSSL's) offering |sni| and |alpn|.
std::string ClientHelloBytes(const std::string& sni, const std::vector<std::string>& alpn = {});

struct Effect {
  enum class Kind {
    kToClient, kToServer, kDial, kCloseClient, kCloseServer, kShutdownClient, kShutdownServer,
    kRecorded, kPublished, kContinueHandshake,
  };
  Kind kind;
  std::string text;
  bool operator==(const Effect&) const = default;
  std::string Describe() const;
};

Effect ToClient(std::string bytes);
Effect ToServer(std::string bytes);
// "host:port" and, for TLS, " tls sni=NAME alpn=a,b".
Effect Dial(std::string what);
Effect CloseClient();
Effect CloseServer(std::string reason);
Effect ShutdownClient();
Effect ShutdownServer();
Effect Recorded(std::string summary);
Effect Published(std::string summary);
Effect ContinueHandshake();

// ---- The playbook ---------------------------------------------------------------------------

class Playbook {
 public:
  // |configure| adjusts the configuration before the connection starts.
  explicit Playbook(std::function<void(Config&)> configure = {});
  ~Playbook();

  Playbook& operator>>(Event event);
  Playbook& operator<<(Effect effect);
  // Expect Published() effects too (by default live snapshots are not compared).
  void TrackPublished() { track_published_ = true; }
  // Plays every step not played yet; success, or the first mismatching step with what was
  // expected and what happened.
  ::testing::AssertionResult Run();

  const std::vector<std::shared_ptr<const Flow>>& recorded() const { return sink_.recorded; }
  const std::vector<std::shared_ptr<const Flow>>& published() const { return sink_.published; }
  FakeWire& client() { return *client_; }
  FakeUpstreams& upstreams() { return *upstreams_; }
  proxy::UpstreamPool& pool() { return *pool_; }
  FakeTimers& timers() { return *timers_; }
  ConnectionRegistry& registry() { return registry_; }
  // Rules and hold filters in force, and the held flows (commands run on the test's thread).
  rules::Controls& controls() { return controls_; }
  // The handler closed and asked to be deleted (it is kept until the playbook ends).
  bool handler_done() const { return handler_done_; }
  double now() const { return clock_; }

 private:
  struct Step {
    Event event;
    std::vector<Effect> expected;
  };
  void Apply(const Event& event);
  std::vector<Effect> Collect();

  TempDir dir_;
  Config config_;
  Logger log_;
  double clock_ = 1'000'000;
  std::unique_ptr<ca::Authority> ca_;
  std::unique_ptr<proxy::UpstreamTls> upstream_tls_;
  std::unique_ptr<proxy::ClientTls> client_tls_;
  std::unique_ptr<proxy::PassthroughPolicy> passthrough_;
  std::unique_ptr<proxy::ClientCertStore> client_certs_;
  ConnectionRegistry registry_;
  RecordingSink sink_;
  rules::Controls controls_;
  std::unique_ptr<proxy::ProxyContext> ctx_;
  std::unique_ptr<FakeTimers> timers_;
  std::unique_ptr<FakeUpstreams> upstreams_;
  std::unique_ptr<proxy::UpstreamPool> pool_;  // the real pool, over the fake dialer
  std::unique_ptr<proxy::DefaultHooks> hooks_;
  FakeWire* client_ = nullptr;  // owned by the handler
  std::unique_ptr<proxy::ConnectionHandler> handler_;
  bool handler_done_ = false;
  std::vector<Step> steps_;
  size_t played_ = 0;
  bool track_published_ = false;
  bool client_closed_reported_ = false;
  bool client_shutdown_reported_ = false;
};

}  // namespace mitmd::testing
