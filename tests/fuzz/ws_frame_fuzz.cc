// Fuzzes the WebSocket frame reader. The first input byte chooses the direction (bit 0: client
// frames, which must be masked), permessage-deflate (bit 1, with no context takeover on bit 2),
// a small record cap (bit 3) and how the rest is cut into Feed calls. Besides the sanitizers'
// checks it aborts when a contract breaks: a message holds more than the cap, says it is whole
// while its payload is shorter than its size, or a close code appears on another opcode.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "http/ws_frame.h"

namespace {
[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "ws_frame_fuzz: invariant broken: %s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  mitmd::http::WsDeflate deflate;
  deflate.enabled = control & 2;
  deflate.no_context_takeover = control & 4;
  size_t cap = (control & 8) ? 16 : 1 << 20;
  mitmd::http::WsFrameReader reader(control & 1, deflate, cap, [&](mitmd::http::WsMessage&& m) {
    if (m.payload.size() > cap) Die("payload over the cap");
    if (!m.truncated && m.payload.size() != m.size) Die("whole message with a short payload");
    if (m.close_code && m.opcode != mitmd::http::WsOpcode::kClose) Die("close code on a non-close");
  });
  uint32_t state = control * 2654435761u + 1;
  size_t pos = 0;
  while (pos < input.size()) {
    state = state * 1103515245u + 12345u;
    size_t piece = (control & 0x10) ? input.size() : 1 + (state >> 16) % 64;
    std::string_view chunk = input.substr(pos, piece);
    pos += chunk.size();
    if (!reader.Feed(chunk)) break;
  }
  return 0;
}
