#include "proxy/upstream/shared_h2.h"

#include <vector>

#include "core/strings.h"

namespace mitmd::proxy {

// ---- SharedH2Conn ---------------------------------------------------------------------------

SharedH2Conn::SharedH2Conn(std::unique_ptr<UpstreamConn> conn, Timers& timers,
                           std::chrono::milliseconds idle_timeout, OnDone on_done,
                           ConnectionRegistry* registry)
    : conn_(std::move(conn)),
      on_done_(std::move(on_done)),
      registry_(registry),
      idle_timeout_(idle_timeout) {
  conn_->wire->set_observer(this);
  idle_timer_ = timers.New("h2_shared_idle", [this] {
    codec().Shutdown();  // GOAWAY: a polite close
    Done("idle in the pool too long");
  });
  idle_timer_->Arm(idle_timeout_);
  kick_timer_ = timers.New("h2_shared_kick", [this] {
    if (conn_ && evbuffer_get_length(conn_->wire->input()) > 0) {
      Receive();  // notifies too
    } else {
      Notify();
    }
  });
  // Bytes may have arrived with the handshake (the server's SETTINGS) while nobody watched.
  Kick();
}

SharedH2Conn::~SharedH2Conn() {
  for (auto& [lease, unused] : leases_) lease->Detach("the shared HTTP/2 connection was closed");
  if (conn_ && conn_->wire) conn_->wire->set_observer(nullptr);
}

http::H2Codec& SharedH2Conn::codec() { return static_cast<http::H2Codec&>(*conn_->codec); }

bool SharedH2Conn::accepting() const {
  return !done_ && conn_ && error_.empty() && !eof_ && conn_->usable() &&
         conn_->codec->keep_alive();
}

bool SharedH2Conn::CanLease() const {
  return accepting() &&
         leases_.size() < static_cast<const http::H2Codec&>(*conn_->codec).peer_max_streams();
}

std::unique_ptr<UpstreamConn> SharedH2Conn::Lease() {
  idle_timer_->Cancel();
  auto lease = std::make_unique<UpstreamConn>();
  lease->key = conn_->key;
  lease->id = conn_->id;
  lease->addr = conn_->addr;
  auto wire = std::make_unique<LeaseWire>(*this);
  LeaseWire& lease_wire = *wire;
  leases_[wire.get()] = true;
  lease->wire = std::move(wire);
  if (conn_->verification) {
    lease->verification = std::make_unique<UpstreamVerification>(*conn_->verification);
  }
  lease->tls = conn_->tls;
  lease->codec = std::make_unique<LeaseCodec>(lease_wire);
  lease->connect_start = conn_->connect_start;
  lease->connect_end = conn_->connect_end;
  lease->tls_end = conn_->tls_end;
  // A stream on a connection that carried others before is a reuse (and may be retried).
  lease->responses = leased_++;
  return lease;
}

std::unique_ptr<UpstreamConn> SharedH2Conn::TakeConn() {
  idle_timer_->Cancel();
  kick_timer_->Cancel();
  for (auto& [lease, unused] : leases_) lease->Detach("the shared HTTP/2 connection was closed");
  leases_.clear();
  streams_.clear();
  if (conn_ && conn_->wire) conn_->wire->set_observer(nullptr);
  return std::move(conn_);
}

http::StreamId SharedH2Conn::Open(LeaseWire& lease, const http::Request& request) {
  http::StreamId name = next_name_++;
  Status st = error_.empty() ? codec().OpenStream(name, request, /*end_stream=*/false)
                             : Status(mitmd::Fail(error_));
  if (!st) {
    lease.Queue({.kind = LeaseWire::Event::Kind::kReset,
                 .data = st.error().message,
                 .code = http::kResetRefusedStream});
    Kick();
    return name;
  }
  streams_[name] = &lease;
  return name;
}

void SharedH2Conn::Forget(LeaseWire& lease) {
  if (lease.name_ != 0) {
    streams_.erase(lease.name_);
    if (conn_ && codec().open(lease.name_)) codec().Reset(lease.name_, http::kResetCancel);
  }
  leases_.erase(&lease);
  CheckDone();
}

void SharedH2Conn::CheckDone() {
  if (done_ || !conn_ || !leases_.empty()) return;
  if (!error_.empty() || eof_) {
    Done(error_.empty() ? "the server closed the connection" : error_);
  } else if (!codec().keep_alive()) {
    Done("the server sent GOAWAY; its last stream ended");
  } else {
    idle_timer_->Arm(idle_timeout_);
  }
}

void SharedH2Conn::Done(std::string_view reason) {
  if (done_) return;
  done_ = true;
  idle_timer_->Cancel();
  on_done_(*this, reason);  // the owner frees this later
}

void SharedH2Conn::OnWireEvent(Wire&, WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
      Receive();
      return;
    case WireEvent::kDrained: {
      codec().Flush();
      std::vector<LeaseWire*> leases;
      for (auto& [lease, unused] : leases_) leases.push_back(lease);
      for (LeaseWire* lease : leases) {
        if (leases_.contains(lease)) lease->Tell(WireEvent::kDrained);
      }
      return;
    }
    case WireEvent::kEof:
      // Each lease with a stream open learns it from kEof, as from a connection of its own
      // (a request not answered yet may be retried).
      conn_->peer_closed = true;
      Receive();  // what is still in the input
      if (conn_) Fail(WireEvent::kEof, "");
      return;
    case WireEvent::kError:
      Fail(WireEvent::kError, StrCat("the upstream connection failed: ", conn_->wire->error()));
      return;
    case WireEvent::kHandshakeDone:
    case WireEvent::kHandshakePaused:
      return;
  }
}

