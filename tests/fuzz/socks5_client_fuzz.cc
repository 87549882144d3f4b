// Fuzzes the SOCKS5 client (proxy/socks5_client.h) with whatever a next proxy may answer, with
// and without credentials. Aborts when it consumes more than it was given, sends after failing,
// or ends differently when the same bytes arrive one at a time instead of at once.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/socks5_client.h"

namespace {

using mitmd::proxy::Socks5Client;

[[noreturn]] void Die(const char* what, std::string_view input) {
  std::fprintf(stderr, "socks5_client_fuzz: %s (input %zu bytes)\n", what, input.size());
  std::abort();
}

struct Outcome {
  std::string sent;
  size_t consumed = 0;
  Socks5Client::State state;
};

Outcome Run(std::string_view in, bool creds, bool byte_by_byte) {
  Socks5Client c("example.com", 443, creds ? "user" : "", creds ? "pass" : "");
  Outcome out;
  out.sent = c.Start();
  size_t given = byte_by_byte ? 0 : in.size();
  for (;;) {
    if (byte_by_byte && given < in.size()) ++given;
    std::string_view window = in.substr(out.consumed, given - out.consumed);
    auto step = c.Feed(window);
    if (!step) {
      if (c.state() != Socks5Client::State::kFailed) Die("an error without kFailed", in);
      if (step.error().message.empty()) Die("an error without a message", in);
      break;
    }
    if (step->consumed > window.size()) Die("consumed more than given", in);
    out.consumed += step->consumed;
    out.sent += step->send;
    if (c.state() == Socks5Client::State::kOpen) break;
    if (step->consumed == 0 && (!byte_by_byte || given == in.size())) break;
  }
  out.state = c.state();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (bool creds : {false, true}) {
    Outcome whole = Run(in, creds, false);
    Outcome split = Run(in, creds, true);
    if (whole.state != split.state || whole.sent != split.sent ||
        whole.consumed != split.consumed) {
      Die("byte-by-byte differs from all at once", in);
    }
  }
  return 0;
}
