#pragma once
// H2Codec: the Codec for HTTP/2 over nghttp2, sans-I/O (nghttp2_session_mem_recv/mem_send).
// A server-side codec reads the client's requests and sends responses; a client-side codec
// opens streams on an upstream connection and reads their responses. Stream ids are HTTP/2's
// own: a client-side codec picks them (OpenStream), a server-side one reports the client's.
//
// Heads keep their pseudo-headers in |headers|, first, as received (":method", ":scheme",
// ":authority", ":path"; ":status"), so the record shows what was on the wire; a head without
// them (from an HTTP/1 peer) is translated on the way out (translate.h).
//
// Flow control follows the slower side: the connection window is given back as soon as DATA
// arrives (one slow stream never stalls the others), a stream's window only when its owner
// says the bytes were taken (Consume). A stream's unconsumed bytes are thus bounded by the
// window advertised (kStreamWindow), whatever the peer sends. Bytes to send wait per stream
// until the peer's window opens; Writable() turns false above kStreamHighWater.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/codec.h"

namespace mitmd::http {

// What HTTP/2 adds to the codec events: the end of the connection. (A stream that ends
// without its message is CodecEvents::OnStreamReset: refused beyond a GOAWAY's last stream id
// too.)
class H2Events : public CodecEvents {
 public:
  // The peer sent GOAWAY: no new streams; those up to |last_id| still complete.
  virtual void OnGoaway(StreamId /*last_id*/, uint32_t /*code*/) {}
};

class H2Codec : public Codec {
 public:
  enum class Side { kServer, kClient };
  // Per-stream receive window we advertise: the most a stream buffers unconsumed.
  static constexpr uint32_t kStreamWindow = 256 * 1024;
  // The connection receive window (every stream's bytes together).
  static constexpr int32_t kConnectionWindow = 16 * 1024 * 1024;
  // Queued send bytes of one stream above which Writable() is false.
  static constexpr size_t kStreamHighWater = 256 * 1024;
  // The connection's output above which no more frames are produced until it drains.
  static constexpr size_t kOutputHighWater = 256 * 1024;
  static constexpr uint32_t kMaxConcurrentStreams = 100;

  // The preface (client) and SETTINGS are queued at once and go out with the first Flush().
  H2Codec(Side side, ByteSink& out);
  ~H2Codec() override;
  H2Codec(const H2Codec&) = delete;
  H2Codec& operator=(const H2Codec&) = delete;

  // Who hears of resets and GOAWAY whenever they happen (also while sending). Unset, the
  // |events| of Receive hear of them when they are H2Events.
  void set_listener(H2Events* listener) { listener_ = h2_events_ = listener; }

  // Codec.
  Protocol protocol() const override { return Protocol::kHttp2; }
  Status Receive(evbuffer* in, CodecEvents& events) override;
  Status ReceiveEof(CodecEvents& events) override;
  // Server side: the response head on |id| (its body follows). Client side: use OpenStream.
  void SendHead(StreamId id, const Request& request) override;
  void SendHead(StreamId id, const Response& response) override;
  // HTTP/2 has no framing to keep: the bytes are sent as DATA.
  void SendBodyRaw(StreamId id, std::string_view raw) override { SendData(id, raw); }
  bool Writable(StreamId id) const override;

  // Client side: a new stream carrying |request|; its id, or an error (GOAWAY received, no
  // stream ids left, too many streams open). |end_stream|: the request has no body.
  Result<StreamId> OpenStream(const Request& request, bool end_stream);
  // Server side: the response head; |end_stream| when it has no body.
  void SendResponse(StreamId id, const Response& response, bool end_stream);
  void SendData(StreamId id, std::string_view data) override;
  // The message on |id| is complete: END_STREAM after the queued data.
  void SendEnd(StreamId id) override;
  // Trailers end the message on |id|.
  void SendTrailers(StreamId id, const HeaderList& trailers) override;
  // RST_STREAM with |code| (NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, ...). Always true: only
  // that stream ends.
  bool Reset(StreamId id, uint32_t code) override;
  // No GOAWAY received and no connection error: new streams may come.
  bool keep_alive() const override { return !goaway_received_ && !failed_; }
  // No stream open.
  bool idle() const override { return streams_.empty(); }
  // |n| bytes received on |id| were taken by the other side: the peer may send that many more.
  void Consume(StreamId id, size_t n);
  // GOAWAY: streams already open finish, no new ones are accepted.
  void Shutdown(uint32_t code = NGHTTP2_NO_ERROR);

  // Produces the frames nghttp2 has ready, while the output stays below kOutputHighWater
  // (call again once it drained). Every Send/Receive call flushes already.
  void Flush();

  // Client side: may another stream be opened now (no GOAWAY, below the peer's limit)?
  bool CanOpenStream() const;
  // The received message on |id| is complete (END_STREAM seen). True right after OnHead for
  // a request without a body.
  bool RemoteEnded(StreamId id) const;
  bool goaway_received() const { return goaway_received_; }
  // Streams open (not yet closed) on this connection.
  size_t open_streams() const { return streams_.size(); }
  // The connection is finished: both sides said GOAWAY or a fatal error, nothing left to send.
  bool done() const;
  // Unconsumed received bytes of |id| (for tests and diagnostics).
  size_t unconsumed(StreamId id) const;
  // Bytes queued to send on |id| and not yet framed.
  size_t queued(StreamId id) const;

 private:
  struct Stream;
  struct Callbacks;

  Stream* Find(StreamId id);
  const Stream* Find(StreamId id) const;
  // Attaches the data source to a stream whose head is out and that has a body.
  void Submit(StreamId id, Stream& s);
  void Resume(StreamId id, Stream& s);

  Side side_;
  ByteSink& out_;
  nghttp2_session* session_ = nullptr;
  std::map<StreamId, std::unique_ptr<Stream>> streams_;
  CodecEvents* events_ = nullptr;    // during Receive
  H2Events* h2_events_ = nullptr;    // ... when it is one
  H2Events* listener_ = nullptr;
  bool goaway_received_ = false;
  bool failed_ = false;
  bool flushing_ = false;
};

// "CANCEL", "PROTOCOL_ERROR", ...: an HTTP/2 error code's name.
std::string_view H2ErrorName(uint32_t code);

}  // namespace mitmd::http
