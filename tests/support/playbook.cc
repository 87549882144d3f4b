#include "support/playbook.h"

#include <sstream>

#include "core/strings.h"
#include "http/h2_codec.h"
#include "proxy/client_hello.h"
#include "proxy/layers/client_tls.h"

namespace mitmd::testing {

using proxy::Phase;
using proxy::WireEvent;

// ---- FakeWire -------------------------------------------------------------------------------

FakeWire::FakeWire() : input_(evbuffer_new()) {}
FakeWire::~FakeWire() { evbuffer_free(input_); }

void FakeWire::Write(std::string_view data) {
  if (closed_) return;
  written_.append(data);
  bytes_written_ += data.size();
}

void FakeWire::StartTls(bssl::UniquePtr<SSL> ssl) {
  // The TLS library would consume the handshake bytes; plaintext is delivered after the
  // ClientHandshakeDone() event.
  ssl_ = std::move(ssl);
  evbuffer_drain(input_, evbuffer_get_length(input_));
}

void FakeWire::Close(Linger) {
  if (ssl_) SSL_set_app_data(ssl_.get(), nullptr);
  closed_ = true;
  observer_ = nullptr;
}

void FakeWire::Emit(WireEvent event) {
  if (observer_ && !closed_) observer_->OnWireEvent(*this, event);
}

void FakeWire::Deliver(std::string_view bytes) {
  if (closed_) return;
  evbuffer_add(input_, bytes.data(), bytes.size());
  bytes_read_ += bytes.size();
  if (reading_) Emit(WireEvent::kReadable);
}

void FakeWire::DeliverTruncatedEof() {
  truncated_ = true;
  DeliverEof();
}

void FakeWire::DeliverEof() {
  peer_closed_ = true;
  if (evbuffer_get_length(input_) > 0) {
    Emit(WireEvent::kReadable);
    if (evbuffer_get_length(input_) > 0) return;  // kEof only once the input is consumed
  }
  eof_ = true;
  Emit(WireEvent::kEof);
}

void FakeWire::DeliverError(std::string message) {
  error_ = std::move(message);
  Emit(WireEvent::kError);
}

std::string FakeWire::TakeWritten() { return std::exchange(written_, {}); }

// ---- FakeTimers -----------------------------------------------------------------------------

class FakeTimers::FakeTimer : public proxy::Timer {
 public:
  FakeTimer(FakeTimers& owner, std::string name, std::function<void()> fire)
      : owner_(owner), name_(std::move(name)), fire_(std::move(fire)) {
    owner_.timers_.push_back(this);
  }
  ~FakeTimer() override { std::erase(owner_.timers_, this); }
  void Arm(std::chrono::milliseconds delay) override {
    armed_ = true;
    deadline_ = *owner_.clock_ + static_cast<double>(delay.count()) / 1000.0;
    zero_ = delay.count() == 0;
  }
  void Cancel() override { armed_ = false; }
  bool armed() const override { return armed_; }

  void Fire() {
    armed_ = false;
    fire_();  // may destroy this timer
  }

  FakeTimers& owner_;
  std::string name_;
  std::function<void()> fire_;
  bool armed_ = false;
  bool zero_ = false;
  double deadline_ = 0;
};

std::unique_ptr<proxy::Timer> FakeTimers::New(std::string name, std::function<void()> fire) {
  return std::make_unique<FakeTimer>(*this, std::move(name), std::move(fire));
}

void FakeTimers::RunZeroDelay() {
  for (int round = 0; round < 100; ++round) {
    FakeTimer* due = nullptr;
    for (FakeTimer* t : timers_) {
      if (t->armed_ && t->zero_) {
        due = t;
        break;
      }
    }
    if (!due) return;
    due->Fire();
  }
}

bool FakeTimers::Fire(const std::string& name) {
  for (FakeTimer* t : timers_) {
    if (t->armed_ && t->name_ == name) {
      *clock_ = std::max(*clock_, t->deadline_);
      t->Fire();
      return true;
    }
  }
  return false;
}

std::vector<std::string> FakeTimers::Armed() const {
  std::vector<std::string> out;
  for (const FakeTimer* t : timers_) {
    if (t->armed_) out.push_back(t->name_);
  }
  return out;
}

// ---- FakeUpstreams --------------------------------------------------------------------------

namespace {

std::string DescribeKey(const proxy::UpstreamKey& key) {
  std::string out = StrCat(key.host, ":", key.port);
  if (key.tls) {
    out += StrCat(" tls sni=", key.sni);
    if (!key.alpn.empty()) {
      out += " alpn=";
      for (size_t i = 0; i < key.alpn.size(); ++i) out += (i ? "," : "") + key.alpn[i];
    }
  }
  return out;
}

class FakePending : public proxy::Upstreams::Pending {
 public:
  explicit FakePending(std::shared_ptr<bool> cancelled) : cancelled_(std::move(cancelled)) {}
  ~FakePending() override { *cancelled_ = true; }

