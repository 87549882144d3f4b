#pragma once
// A sans-I/O HTTP/1.1 message parser: bytes in, events out. No sockets, no allocation per byte.
//
// One Parser reads one direction of a connection: requests (client to server) or responses
// (server to client). It keeps header order and case, and reports the exact raw bytes of every
// head and body so that a relay that forwards them reproduces the message byte for byte.
//
// Framing (RFC 9112): Content-Length, chunked (with trailers), close-delimited responses,
// responses without a body (HEAD, 1xx, 204, 304, 2xx to CONNECT), interim 1xx responses before
// the final one, and Upgrade (101) / CONNECT after which the stream is no longer HTTP.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "core/result.h"
#include "http/headers.h"

namespace mitmd::http {

struct RequestHead {
  std::string method;
  std::string target;   // as sent: origin-form, absolute-form, authority-form or "*"
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  HeaderList headers;
};

struct ResponseHead {
  std::string version;
  int status = 0;
  std::string reason;
  HeaderList headers;
};

struct ParserLimits {
  size_t max_head_bytes = 64 * 1024;  // start line + headers
  size_t max_headers = 256;
  size_t max_chunk_line = 1024;       // chunk-size line incl. extensions
};

// What a Parser reports. Every byte fed to Feed() that belongs to a message is reported exactly
// once, either as the |raw| of a head or as an OnBodyRaw span, in order.
class ParserEvents {
 public:
  virtual ~ParserEvents() = default;
  virtual void OnRequestHead(const RequestHead& head, std::string_view raw) {}
  // Also called for each interim 1xx response (status < 200, except 101).
  virtual void OnResponseHead(const ResponseHead& head, std::string_view raw) {}
  // Bytes after the head, framing included (chunk-size lines, trailers).
  virtual void OnBodyRaw(std::string_view raw) {}
  // The payload after transfer decoding, for recording.
  virtual void OnBodyData(std::string_view data) {}
  virtual void OnTrailers(const HeaderList& trailers) {}
  // The message (final response, or request) is complete.
  virtual void OnMessageComplete() {}
};

class Parser {
 public:
  enum class Kind { kRequest, kResponse };

  explicit Parser(Kind kind, ParserLimits limits = {});

  // Consumes bytes from |data| and emits events. Returns how many bytes were consumed; it stops
  // early right after a message completes (so the caller can act between messages, then feed
  // the rest) and after an upgrade (the rest is not HTTP). A malformed message is an Error whose
  // message is one line fit for a 400 page, e.g. "invalid chunk size"; the parser then stays
  // failed.
  Result<size_t> Feed(std::string_view data, ParserEvents& events);

  // The peer closed its side. Completes a close-delimited response body (emitting
  // OnMessageComplete); fails when a message was cut short ("connection closed before the
  // response body was complete"). Between messages it is not an error.
  Status FeedEof(ParserEvents& events);

  // Responses only: the method of the next request this connection will answer, in order
  // (call once per forwarded request). Decides HEAD and CONNECT framing.
  void ExpectResponseTo(std::string_view method);

  // True between messages (nothing of the next message consumed yet).
  bool idle() const;
  // After a 101 response, a 2xx answer to CONNECT, or a CONNECT request: the stream is now
  // opaque. Feed() consumes nothing more.
  bool upgraded() const;
  // For the last completed message: may the connection carry another one? (HTTP/1.0 without
  // keep-alive, "Connection: close" and close-delimited bodies say no.)
  bool keep_alive() const;
  // Bytes of the current head buffered so far (for diagnostics and limits).
  size_t buffered_head_bytes() const;

 private:
  enum class State {
    kStartLine,   // accumulating a head
    kBodyLength,  // Content-Length bytes remain
    kChunkSize,
    kChunkData,
    kChunkDataEnd,  // CRLF after chunk data
    kTrailers,
    kBodyUntilClose,
    kUpgraded,
    kFailed,
  };

  Kind kind_;
  ParserLimits limits_;
  State state_ = State::kStartLine;
  std::string head_buf_;  // the head being accumulated (raw)
  uint64_t remaining_ = 0;
  bool keep_alive_ = true;
  bool message_keep_alive_ = true;
  std::deque<std::string> expected_methods_;
  std::string error_;
  // Implementation state may be added freely below.
  std::string line_buf_;
  HeaderList trailers_;
  bool in_message_ = false;
  bool pending_upgrade_ = false;
};

}  // namespace mitmd::http
