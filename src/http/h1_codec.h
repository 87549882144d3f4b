#pragma once
// H1Codec: the Codec for HTTP/1.x over the exact-span Parser. Streams are the messages of the
// connection in order (1, 2, 3, ...): a server-side codec numbers requests as they arrive; a
// client-side codec answers each response to the request it sent first (pipelining order).
//
// A server-side codec stops after each complete request until Resume(): HTTP/1 answers
// requests one at a time, and the next request stays buffered while the current one runs.
//
// Outgoing bodies: raw spans from another HTTP/1 codec go out as they are; structured ones
// (SendData/SendTrailers/SendEnd) are framed by the head they follow: chunked when its final
// Transfer-Encoding is chunked, else as they are (Content-Length or close-delimited).

#include <deque>

#include "http/codec.h"
#include "http/h1_parser.h"

namespace mitmd::http {

class H1Codec : public Codec {
 public:
  enum class Side { kServer, kClient };
  // A connection's output stays below this much before Writable() turns false.
  static constexpr size_t kHighWater = 256 * 1024;

  H1Codec(Side side, ByteSink& out);

  Protocol protocol() const override { return Protocol::kHttp1; }
  Status Receive(evbuffer* in, CodecEvents& events) override;
  Status ReceiveEof(CodecEvents& events) override;
  void SendHead(StreamId id, const Request& request) override;
  void SendHead(StreamId id, const Response& response) override;
  void SendBodyRaw(StreamId id, std::string_view raw) override;
  void SendData(StreamId id, std::string_view data) override;
  void SendTrailers(StreamId id, const HeaderList& trailers) override;
  void SendEnd(StreamId id) override;
  // HTTP/1 cannot abandon one message and keep the connection: always false.
  bool Reset(StreamId id, uint32_t code) override;
  bool Writable(StreamId id) const override;

  void Resume() override { paused_ = false; }
  bool keep_alive() const override { return parser_.keep_alive(); }
  bool upgraded() const override { return parser_.upgraded(); }
  bool idle() const override { return parser_.idle() && expected_.empty(); }

 private:
  class Adapter;
  // How the body of the message last sent is framed on the wire.
  enum class OutFraming { kNone, kChunked, kAsIs };
  void StartOutgoing(const HeaderList& headers, bool bodyless);

  Side side_;
  ByteSink& out_;
  Parser parser_;
  bool paused_ = false;
  StreamId next_id_ = 1;          // server side: the next request's id
  StreamId current_ = 0;          // the message being read
  std::deque<StreamId> expected_; // client side: ids of requests sent, oldest first
  bool head_request_ = false;     // server side: the request being answered is a HEAD
  OutFraming out_framing_ = OutFraming::kNone;
};

}  // namespace mitmd::http
