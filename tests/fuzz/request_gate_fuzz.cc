// Fuzzes the viewer's request gate (web/request_gate.h): any bytes, fed in pieces of any size,
// either pass in order (a prefix of the input, never more), wait, or end in one refusal after
// which nothing passes; the decision is asked only about heads announcing a body.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "web/request_gate.h"

namespace {

[[noreturn]] void Die(const char* what, std::string_view in) {
  std::fprintf(stderr, "request_gate_fuzz: %s (input of %zu bytes)\n", what, in.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the piece size and whether the owner lets bodies through.
  size_t piece = 1 + data[0] % 64;
  bool allow = (data[0] & 0x80) != 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  int asked = 0;
  mitmd::web::RequestGate gate(
      [&](const mitmd::web::RequestHead& head) -> std::optional<mitmd::web::Refusal> {
        ++asked;
        if (head.content_length == 0) Die("asked about a head without a body", in);
        if (allow) return std::nullopt;
        return mitmd::web::Refusal{403, "no"};
      },
      256);
  std::string passed, pending;
  bool refused = false;
  for (size_t at = 0; at < in.size() && !refused; at += piece) {
    pending.append(in.substr(at, piece));
    while (true) {
      auto step = gate.Next(pending, pending.size());
      if (step.kind == mitmd::web::RequestGate::Step::Kind::kNeedMore) break;
      if (step.kind == mitmd::web::RequestGate::Step::Kind::kRefuse) {
        if (step.refusal.status < 400 || step.refusal.status > 499) Die("refusal not a 4xx", in);
        if (mitmd::web::RefusalResponse(step.refusal).find("\r\n\r\n") == std::string::npos) {
          Die("refusal without a head", in);
        }
        refused = true;
        break;
      }
      if (step.bytes == 0 || step.bytes > pending.size()) Die("pass of a bad size", in);
      passed.append(pending, 0, step.bytes);
      pending.erase(0, step.bytes);
    }
  }
  if (refused && gate.Next(pending, pending.size()).kind !=
                     mitmd::web::RequestGate::Step::Kind::kNeedMore) {
    Die("a refused gate went on", in);
  }
  if (in.substr(0, passed.size()) != passed) Die("passed bytes are not the input's prefix", in);
  if (refused != (gate.state() == mitmd::web::RequestGate::State::kRefused)) {
    Die("the state does not say whether it refused", in);
  }
  return 0;
}
