#pragma once
// H2Codec: the Codec for HTTP/2 over nghttp2, sans-I/O (nghttp2_session_mem_recv/mem_send).
// A server-side codec reads the client's requests and sends responses; a client-side codec
// opens streams on an upstream connection and reads their responses. A server-side codec
// reports the client's stream ids; a client-side one names each stream as its caller did in
// SendHead (HTTP/2's own ids are picked by nghttp2 and stay inside).
//
// Heads keep their pseudo-headers in |headers|, first, as received (":method", ":scheme",
// ":authority", ":path"; ":status"), so the record shows what was on the wire; a head without
// them (from an HTTP/1 peer) is translated on the way out (translate.h).
//
// Flow control follows the slower side: the connection window is given back as soon as DATA
// arrives (one slow stream never stalls the others). On both sides (a client connection, or an
// upstream one, that many exchanges share) a stream's window goes back only when its owner says
// the bytes were taken (Consume), so a stream's unconsumed bytes are bounded by the window
// advertised (kStreamWindow) whatever the peer sends. Bytes to send wait per stream until the
// peer's window opens; Writable() turns false above kStreamHighWater.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/codec.h"

namespace mitmd::http {

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
  // |scheme| is the :scheme of requests that arrive without one (from an HTTP/1 client).
  H2Codec(Side side, ByteSink& out, std::string_view scheme = "https");
  ~H2Codec() override;
  H2Codec(const H2Codec&) = delete;
  H2Codec& operator=(const H2Codec&) = delete;

  // Codec. A stream the peer resets, or one refused after a GOAWAY, is OnStreamReset.
  Protocol protocol() const override { return Protocol::kHttp2; }
  Status Receive(evbuffer* in, CodecEvents& events) override;
  Status ReceiveEof(CodecEvents& events) override;
  // Client side: opens a stream named |id| (its body follows, ended by SendEnd/SendTrailers).
  // Refused (after a GOAWAY), the stream gets OnStreamReset from the next Receive.
  void SendHead(StreamId id, const Request& request) override;
  // Server side: the response head on |id| (its body follows).
  void SendHead(StreamId id, const Response& response) override;
  // HTTP/2 has no framing to keep: the bytes are sent as DATA.
  void SendBodyRaw(StreamId id, std::string_view raw) override { SendData(id, raw); }
  void SendData(StreamId id, std::string_view data) override;
  // Trailers end the message on |id|.
  void SendTrailers(StreamId id, const HeaderList& trailers) override;
  // The message on |id| is complete: END_STREAM after the queued data.
  void SendEnd(StreamId id) override;
  // RST_STREAM with |code|; the other streams go on.
  bool Reset(StreamId id, uint32_t code) override;
  bool Writable(StreamId id) const override;
  // No GOAWAY either way, no connection error.
  bool keep_alive() const override;
  // No stream open.
  bool idle() const override { return streams_.empty(); }

  // Client side: a new stream carrying |request|, named |id|, or an error (GOAWAY received, no
  // stream ids left, too many streams open, an extended CONNECT the server did not allow). |end_stream|: the request has no body.
  Status OpenStream(StreamId id, const Request& request, bool end_stream);
  // Server side: the response head; |end_stream| when it has no body.
  void SendResponse(StreamId id, const Response& response, bool end_stream);
  // |n| bytes received on |id| were taken by the other side: the peer may send that many more.
  void Consume(StreamId id, size_t n);
  // GOAWAY: streams already open finish, no new ones are accepted.
  void Shutdown(uint32_t code = NGHTTP2_NO_ERROR);

  // Server side: response heads are then held until their body, their end or the next Flush,
  // and |fn| is called when one is held (the owner arranges a Flush on the next loop turn).
  void set_on_deferred(std::function<void()> fn) { on_deferred_ = std::move(fn); }

  // Produces the frames nghttp2 has ready, while the output stays below kOutputHighWater
  // (call again once it drained). Every Send/Receive call flushes already.
  void Flush();

  // Client side: may another stream be opened now (no GOAWAY, below the peer's limit)?
  bool CanOpenStream() const;
  // The received message on |id| is complete (END_STREAM seen). True right after OnHead for
  // a request without a body.
  bool RemoteEnded(StreamId id) const;
  bool goaway_received() const { return goaway_received_; }
  // The peer's SETTINGS_MAX_CONCURRENT_STREAMS (kMaxConcurrentStreams until it sent one).
  uint32_t peer_max_streams() const;
  // Client side: the server sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441), so a
  // WebSocket may be opened on it as an extended CONNECT stream (:protocol websocket). False
  // until its SETTINGS arrived.
  bool peer_allows_extended_connect() const;
  // The peer's first SETTINGS frame arrived: what it allows is known.
  bool peer_settings_received() const { return peer_settings_received_; }
  // Stream |id| is open: not closed both ways, not reset.
  bool open(StreamId id) const { return Find(id) != nullptr; }
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

  // By the caller's name of a stream.
  Stream* Find(StreamId id);
  const Stream* Find(StreamId id) const;
  // By HTTP/2's stream id.
  Stream* FindWire(int32_t wire_id);
  // Attaches the data source to a stream whose head is out and that has a body.
  // HTTP/2's id of the stream the caller names |id|; 0 when there is none.
  int32_t WireId(StreamId id) const;
  void Resume(int32_t wire_id, Stream& s);
  // Submits a response head with the stream's data source attached.
  void SubmitHead(int32_t wire_id, Stream& s, HeaderList fields);
  void SubmitPendingHead(int32_t wire_id, Stream& s);

  Side side_;
  ByteSink& out_;
  nghttp2_session* session_ = nullptr;
  const std::string scheme_;
  std::map<int32_t, std::unique_ptr<Stream>> streams_;  // by HTTP/2 stream id
  std::map<StreamId, int32_t> wire_ids_;                // client side: caller's name -> id
  // Client side: streams that could not be opened, told at the next Receive.
  std::vector<std::pair<StreamId, std::string>> refused_;
  CodecEvents* events_ = nullptr;  // during Receive
  std::function<void()> on_deferred_;
  bool goaway_received_ = false;
  bool peer_settings_received_ = false;
  bool failed_ = false;
  bool flushing_ = false;
  bool in_recv_ = false;
};

// "CANCEL", "PROTOCOL_ERROR", ...: an HTTP/2 error code's name.
std::string_view H2ErrorName(uint32_t code);

}  // namespace mitmd::http
