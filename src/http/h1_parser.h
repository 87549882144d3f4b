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
// once, either as the |raw| of a head or as an OnBodyRaw span, in order. Body spans point into
// the caller's input: they are valid only during the call.
class ParserEvents {
 public:
  virtual ~ParserEvents() = default;
  // |raw| includes any empty lines that preceded the start line (RFC 9112 section 2.2 tolerates
  // them), so raw heads plus raw body spans always reproduce the input.
  virtual void OnRequestHead(const RequestHead& /*head*/, std::string_view /*raw*/) {}
  // Also called for each interim 1xx response (status < 200, except 101).
  virtual void OnResponseHead(const ResponseHead& /*head*/, std::string_view /*raw*/) {}
  // Bytes after the head, framing included (chunk-size lines, trailers). Each span is reported
  // before the OnBodyData of the payload it carries; one Feed call yields few, large spans.
  virtual void OnBodyRaw(std::string_view /*raw*/) {}
  // The payload after transfer decoding, for recording.
  virtual void OnBodyData(std::string_view /*data*/) {}
  // Only when a chunked body ends with at least one trailer field; before OnMessageComplete.
  virtual void OnTrailers(const HeaderList& /*trailers*/) {}
  // The message (final response, or request) is complete. upgraded() and keep_alive() already
  // describe it.
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
  // failed. Ambiguous framing is malformed in both directions: Transfer-Encoding together with
  // Content-Length, differing Content-Lengths, chunked applied twice, Transfer-Encoding in
  // HTTP/1.0; so are obs-fold, whitespace before a colon and control characters in a head.
  // A request whose Transfer-Encoding does not end in chunked is malformed; such a response is
  // read until close. Events for a message are emitted only once its head is valid.
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
  // keep-alive, "Connection: close", close-delimited bodies and upgrades say no.) True before
  // the first message.
  bool keep_alive() const;
  // Bytes of the current head buffered so far (for diagnostics and limits).
  size_t buffered_head_bytes() const;

 private:
  enum class State {
    kHead,        // accumulating a head (leading empty lines included)
    kBodyLength,  // Content-Length bytes remain
    kChunkSize,   // accumulating a chunk-size line
    kChunkData,
    kChunkDataEnd,  // CRLF after chunk data
    kTrailers,
    kBodyUntilClose,
    kUpgraded,
    kFailed,
  };
  // What a consuming step tells the Feed loop.
  enum class Step { kContinue, kComplete, kFailed };
  struct Framing;

  Step ConsumeHead(std::string_view data, size_t& pos, ParserEvents& events);
  Step FinishHead(ParserEvents& events);
  Step FinishRequestHead(ParserEvents& events);
  Step FinishResponseHead(ParserEvents& events);
  // Appends up to and including the next LF to line_buf_: kComplete when the line is whole,
  // kFailed (no error set) when it would exceed |limit|.
  Step ConsumeLine(std::string_view data, size_t& pos, size_t limit);
  Step FinishChunkSizeLine();
  Step FinishTrailerLine();
  bool AnalyzeFraming(const HeaderList& headers, Framing& framing);
  bool ParseField(std::string_view line, HeaderList& out);
  void StartBody(const Framing& framing, bool close_delimited_allowed);
  void ResetHead();
  void Complete(ParserEvents& events);
  Step Failure(std::string message);

  Kind kind_;
  ParserLimits limits_;
  State state_ = State::kHead;
  std::string head_buf_;        // the head being accumulated (raw, leading empty lines included)
  size_t line_start_ = 0;       // offset in head_buf_ of the line being accumulated
  size_t start_line_at_ = 0;    // offset in head_buf_ of the start line
  bool saw_start_line_ = false;
  uint64_t remaining_ = 0;      // Content-Length or chunk bytes still to come
  bool keep_alive_ = true;
  bool message_keep_alive_ = true;
  std::deque<std::string> expected_methods_;
  std::string error_;
  std::string line_buf_;        // a chunk-size or trailer line spanning Feed calls
  HeaderList trailers_;
  size_t trailer_bytes_ = 0;
  bool cr_seen_ = false;        // in kChunkDataEnd: the CR of the CRLF was read
  bool in_message_ = false;     // an interim 1xx was read; the final response is still due
  bool pending_upgrade_ = false;
};

}  // namespace mitmd::http