 private:
  std::shared_ptr<bool> cancelled_;
};

}  // namespace

std::unique_ptr<proxy::Upstreams::Pending> FakeUpstreams::Connect(const proxy::UpstreamKey& key,
                                                                  uint64_t, Callback done) {
  auto request = std::make_unique<FakeUpstream>();
  request->key = key;
  request->done = std::move(done);
  auto pending = std::make_unique<FakePending>(request->cancelled);
  dials_.push_back(DescribeKey(key));
  requests_.push_back(std::move(request));
  return pending;
}

void FakeUpstreams::Release(std::unique_ptr<proxy::UpstreamConn> conn, std::string_view reason) {
  releases_.push_back(std::string(reason));
  proxy::CloseUpstream(registry_, *conn, reason);
  released_.push_back(std::move(conn));
}

FakeWire* FakeUpstreams::CompleteNext(double now, const std::string& alpn) {
  while (!requests_.empty() && *requests_.front()->cancelled) requests_.pop_front();
  if (requests_.empty()) return nullptr;
  std::unique_ptr<FakeUpstream> request = std::move(requests_.front());
  requests_.pop_front();
  auto conn = std::make_unique<proxy::UpstreamConn>();
  conn->key = request->key;
  conn->addr = StrCat("192.0.2.1:", request->key.port);
  conn->id = registry_.OpenUpstream(0, request->key.host, request->key.port);
  auto wire = std::make_unique<FakeWire>();
  FakeWire* raw = wire.get();
  conn->wire = std::move(wire);
  conn->connect_start = conn->connect_end = now;
  if (request->key.tls) {
    conn->verification = std::make_unique<proxy::UpstreamVerification>();
    conn->verification->host = request->key.verify_host();
    conn->tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", alpn, request->key.sni, {}};
    conn->tls_end = now;
  }
  if (alpn == "h2") {
    conn->codec = std::make_unique<http::H2Codec>(http::H2Codec::Side::kClient, *conn->wire);
  } else {
    conn->codec = std::make_unique<http::H1Codec>(http::H1Codec::Side::kClient, *conn->wire);
  }
  servers_.push_back(raw);
  request->done(std::move(conn));
  return raw;
}

bool FakeUpstreams::FailNext(proxy::UpstreamError error) {
  while (!requests_.empty() && *requests_.front()->cancelled) requests_.pop_front();
  if (requests_.empty()) return false;
  std::unique_ptr<FakeUpstream> request = std::move(requests_.front());
  requests_.pop_front();
  request->done(std::unexpected(std::move(error)));
  return true;
}

std::vector<std::string> FakeUpstreams::TakeDials() { return std::exchange(dials_, {}); }
std::vector<std::string> FakeUpstreams::TakeReleases() { return std::exchange(releases_, {}); }

FakeWire* FakeUpstreams::server(int index) {
  if (servers_.empty()) return nullptr;
  if (index < 0) return servers_.back();
  return static_cast<size_t>(index) < servers_.size() ? servers_[index] : nullptr;
}

// ---- Flows ----------------------------------------------------------------------------------

void RecordingSink::Publish(std::shared_ptr<const Flow> snapshot) {
  published.push_back(std::move(snapshot));
}

void RecordingSink::Record(std::shared_ptr<const Flow> flow) { recorded.push_back(std::move(flow)); }

std::string Summary(const Flow& flow) {
  std::string out;
  if (flow.kind == Flow::Kind::kTunnel) {
    out = StrCat("tunnel ", flow.server_host, ":", flow.server_port, " up=", flow.bytes_up,
                 " down=", flow.bytes_down);
  } else {
    out = flow.response ? StrCat(flow.response->status) : "-";
    if (flow.request) {
      const HttpRequest& r = *flow.request;
      out += StrCat(" ", r.method, " ", r.host.empty() ? r.target : r.Url());
    }
  }
  if (flow.error) out += StrCat(" error=", flow.error->phase);
  return out;
}

// ---- Events and effects ---------------------------------------------------------------------

namespace {

std::string Quote(std::string_view bytes) {
  std::string out = "\"";
  for (char c : bytes) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      out += StrCat("\\x", "0123456789abcdef"[(c >> 4) & 0xf], "0123456789abcdef"[c & 0xf]);
    else out += c;
  }
  return out + "\"";
}

Event MakeEvent(Event::Kind kind, std::string text = {}, int server = -1) {
  Event e{kind, std::move(text)};
  e.server = server;
  return e;
}

}  // namespace

