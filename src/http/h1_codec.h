#pragma once
// H1Codec: the Codec for HTTP/1.x over the exact-span Parser. Streams are the messages of the
// connection in order (1, 2, 3, ...): a server-side codec numbers requests as they arrive; a
// client-side codec answers each response to the request it sent first (pipelining order).
//
// A server-side codec stops after each complete request until Resume(): HTTP/1 answers
// requests one at a time, and the next request stays buffered while the current one runs.

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

  Status Receive(evbuffer* in, CodecEvents& events) override;
  Status ReceiveEof(CodecEvents& events) override;
  void SendHead(StreamId id, const Request& request) override;
  void SendHead(StreamId id, const Response& response) override;
  void SendBodyRaw(StreamId id, std::string_view raw) override;
  bool Writable(StreamId id) const override;

  // Server side: read the next request (the previous one has been answered).
  void Resume() { paused_ = false; }
  bool paused() const { return paused_; }
  // For the last complete message: may the connection carry another?
  bool keep_alive() const { return parser_.keep_alive(); }
  // After a 101 or a CONNECT: the rest of the connection is not HTTP.
  bool upgraded() const { return parser_.upgraded(); }
  // Between messages (nothing of the next one read yet).
  bool idle() const { return parser_.idle(); }
  // Client side: requests sent whose response has not completed.
  size_t in_flight() const { return expected_.size(); }

 private:
  class Adapter;

  Side side_;
  ByteSink& out_;
  Parser parser_;
  bool paused_ = false;
  StreamId next_id_ = 1;          // server side: the next request's id
  StreamId current_ = 0;          // the message being read
  std::deque<StreamId> expected_; // client side: ids of requests sent, oldest first
};

}  // namespace mitmd::http
