#pragma once
// A small sans-I/O reader of HTTP/1.1 responses for the load generator: it finds where each
// response ends (Content-Length, chunked, close-delimited, bodiless statuses) and counts the body
// bytes without keeping them. It is independent of mitmd's codec on purpose.

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/result.h"

namespace mitmd::bench {

class ResponseReader {
 public:
  // Prepares for the next response.
  void Reset();
  // Consumes bytes of the response; returns how many were used (fewer than |len| only once the
  // response is complete), or an error naming what was malformed.
  Result<size_t> Feed(const char* data, size_t len);
  // The peer closed the connection: completes a close-delimited body, an error otherwise.
  Status Eof();

  bool done() const { return state_ == State::kDone; }
  int status() const { return status_; }
  // The response said "Connection: close" or was close-delimited.
  bool must_close() const { return must_close_; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  enum class State { kHead, kLengthBody, kChunkSize, kChunkData, kChunkEnd, kTrailer, kCloseBody,
                     kDone };
  Status ParseHead();
  Status ParseChunkSize();

  State state_ = State::kHead;
  std::string line_;  // the head, or a chunk-size or trailer line, being accumulated
  int status_ = 0;
  bool must_close_ = false;
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
};

}  // namespace mitmd::bench
