#pragma once
// gRPC message framing (the HTTP/2 body of a call): each message is a 1-byte compressed flag,
// a 4-byte big-endian length and the message. Pure functions over a recorded body.

#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/headers.h"

namespace mitmd::decode {

struct GrpcMessage {
  bool compressed = false;
  uint32_t length = 0;     // as the prefix says
  std::string_view data;   // what the body holds of it (less when cut short)
  bool complete = true;    // all |length| bytes are present
};

// The messages of |body|, in order; a last one cut short (a capped record, a failed call) is
// reported with complete = false.
std::vector<GrpcMessage> SplitGrpc(std::string_view body);

// True for content-type application/grpc, application/grpc+proto, application/grpc-web...
bool IsGrpcContentType(std::string_view content_type);

// The view of one direction of a call: {"messages":[{"length","compressed","complete",
// "base64","protobuf"|"protobuf_error"}]}, |truncated| when the body record was capped.
nlohmann::json GrpcMessagesJson(std::string_view body, bool truncated);

// grpc-status and grpc-message from the response trailers (or the headers of a
// trailers-only response): {"status":0,"status_name":"OK","message":"..."}; null when absent.
nlohmann::json GrpcStatusJson(const HeaderList& headers, const HeaderList& trailers);

}  // namespace mitmd::decode
