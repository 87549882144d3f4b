#include "decode/grpc.h"

#include <string>

#include "core/strings.h"
#include "decode/protobuf.h"

namespace mitmd::decode {
namespace {

constexpr size_t kPrefix = 5;

// The status codes of gRPC (grpc/status.h), by value.
constexpr std::string_view kStatusNames[] = {
    "OK",        "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",       "DATA_LOSS",
    "UNAUTHENTICATED"};

// grpc-message is percent-encoded (the gRPC HTTP/2 protocol spec).
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::vector<GrpcMessage> SplitGrpc(std::string_view body) {
  std::vector<GrpcMessage> out;
  while (!body.empty()) {
    GrpcMessage m;
    if (body.size() < kPrefix) {
      m.complete = false;
      m.data = {};
      out.push_back(m);
      break;
    }
    m.compressed = body[0] & 1;
    m.length = (uint32_t{static_cast<uint8_t>(body[1])} << 24) |
               (uint32_t{static_cast<uint8_t>(body[2])} << 16) |
               (uint32_t{static_cast<uint8_t>(body[3])} << 8) | static_cast<uint8_t>(body[4]);
    body.remove_prefix(kPrefix);
    m.complete = body.size() >= m.length;
    m.data = body.substr(0, m.length);
    body.remove_prefix(m.data.size());
    out.push_back(m);
  }
  return out;
}

bool IsGrpcContentType(std::string_view content_type) {
  std::string_view type = TrimOws(content_type.substr(0, content_type.find(';')));
  return type.size() >= 16 && EqualsIgnoreCase(type.substr(0, 16), "application/grpc") &&
         (type.size() == 16 || type[16] == '+' || type[16] == '-');
}

nlohmann::json GrpcMessagesJson(std::string_view body, bool truncated) {
  nlohmann::json messages = nlohmann::json::array();
  for (const GrpcMessage& m : SplitGrpc(body)) {
    nlohmann::json j = {{"length", m.length},
                        {"compressed", m.compressed},
                        {"complete", m.complete},
                        {"base64", Base64Encode(m.data)}};
    if (m.compressed) {
      j["protobuf_error"] = "compressed with the call's grpc-encoding: not decoded";
    } else if (!m.complete) {
      j["protobuf_error"] = truncated ? "cut short by the body record cap" : "cut short";
    } else if (auto fields = DecodeProtobuf(m.data)) {
      j["protobuf"] = std::move(*fields);
    } else {
      j["protobuf_error"] = fields.error().message;
    }
    messages.push_back(std::move(j));
  }
  return {{"messages", std::move(messages)}, {"truncated", truncated}};
}

nlohmann::json GrpcStatusJson(const HeaderList& headers, const HeaderList& trailers) {
  const std::string* status = FindHeader(trailers, "grpc-status");
  const std::string* message = FindHeader(trailers, "grpc-message");
  if (!status) {
    status = FindHeader(headers, "grpc-status");
    message = FindHeader(headers, "grpc-message");
  }
  if (!status) return nullptr;
  int code = -1;
  if (!status->empty() && status->size() <= 3 &&
      status->find_first_not_of("0123456789") == std::string::npos) {
    code = std::stoi(*status);
  }
  nlohmann::json j = {{"status", code}};
  if (code >= 0 && static_cast<size_t>(code) < std::size(kStatusNames)) {
    j["status_name"] = kStatusNames[code];
  }
  if (message) j["message"] = PercentDecode(*message);
  return j;
}

}  // namespace mitmd::decode