Event FromClient(std::string bytes) { return MakeEvent(Event::Kind::kFromClient, std::move(bytes)); }
Event FromServer(std::string bytes, int server) {
  return MakeEvent(Event::Kind::kFromServer, std::move(bytes), server);
}
Event ClientEof() { return MakeEvent(Event::Kind::kClientEof); }
Event ServerEof(int server) { return MakeEvent(Event::Kind::kServerEof, {}, server); }
Event ServerTruncatedEof(int server) {
  return MakeEvent(Event::Kind::kServerTruncatedEof, {}, server);
}
Event ClientError(std::string message) {
  return MakeEvent(Event::Kind::kClientError, std::move(message));
}
Event ServerError(std::string message, int server) {
  return MakeEvent(Event::Kind::kServerError, std::move(message), server);
}
Event ClientDrained() { return MakeEvent(Event::Kind::kClientDrained); }
Event ServerDrained(int server) { return MakeEvent(Event::Kind::kServerDrained, {}, server); }
Event Dialed(std::string alpn) { return MakeEvent(Event::Kind::kDialed, std::move(alpn)); }
Event DialFailed(Phase phase, std::string message) {
  Event e = MakeEvent(Event::Kind::kDialFailed, std::move(message));
  e.phase = phase;
  return e;
}
Event TimerFired(std::string name) { return MakeEvent(Event::Kind::kTimer, std::move(name)); }
Event Advance(double seconds) {
  Event e = MakeEvent(Event::Kind::kAdvance);
  e.seconds = seconds;
  return e;
}
Event ClientHello(std::string sni, std::vector<std::string> alpn) {
  std::string text = sni;
  for (const auto& a : alpn) text += "\n" + a;
  return MakeEvent(Event::Kind::kClientHello, std::move(text));
}
Event ClientHandshakeDone() { return MakeEvent(Event::Kind::kClientHandshakeDone); }
Event Shutdown() { return MakeEvent(Event::Kind::kShutdown); }

std::string ClientHelloBytes(const std::string& sni, const std::vector<std::string>& alpn) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  SSL_set_connect_state(ssl.get());
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl.get(), sni.c_str());
  std::string protos = proxy::EncodeAlpn(alpn);
  if (!protos.empty()) {
    SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const uint8_t*>(protos.data()), protos.size());
  }
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);
  SSL_do_handshake(ssl.get());  // wants to read the ServerHello: the ClientHello is in |out|
  const uint8_t* data;
  size_t len;
  BIO_mem_contents(out, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}
Event Call(std::string what, std::function<void()> fn) {
  Event e{Event::Kind::kCall, std::move(what)};
  e.call = std::move(fn);
  return e;
}

std::string Event::Describe() const {
  switch (kind) {
    case Kind::kFromClient: return "FromClient(" + Quote(text) + ")";
    case Kind::kFromServer: return StrCat("FromServer(", Quote(text), ", ", server, ")");
    case Kind::kClientEof: return "ClientEof()";
    case Kind::kServerEof: return StrCat("ServerEof(", server, ")");
    case Kind::kServerTruncatedEof: return StrCat("ServerTruncatedEof(", server, ")");
    case Kind::kClientError: return "ClientError(" + Quote(text) + ")";
    case Kind::kServerError: return StrCat("ServerError(", Quote(text), ", ", server, ")");
    case Kind::kDialed: return "Dialed(" + text + ")";
    case Kind::kDialFailed: return StrCat("DialFailed(", proxy::ToString(phase), ", ", Quote(text), ")");
    case Kind::kTimer: return "TimerFired(" + text + ")";
    case Kind::kClientDrained: return "ClientDrained()";
    case Kind::kServerDrained: return StrCat("ServerDrained(", server, ")");
    case Kind::kClientHello: return "ClientHello(" + Quote(text) + ")";
    case Kind::kClientHandshakeDone: return "ClientHandshakeDone()";
    case Kind::kAdvance: return "Advance(" + std::to_string(seconds) + ")";
    case Kind::kShutdown: return "Shutdown()";
    case Kind::kCall: return "Call(" + text + ")";
  }
  return "?";
}

