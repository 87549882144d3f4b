#include "flow/flow.h"

#include <openssl/rand.h>

#include <chrono>
#include <cstdio>

#include "core/strings.h"

namespace mitmd {

std::string_view ToString(FlowState state) {
  switch (state) {
    case FlowState::kLive: return "live";
    case FlowState::kHeld: return "held";
    case FlowState::kDone: return "done";
  }
  return "done";
}

std::optional<FlowState> FlowStateFromString(std::string_view text) {
  if (text == "live") return FlowState::kLive;
  if (text == "held") return FlowState::kHeld;
  if (text == "done") return FlowState::kDone;
  return std::nullopt;
}

void BodyRecord::Append(const char* data, size_t len, size_t cap) {
  size += len;
  if (content.size() < cap) {
    size_t take = std::min(len, cap - content.size());
    content.append(data, take);
    if (take < len) truncated = true;
  } else if (len > 0) {
    truncated = true;
  }
}

// scheme://host[:port]/path; for a CONNECT with no path (authority-form), host:port.
std::string HttpRequest::Url() const {
  std::string bracketed = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  // A CONNECT names only an authority (authority-form): that is its URL, as mitmproxy shows it.
  if (method == "CONNECT" && path.empty() && !host.empty()) return StrCat(bracketed, ":", port);
  bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  std::string authority = std::move(bracketed);
  if (!default_port && port != 0) authority += StrCat(":", port);
  return StrCat(scheme, "://", authority, path.empty() ? std::string("/") : path);
}

std::string NewFlowId() {
  uint8_t b[16];
  RAND_bytes(b, sizeof(b));
  // Version 7 (RFC 9562): the first 48 bits are the Unix time in milliseconds, so ids made one
  // after another sort together and the store's unique index on them grows at its right edge
  // (random version 4 ids sent every insert to a random page of an index larger than the cache).
  const auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  // 8-4-4-4-12 hex digits, written in place (one per keep-alive request: a hex string, five
  // substrings and their concatenation were a third of this function's instructions).
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(36, '-');
  size_t at = 0;
  for (size_t i = 0; i < sizeof(b); ++i) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
    id[at++] = kHex[b[i] >> 4];
    id[at++] = kHex[b[i] & 0xf];
  }
  return id;
}

}  // namespace mitmd
