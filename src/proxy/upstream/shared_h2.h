#pragma once
// SharedH2Conn: one upstream HTTP/2 connection that many exchanges use at once, from any client
// connection of the worker. The pool (pool.h) hands out leases: each lease is an UpstreamConn of
// its own whose wire (LeaseWire) and codec (LeaseCodec) stand for one stream at a time of the
// shared connection, so an Exchange drives it exactly as it drives a connection of its own.
//
// The shared connection observes the real wire at all times: it answers PINGs and SETTINGS while
// no stream is open, receives every frame, and queues each stream's events on its lease until
// that lease's exchange reads them (a kReadable on the lease wire). A stream's window goes back
// to the server only as its exchange takes the bytes, and an exchange whose client reads slowly
// stops reading its lease, never the connection: the server holds the rest of that stream back.
//
// After GOAWAY no stream is opened on it (the pool dials a fresh connection), the streams in
// flight finish, and it closes once none is left. A connection that fails or closes tells every
// lease (kEof/kError on its wire) after the events already received were read.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "http/h2_codec.h"
#include "proxy/timers.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

class LeaseWire;

class SharedH2Conn : private WireObserver, private http::CodecEvents {
 public:
  // Called when the connection is done (dead, drained after GOAWAY, or idle too long): the
  // owner removes it, on a later loop turn, with TakeConn.
  using OnDone = std::function<void(SharedH2Conn&, std::string_view reason)>;

  // |conn| has an http::H2Codec (a connection that negotiated h2). |idle_timeout|: how long it
  // stays open with no lease. |registry| (may be null; outlives this) learns the connection's
  // byte counts while it is open: whenever a stream ends, and every kReportEvery bytes.
  SharedH2Conn(std::unique_ptr<UpstreamConn> conn, Timers& timers,
               std::chrono::milliseconds idle_timeout, OnDone on_done,
               ConnectionRegistry* registry = nullptr);
  static constexpr uint64_t kReportEvery = 256 * 1024;
  ~SharedH2Conn() override;
  SharedH2Conn(const SharedH2Conn&) = delete;
  SharedH2Conn& operator=(const SharedH2Conn&) = delete;

  const UpstreamKey& key() const { return conn_->key; }
  uint64_t id() const { return conn_->id; }
  // Alive, no GOAWAY, and a lease more stays within the server's concurrent-stream limit.
  bool CanLease() const;
  // A new lease (check CanLease first).
  std::unique_ptr<UpstreamConn> Lease();
  size_t leases() const { return leases_.size(); }
  // Alive and taking new streams (no GOAWAY).
  bool accepting() const;
  // The connection, for its owner to close once it is done.
  std::unique_ptr<UpstreamConn> TakeConn();

 private:
  friend class LeaseWire;
  friend class LeaseCodec;

  // WireObserver: the real connection.
  void OnWireEvent(Wire& wire, WireEvent event) override;
  // http::CodecEvents: the server's frames, queued on the lease whose stream they belong to.
  void OnHead(http::StreamId id, http::Response&& response) override;
  void OnData(http::StreamId id, std::string_view data) override;
  void OnTrailers(http::StreamId id, const HeaderList& trailers) override;
  void OnEnd(http::StreamId id) override;
  void OnStreamReset(http::StreamId id, uint32_t code, const std::string& message) override;

  http::H2Codec& codec();
  // Reads what arrived and tells the leases that have events.
  void Receive();
  // Tells every lease with queued events and reading on (kReadable).
  void Notify();
  // The connection ended: leases read what they have, then get |event| (kEof or kError).
  void Fail(WireEvent event, std::string error);
  // The byte counts to the registry, when a stream ended or enough went unreported: the
  // Connections view follows a shared connection live, not only once it closes.
  void ReportProgress();
  // Closes the connection when nothing uses it any more and it cannot be used again.
  void CheckDone();
  void Done(std::string_view reason);

  // For leases.
  http::StreamId Open(LeaseWire& lease, const http::Request& request);
  void Forget(LeaseWire& lease);
  void Kick() { kick_timer_->Arm(std::chrono::milliseconds(0)); }

  std::unique_ptr<UpstreamConn> conn_;
  OnDone on_done_;
  ConnectionRegistry* registry_;
  bool stream_ended_ = false;  // since the last report
  std::map<LeaseWire*, bool> leases_;             // value unused: a set in creation order
  std::map<http::StreamId, LeaseWire*> streams_;  // open streams by their name on the codec
  http::StreamId next_name_ = 1;
  uint64_t leased_ = 0;  // leases handed out so far
  std::string error_;    // why the connection failed; empty while it works
  bool eof_ = false;
  bool done_ = false;
  std::chrono::milliseconds idle_timeout_;
  std::unique_ptr<Timer> idle_timer_;
  // The next loop turn: bytes that arrived unobserved, events of a lease that reads again.
  std::unique_ptr<Timer> kick_timer_;
};