Effect ToClient(std::string bytes) { return {Effect::Kind::kToClient, std::move(bytes)}; }
Effect ToServer(std::string bytes) { return {Effect::Kind::kToServer, std::move(bytes)}; }
Effect Dial(std::string what) { return {Effect::Kind::kDial, std::move(what)}; }
Effect CloseClient() { return {Effect::Kind::kCloseClient, {}}; }
Effect CloseServer(std::string reason) { return {Effect::Kind::kCloseServer, std::move(reason)}; }
Effect ShutdownClient() { return {Effect::Kind::kShutdownClient, {}}; }
Effect ShutdownServer() { return {Effect::Kind::kShutdownServer, {}}; }
Effect Recorded(std::string summary) { return {Effect::Kind::kRecorded, std::move(summary)}; }
Effect Published(std::string summary) { return {Effect::Kind::kPublished, std::move(summary)}; }
Effect ContinueHandshake() { return {Effect::Kind::kContinueHandshake, {}}; }

std::string Effect::Describe() const {
  switch (kind) {
    case Kind::kToClient: return "ToClient(" + Quote(text) + ")";
    case Kind::kToServer: return "ToServer(" + Quote(text) + ")";
    case Kind::kDial: return "Dial(" + text + ")";
    case Kind::kCloseClient: return "CloseClient()";
    case Kind::kCloseServer: return "CloseServer(" + Quote(text) + ")";
    case Kind::kShutdownClient: return "ShutdownClient()";
    case Kind::kShutdownServer: return "ShutdownServer()";
    case Kind::kRecorded: return "Recorded(" + text + ")";
    case Kind::kPublished: return "Published(" + text + ")";
    case Kind::kContinueHandshake: return "ContinueHandshake()";
  }
  return "?";
}

// ---- Playbook -------------------------------------------------------------------------------

Playbook::Playbook(std::function<void(Config&)> configure) : log_(2, LogLevel::kWarn) {
  config_.confdir = dir_.path();
  if (configure) configure(config_);
  ca_ = std::move(*ca::Authority::LoadOrCreate(dir_.path()));
  upstream_tls_ = std::move(*proxy::UpstreamTls::Create(config_));
  client_tls_ = std::move(*proxy::ClientTls::Create());
  passthrough_ = std::move(*proxy::PassthroughPolicy::Create(config_));
  client_certs_ = std::move(*proxy::ClientCertStore::Create(config_));
  ctx_ = std::make_unique<proxy::ProxyContext>(proxy::ProxyContext{
      config_, log_, *ca_, sink_, *upstream_tls_, *client_tls_, registry_, *passthrough_,
      *client_certs_, [this] { return clock_; }});
  timers_ = std::make_unique<FakeTimers>(&clock_);
  upstreams_ = std::make_unique<FakeUpstreams>(registry_);
  pool_ = std::make_unique<proxy::UpstreamPool>(
      *upstreams_, *timers_, proxy::PoolLimits{config_.pool_max_idle, config_.pool_idle_timeout});
  hooks_ = std::make_unique<proxy::DefaultHooks>(*ctx_, proxy::HookInputs{.controls = &controls_},
                                                 config_.listen.port);
  auto client = std::make_unique<FakeWire>();
  client_ = client.get();
  handler_ = std::make_unique<proxy::ConnectionHandler>(
      *ctx_, proxy::Services{*timers_, *pool_, *hooks_}, std::move(client),
      "127.0.0.1:50000", [this](proxy::ConnectionHandler*) { handler_done_ = true; });
  handler_->Start();
  timers_->RunZeroDelay();
}

Playbook::~Playbook() {
  handler_.reset();
  pool_.reset();
}

Playbook& Playbook::operator>>(Event event) {
  steps_.push_back(Step{std::move(event), {}});
  return *this;
}

Playbook& Playbook::operator<<(Effect effect) {
  if (steps_.empty()) steps_.push_back(Step{Advance(0), {}});
  steps_.back().expected.push_back(std::move(effect));
  return *this;
}