void SharedH2Conn::Receive() {
  if (!conn_ || !error_.empty()) return;
  Status st = codec().Receive(conn_->wire->input(), *this);
  if (!st) {
    Fail(WireEvent::kError, StrCat("malformed HTTP/2 from upstream: ", st.error().message));
    return;
  }
  ReportProgress();
  Notify();
  if (conn_ && !codec().keep_alive()) CheckDone();
}

void SharedH2Conn::ReportProgress() {
  if (!registry_ || !conn_ || !conn_->wire) return;
  uint64_t unreported = (conn_->wire->bytes_read() - conn_->bytes_in_reported) +
                        (conn_->wire->bytes_written() - conn_->bytes_out_reported);
  if (unreported == 0 || (!stream_ended_ && unreported < kReportEvery)) return;
  stream_ended_ = false;
  ReportBytes(*registry_, *conn_);
}

void SharedH2Conn::Notify() {
  std::vector<LeaseWire*> ready;
  bool settings = conn_ && codec().peer_settings_received();
  for (auto& [lease, unused] : leases_) {
    bool news = !lease->events_.empty() || (settings && lease->awaiting_settings_);
    if (news && lease->reading_) ready.push_back(lease);
  }
  // A lease's exchange may end (and free other leases of the same client) while told.
  for (LeaseWire* lease : ready) {
    if (leases_.contains(lease)) lease->Tell(WireEvent::kReadable);
  }
}

void SharedH2Conn::Fail(WireEvent event, std::string error) {
  if (event == WireEvent::kEof) {
    eof_ = true;
  } else if (error_.empty()) {
    error_ = error;
  }
  Notify();  // responses that arrived complete are taken first
  std::vector<LeaseWire*> leases;
  for (auto& [lease, unused] : leases_) leases.push_back(lease);
  for (LeaseWire* lease : leases) {
    if (!leases_.contains(lease)) continue;
    lease->eof_ = true;
    if (event == WireEvent::kError) lease->error_ = error_;
    lease->Tell(event);
  }
  CheckDone();
}

void SharedH2Conn::OnHead(http::StreamId id, http::Response&& response) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  it->second->Queue({.kind = LeaseWire::Event::Kind::kHead, .response = std::move(response)});
}

void SharedH2Conn::OnData(http::StreamId id, std::string_view data) {
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    codec().Consume(id, data.size());  // nobody reads it: the window goes back
    return;
  }
  it->second->Queue({.kind = LeaseWire::Event::Kind::kData, .data = std::string(data)});
}

void SharedH2Conn::OnTrailers(http::StreamId id, const HeaderList& trailers) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  it->second->Queue({.kind = LeaseWire::Event::Kind::kTrailers, .trailers = trailers});
}

void SharedH2Conn::OnEnd(http::StreamId id) {
  stream_ended_ = true;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  it->second->Queue({.kind = LeaseWire::Event::Kind::kEnd});
}

void SharedH2Conn::OnStreamReset(http::StreamId id, uint32_t code, const std::string& message) {
  stream_ended_ = true;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  it->second->Queue({.kind = LeaseWire::Event::Kind::kReset, .data = message, .code = code});
}

// ---- LeaseWire ------------------------------------------------------------------------------

LeaseWire::LeaseWire(SharedH2Conn& shared) : shared_(&shared), input_(evbuffer_new()) {}

LeaseWire::~LeaseWire() {
  if (shared_) shared_->Forget(*this);
  evbuffer_free(input_);
}

void LeaseWire::SetReading(bool enabled) {
  reading_ = enabled;
  if (enabled && !events_.empty() && shared_) shared_->Kick();
}

bool LeaseWire::peer_closed() const {
  if (!shared_ || eof_) return true;
  // Idle on a connection that takes no new stream: as good as closed for the next request.
  return ended_ && events_.empty() && !shared_->accepting();
}

void LeaseWire::Close(Linger) {
  observer_ = nullptr;
  if (shared_ && shared_->conn_ && name_ != 0) {
    shared_->streams_.erase(name_);
    if (shared_->codec().open(name_)) shared_->codec().Reset(name_, http::kResetCancel);
  }
  events_.clear();
}

void LeaseWire::Queue(Event event) {
  if (event.kind == Event::Kind::kData && !events_.empty() &&
      events_.back().kind == Event::Kind::kData) {
    events_.back().data.append(event.data);
    return;
  }
  events_.push_back(std::move(event));
}

