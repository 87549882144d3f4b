#pragma once
// A raw TCP client for sending bytes no well-behaved client would send (malformed proxy requests).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::testing {

struct RawReply {
  std::string data;     // everything received
  bool closed = false;  // the peer closed the connection (rather than the timeout ending it)
};

// Connects to host:port (an IPv4 or IPv6 literal), sends |request|, and reads until the peer
// closes or |timeout| has passed since the connection was made.
Result<RawReply> RawExchange(const std::string& host, uint16_t port, std::string_view request,
                             std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace mitmd::testing
