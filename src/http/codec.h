#pragma once
// Codec: one side of an HTTP connection, sans-I/O. Bytes in, events by stream out; messages in,
// bytes out. HTTP/1 (h1_codec.h) carries one message at a time per direction; HTTP/2 carries
// many concurrent streams over one connection, which is why every event and call names its
// StreamId and why a codec may have several exchanges open at once.
//
// A server-side codec reads requests and sends responses (the client's connection); a
// client-side codec sends requests and reads responses (an upstream connection).
//
// Bodies go out one of two ways, never both for one message:
//   - raw (SendBodyRaw): the bytes exactly as a peer of the same protocol framed them (HTTP/1
//     chunk lines and trailers included). The HTTP/1 fast path: forwarded byte for byte.
//   - structured (SendData, then SendTrailers or SendEnd): payload bytes the codec frames
//     itself (HTTP/1 chunks or Content-Length bytes, HTTP/2 DATA frames). Whenever the two
//     sides speak different protocols, or a hook rewrote the body.

#include <event2/buffer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "http/message.h"

namespace mitmd::http {

using StreamId = uint32_t;

enum class Protocol { kHttp1, kHttp2 };
std::string_view ToString(Protocol protocol);  // "http/1.1", "h2" (the ALPN names)

// Why a stream ended before its message did: HTTP/2's RST_STREAM error codes (RFC 9113, 7),
// which an HTTP/2 codec sends and reports as they are (a peer may send codes not named here).
inline constexpr uint32_t kResetProtocolError = 0x1;
inline constexpr uint32_t kResetInternalError = 0x2;
inline constexpr uint32_t kResetRefusedStream = 0x7;
inline constexpr uint32_t kResetCancel = 0x8;

// Where a codec writes its bytes: a connection's output.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void Write(std::string_view data) = 0;
  // Bytes written and not yet on the wire (back-pressure).
  virtual size_t output_pending() const = 0;
};

class CodecEvents {
 public:
  virtual ~CodecEvents() = default;
  // Server side: a request head (a new stream). Client side: a response head, interim 1xx
  // ones included, for a stream this side opened with SendHead.
  virtual void OnHead(StreamId /*id*/, Request&& /*request*/) {}
  virtual void OnHead(StreamId /*id*/, Response&& /*response*/) {}
  // Body bytes framed as on the wire (HTTP/1: chunk lines and trailers included): what a peer
  // speaking the same framing receives unchanged. Each span comes before its OnData. A codec
  // without a byte-compatible framing (HTTP/2) never calls it.
  virtual void OnBodyRaw(StreamId /*id*/, std::string_view /*raw*/) {}
  // The payload after transfer decoding.
  virtual void OnData(StreamId /*id*/, std::string_view /*data*/) {}
  virtual void OnTrailers(StreamId /*id*/, const HeaderList& /*trailers*/) {}
  // The message on |id| is complete.
  virtual void OnEnd(StreamId /*id*/) {}
  // Stream |id| ended before its message did: the peer reset it (HTTP/2 RST_STREAM), it was
  // refused, or the codec found it malformed. It gets no more events; the connection and its
  // other streams go on. |message| says why in words fit for a flow's error.
  virtual void OnStreamReset(StreamId /*id*/, uint32_t /*code*/, const std::string& /*message*/) {}
  // Checked after every event: false stops the codec at once (its owner closed or handed the
  // connection on); what was not consumed stays in the input.
  virtual bool Receiving() const { return true; }
};

class Codec {
 public:
  virtual ~Codec() = default;

  virtual Protocol protocol() const = 0;

  // Consumes what |in| holds (draining what it used) and emits events. Malformed input that
  // breaks the whole connection is an Error with a one-line message fit for a 400/502 page;
  // the codec stays failed. (A malformed stream of a multiplexed codec is OnStreamError.)
  virtual Status Receive(evbuffer* in, CodecEvents& events) = 0;
  // The peer closed its side: completes a close-delimited message or fails a cut-short one.
  virtual Status ReceiveEof(CodecEvents& events) = 0;

  // Opens (client side) or answers (server side) stream |id|. Client side, HTTP/1 names the
  // stream |id| in its events; a multiplexed codec picks its own ids (H2Codec::OpenStream).
  virtual void SendHead(StreamId id, const Request& request) = 0;
  virtual void SendHead(StreamId id, const Response& response) = 0;
  // Body bytes exactly as a same-protocol peer framed them (OnBodyRaw spans); only between
  // two codecs of the same protocol() that has raw framing (HTTP/1).
  virtual void SendBodyRaw(StreamId id, std::string_view raw) = 0;
  // Payload bytes of the message on |id|; the codec frames them.
  virtual void SendData(StreamId id, std::string_view data) = 0;
  // Ends the message on |id| with trailer fields. A framing that cannot carry them (HTTP/1
  // without chunked encoding) ends the message and drops them; the caller records that.
  virtual void SendTrailers(StreamId id, const HeaderList& trailers) = 0;
  // Ends the message on |id| (after SendHead and any SendData).
  virtual void SendEnd(StreamId id) = 0;
  // Abandons stream |id| mid-message. True when only |id| ends (HTTP/2 RST_STREAM); false
  // when the protocol cannot end one message alone (HTTP/1): the caller closes the connection.
  virtual bool Reset(StreamId id, uint32_t code) = 0;
  // Whether more may be sent on |id| now (connection output below its high-water mark, or
  // HTTP/2 flow-control window open).
  virtual bool Writable(StreamId id) const = 0;

  // Server side: the owner is ready for more requests. HTTP/1 reads one request at a time and
  // stops after each until this is called; a multiplexed codec reads on regardless.
  virtual void Resume() {}
  // After the last complete message, may the connection carry another (HTTP/1 keep-alive;
  // HTTP/2: no GOAWAY)?
  virtual bool keep_alive() const = 0;
  // After a 101 or a CONNECT: the rest of the connection is not this protocol.
  virtual bool upgraded() const { return false; }
  // No message in progress either way: nothing read of a next one, nothing awaiting a
  // response. An idle client-side codec may go back to the pool.
  virtual bool idle() const = 0;
};

}  // namespace mitmd::http