// One stream at a time of a SharedH2Conn, as the Wire of a lease. It carries no bytes itself:
// its events tell the exchange that its stream has news (kReadable), that the output drained,
// or that the shared connection ended.
class LeaseWire : public Wire {
 public:
  explicit LeaseWire(SharedH2Conn& shared);
  ~LeaseWire() override;

  // Wire.
  evbuffer* input() override { return input_; }
  void SetReading(bool enabled) override;
  bool reading() const override { return reading_; }
  void StartTls(bssl::UniquePtr<SSL>) override {}
  void ContinueHandshake() override {}
  SSL* ssl() const override { return nullptr; }
  bool handshake_done() const override { return true; }
  TlsInfo DescribeTls() const override { return {}; }
  void ShutdownWrite() override {}
  bool truncated() const override { return false; }
  void SkipCloseNotify() override {}
  bool eof() const override { return eof_ && events_.empty(); }
  // The shared connection closed, or takes no new stream (GOAWAY) and this lease has none.
  bool peer_closed() const override;
  const std::string& error() const override { return error_; }
  uint64_t bytes_read() const override { return 0; }  // the shared connection reports its own
  uint64_t bytes_written() const override { return 0; }
  std::string local_address() const override { return {}; }
  void Close(Linger) override;
  void set_observer(WireObserver* observer) override { observer_ = observer; }
  // ByteSink: nothing is written to a lease directly.
  void Write(std::string_view) override {}
  size_t output_pending() const override { return 0; }

 private:
  friend class SharedH2Conn;
  friend class LeaseCodec;

  struct Event {
    enum class Kind { kHead, kData, kTrailers, kEnd, kReset } kind;
    http::Response response;
    std::string data;
    HeaderList trailers;
    uint32_t code = 0;
  };

  void Queue(Event event);
  // Hands the queued events to |events| while this lease reads and |events| receives.
  void Deliver(http::CodecEvents& events);
  void Tell(WireEvent event);
  void Detach(std::string error);

  SharedH2Conn* shared_;  // null once the shared connection is gone
  WireObserver* observer_ = nullptr;
  evbuffer* input_;  // always empty: the codec reads the queued events instead
  bool reading_ = true;
  http::StreamId caller_id_ = 0;  // the exchange's name for the stream
  http::StreamId name_ = 0;       // the shared codec's name for it; 0: none open
  std::deque<Event> events_;
  bool ended_ = true;  // the current stream's response ended (or none was opened)
  bool awaiting_settings_ = false;  // told (kReadable) when the server's SETTINGS arrive
  bool eof_ = false;
  std::string error_;
};

// A lease's codec: the client side of one stream at a time on the shared H2Codec.
class LeaseCodec : public http::Codec {
 public:
  explicit LeaseCodec(LeaseWire& wire) : wire_(wire) {}
  ~LeaseCodec() override;

  http::Protocol protocol() const override { return http::Protocol::kHttp2; }
  Status Receive(evbuffer* in, http::CodecEvents& events) override;
  Status ReceiveEof(http::CodecEvents& events) override;
  // Opens a new stream (a previous one still open is reset). Refused (GOAWAY, the server's
  // limit), the stream gets OnStreamReset at the next Receive.
  void SendHead(http::StreamId id, const http::Request& request) override;
  void SendHead(http::StreamId, const http::Response&) override {}
  void SendBodyRaw(http::StreamId id, std::string_view raw) override { SendData(id, raw); }
  void SendData(http::StreamId id, std::string_view data) override;
  void SendTrailers(http::StreamId id, const HeaderList& trailers) override;
  void SendEnd(http::StreamId id) override;
  bool Reset(http::StreamId id, uint32_t code) override;
  bool Writable(http::StreamId id) const override;
  bool keep_alive() const override;
  bool idle() const override;

  // RFC 8441: whether an extended CONNECT may be sent on the shared connection, as its server's
  // SETTINGS say (false once the connection is gone). Unknown (nullopt) until they arrive: the
  // lease's wire then gets kReadable when they do (kEof or kError if the connection ends first).
  std::optional<bool> AllowsExtendedConnect();

 private:
  // The shared codec, when this lease has a stream open on it.
  http::H2Codec* Stream() const;
  LeaseWire& wire_;
};

// |conn|'s wire when it is a lease of a SharedH2Conn, else null.
LeaseWire* AsLease(const UpstreamConn& conn);

}  // namespace mitmd::proxy
