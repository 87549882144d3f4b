#pragma once
// Codec: one side of an HTTP connection, sans-I/O. Bytes in, events by stream out; messages in,
// bytes out. HTTP/1 (h1_codec.h) has one stream at a time per direction; HTTP/2 multiplexes
// many over one connection, which is why every event and call names its StreamId.
//
// A server-side codec reads requests and sends responses (the client's connection); a
// client-side codec sends requests and reads responses (an upstream connection).

#include <event2/buffer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "http/message.h"

namespace mitmd::http {

using StreamId = uint32_t;

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
  // Server side: a request head. Client side: a response head, interim 1xx ones included.
  virtual void OnHead(StreamId /*id*/, Request&& /*request*/) {}
  virtual void OnHead(StreamId /*id*/, Response&& /*response*/) {}
  // Body bytes framed as on the wire (HTTP/1: chunk lines and trailers included): what a peer
  // speaking the same framing receives unchanged. Each span comes before its OnData.
  virtual void OnBodyRaw(StreamId /*id*/, std::string_view /*raw*/) {}
  // The payload after transfer decoding.
  virtual void OnData(StreamId /*id*/, std::string_view /*data*/) {}
  virtual void OnTrailers(StreamId /*id*/, const HeaderList& /*trailers*/) {}
  // The message on |id| is complete.
  virtual void OnEnd(StreamId /*id*/) {}
  // Checked after every event: false stops the codec at once (its owner closed or handed the
  // connection on); what was not consumed stays in the input.
  virtual bool Receiving() const { return true; }
};

class Codec {
 public:
  virtual ~Codec() = default;

  // Consumes what |in| holds (draining what it used) and emits events. Malformed input is an
  // Error with a one-line message fit for a 400/502 page; the codec stays failed.
  virtual Status Receive(evbuffer* in, CodecEvents& events) = 0;
  // The peer closed its side: completes a close-delimited message or fails a cut-short one.
  virtual Status ReceiveEof(CodecEvents& events) = 0;

  virtual void SendHead(StreamId id, const Request& request) = 0;
  virtual void SendHead(StreamId id, const Response& response) = 0;
  // Body bytes exactly as a same-framing peer sent them (OnBodyRaw spans).
  virtual void SendBodyRaw(StreamId id, std::string_view raw) = 0;
  // Whether more may be sent on |id| now (connection output below its high-water mark, or
  // HTTP/2 flow-control window open).
  virtual bool Writable(StreamId id) const = 0;
};

}  // namespace mitmd::http