void Playbook::Apply(const Event& e) {
  FakeWire* server = upstreams_->server(e.server);
  switch (e.kind) {
    case Event::Kind::kFromClient: client_->Deliver(e.text); break;
    case Event::Kind::kFromServer: if (server) server->Deliver(e.text); break;
    case Event::Kind::kClientEof: client_->DeliverEof(); break;
    case Event::Kind::kServerEof: if (server) server->DeliverEof(); break;
    case Event::Kind::kServerTruncatedEof: if (server) server->DeliverTruncatedEof(); break;
    case Event::Kind::kClientError: client_->DeliverError(e.text); break;
    case Event::Kind::kServerError: if (server) server->DeliverError(e.text); break;
    case Event::Kind::kClientDrained: client_->set_pending(0); client_->Emit(WireEvent::kDrained); break;
    case Event::Kind::kServerDrained:
      if (server) {
        server->set_pending(0);
        server->Emit(WireEvent::kDrained);
      }
      break;
    case Event::Kind::kDialed: upstreams_->CompleteNext(clock_, e.text); break;
    case Event::Kind::kDialFailed: upstreams_->FailNext({e.phase, e.text, std::nullopt}); break;
    case Event::Kind::kTimer: timers_->Fire(e.text); break;
    case Event::Kind::kAdvance: clock_ += e.seconds; break;
    case Event::Kind::kShutdown: handler_->Shutdown(); break;
    case Event::Kind::kCall: e.call(); break;
    case Event::Kind::kClientHello: {
      auto* hooks = client_->ssl() ? static_cast<proxy::ClientHandshakeHooks*>(
                                         SSL_get_app_data(client_->ssl()))
                                   : nullptr;
      auto* layer = dynamic_cast<proxy::ClientTlsLayer*>(hooks);
      if (!layer) break;
      proxy::ClientHelloInfo info;
      std::istringstream lines(e.text);
      std::getline(lines, info.sni);
      for (std::string a; std::getline(lines, a);) info.alpn.push_back(a);
      layer->OnHello(std::move(info));
      break;
    }
    case Event::Kind::kClientHandshakeDone:
      client_->set_handshake_done();
      client_->set_tls(TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "http/1.1", "", {}});
      client_->Emit(WireEvent::kHandshakeDone);
      break;
  }
  timers_->RunZeroDelay();
}

std::vector<Effect> Playbook::Collect() {
  std::vector<Effect> out;
  for (const std::string& d : upstreams_->TakeDials()) out.push_back(Dial(d));
  for (int i = 0; FakeWire* s = upstreams_->server(i); ++i) {
    if (std::string w = s->TakeWritten(); !w.empty()) out.push_back(ToServer(std::move(w)));
  }
  if (std::string w = client_->TakeWritten(); !w.empty()) out.push_back(ToClient(std::move(w)));
  if (client_->TakeContinued()) out.push_back(ContinueHandshake());
  for (const std::string& r : upstreams_->TakeReleases()) out.push_back(CloseServer(r));
  for (; sink_.published_reported < sink_.published.size(); ++sink_.published_reported) {
    if (track_published_) {
      out.push_back(Published(Summary(*sink_.published[sink_.published_reported])));
    }
  }
  for (; sink_.recorded_reported < sink_.recorded.size(); ++sink_.recorded_reported) {
    out.push_back(Recorded(Summary(*sink_.recorded[sink_.recorded_reported])));
  }
  if (client_->shutdown() && !client_shutdown_reported_) {
    client_shutdown_reported_ = true;
    out.push_back(ShutdownClient());
  }
  if (client_->closed() && !client_closed_reported_) {
    client_closed_reported_ = true;
    out.push_back(CloseClient());
  }
  return out;
}

::testing::AssertionResult Playbook::Run() {
  for (; played_ < steps_.size(); ++played_) {
    const Step& step = steps_[played_];
    Apply(step.event);
    std::vector<Effect> actual = Collect();
    // Compare as multisets within a step: the order between different kinds of effects inside
    // one event is an implementation detail; bytes to one side keep their order.
    std::vector<Effect> expected = step.expected;
    auto key = [](const Effect& a, const Effect& b) {
      return std::tie(a.kind, a.text) < std::tie(b.kind, b.text);
    };
    std::vector<Effect> a = actual, x = expected;
    std::sort(a.begin(), a.end(), key);
    std::sort(x.begin(), x.end(), key);
    if (a == x) continue;
    std::string msg = StrCat("playbook step ", played_ + 1, " of ", steps_.size(), ": ",
                             step.event.Describe(), "\n  expected:\n");
    for (const Effect& e : expected) msg += "    << " + e.Describe() + "\n";
    if (expected.empty()) msg += "    (nothing)\n";
    msg += "  actual:\n";
    for (const Effect& e : actual) msg += "    << " + e.Describe() + "\n";
    if (actual.empty()) msg += "    (nothing)\n";
    msg += "  steps so far:\n";
    for (size_t i = 0; i < played_; ++i) msg += "    >> " + steps_[i].event.Describe() + "\n";
    ++played_;
    return ::testing::AssertionFailure() << msg;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace mitmd::testing