void LeaseWire::Deliver(http::CodecEvents& events) {
  while (!events_.empty() && reading_ && events.Receiving()) {
    Event event = std::move(events_.front());
    events_.pop_front();
    switch (event.kind) {
      case Event::Kind::kHead:
        events.OnHead(caller_id_, std::move(event.response));
        break;
      case Event::Kind::kData:
        events.OnData(caller_id_, event.data);
        // Taken: the server may send that much more on this stream.
        if (shared_ && shared_->conn_) shared_->codec().Consume(name_, event.data.size());
        break;
      case Event::Kind::kTrailers:
        events.OnTrailers(caller_id_, event.trailers);
        break;
      case Event::Kind::kEnd:
        ended_ = true;
        events.OnEnd(caller_id_);
        break;
      case Event::Kind::kReset:
        ended_ = true;
        events.OnStreamReset(caller_id_, event.code, event.data);
        break;
    }
  }
}

void LeaseWire::Tell(WireEvent event) {
  if (observer_) observer_->OnWireEvent(*this, event);
}

void LeaseWire::Detach(std::string error) {
  shared_ = nullptr;
  eof_ = true;
  if (error_.empty() && !ended_) error_ = std::move(error);
}

// ---- LeaseCodec -----------------------------------------------------------------------------

LeaseCodec::~LeaseCodec() = default;

http::H2Codec* LeaseCodec::Stream() const {
  if (!wire_.shared_ || !wire_.shared_->conn_ || wire_.name_ == 0) return nullptr;
  return &wire_.shared_->codec();
}

Status LeaseCodec::Receive(evbuffer*, http::CodecEvents& events) {
  wire_.Deliver(events);
  return {};
}

Status LeaseCodec::ReceiveEof(http::CodecEvents& events) {
  wire_.Deliver(events);
  if (wire_.ended_ || !events.Receiving()) return {};
  wire_.ended_ = true;
  events.OnStreamReset(wire_.caller_id_, http::kResetCancel,
                       "the connection closed before the stream ended");
  return Fail("the HTTP/2 connection closed with the stream still open");
}

void LeaseCodec::SendHead(http::StreamId id, const http::Request& request) {
  if (wire_.shared_ && wire_.name_ != 0) {
    // A stream of this lease still open: this exchange gave it up.
    wire_.shared_->streams_.erase(wire_.name_);
    if (http::H2Codec* codec = Stream(); codec && codec->open(wire_.name_)) {
      codec->Reset(wire_.name_, http::kResetCancel);
    }
  }
  wire_.events_.clear();
  wire_.caller_id_ = id;
  wire_.ended_ = false;
  if (!wire_.shared_) {
    wire_.name_ = 0;
    wire_.Queue({.kind = LeaseWire::Event::Kind::kReset,
                 .data = wire_.error_.empty() ? std::string("the shared connection closed")
                                              : wire_.error_,
                 .code = http::kResetRefusedStream});
    return;
  }
  wire_.name_ = wire_.shared_->Open(wire_, request);
}

void LeaseCodec::SendData(http::StreamId, std::string_view data) {
  if (http::H2Codec* codec = Stream()) codec->SendData(wire_.name_, data);
}

void LeaseCodec::SendTrailers(http::StreamId, const HeaderList& trailers) {
  if (http::H2Codec* codec = Stream()) codec->SendTrailers(wire_.name_, trailers);
}

void LeaseCodec::SendEnd(http::StreamId) {
  if (http::H2Codec* codec = Stream()) codec->SendEnd(wire_.name_);
}

bool LeaseCodec::Reset(http::StreamId, uint32_t code) {
  if (http::H2Codec* codec = Stream()) {
    wire_.shared_->streams_.erase(wire_.name_);
    codec->Reset(wire_.name_, code);
  }
  wire_.events_.clear();
  wire_.ended_ = true;
  return true;
}

bool LeaseCodec::Writable(http::StreamId) const {
  http::H2Codec* codec = Stream();
  return codec && codec->Writable(wire_.name_);
}

bool LeaseCodec::keep_alive() const {
  return wire_.shared_ && wire_.shared_->conn_ && wire_.shared_->codec().keep_alive();
}

bool LeaseCodec::idle() const {
  http::H2Codec* codec = Stream();
  return wire_.events_.empty() && (!codec || !codec->open(wire_.name_));
}

std::optional<bool> LeaseCodec::AllowsExtendedConnect() {
  if (!wire_.shared_ || !wire_.shared_->conn_) return false;
  http::H2Codec& codec = wire_.shared_->codec();
  wire_.awaiting_settings_ = !codec.peer_settings_received();
  if (wire_.awaiting_settings_) return std::nullopt;
  return codec.peer_allows_extended_connect();
}

LeaseWire* AsLease(const UpstreamConn& conn) { return dynamic_cast<LeaseWire*>(conn.wire.get()); }

}  // namespace mitmd::proxy
