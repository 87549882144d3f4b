// Fuzzes the SOCKS5 handshake (proxy/socks5.h), with and without a required token. Aborts when
// the parser consumes more than it was given, yields a target that breaks its contract (empty
// host, port 0, bytes that could split a header), or answers differently when the same bytes
// arrive one at a time instead of at once.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/socks5.h"

namespace {

using mitmd::proxy::Socks5Handshake;

[[noreturn]] void Die(const char* what, std::string_view input) {
  std::fprintf(stderr, "socks5_fuzz: %s (input %zu bytes)\n", what, input.size());
  std::abort();
}

struct Outcome {
  std::string reply;
  std::string target;  // "host port", empty when none
  size_t consumed = 0;
  Socks5Handshake::State state;
};

Outcome Run(std::string_view in, std::string token, bool byte_by_byte) {
  Socks5Handshake hs(std::move(token));
  Outcome out;
  size_t given = byte_by_byte ? 0 : in.size();
  std::string buffered;
  for (;;) {
    if (byte_by_byte && given < in.size()) ++given;
    std::string_view window = in.substr(out.consumed, given - out.consumed);
    Socks5Handshake::Step step = hs.Feed(window);
    if (step.consumed > window.size()) Die("consumed more than given", in);
    out.consumed += step.consumed;
    out.reply += step.reply;
    if (step.target) {
      if (!out.target.empty()) Die("two targets", in);
      const auto& t = *step.target;
      if (t.host.empty()) Die("empty host", in);
      if (t.port == 0) Die("port 0", in);
      for (char c : t.host) {
        if (c == '\r' || c == '\n' || c == '\0' || c == ' ' || c == '/')
          Die("host holds a separator", in);
      }
      out.target = t.host + " " + std::to_string(t.port);
    }
    if (!step.error.empty() && hs.state() != Socks5Handshake::State::kFailed) {
      Die("an error without the failed state", in);
    }
    bool finished = hs.state() == Socks5Handshake::State::kDone ||
                    hs.state() == Socks5Handshake::State::kFailed;
    if (finished || given == in.size()) break;
  }
  out.state = hs.state();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (const char* token : {"", "s3cret"}) {
    Outcome whole = Run(in, token, false);
    Outcome bytes = Run(in, token, true);
    if (whole.reply != bytes.reply || whole.target != bytes.target || whole.state != bytes.state ||
        whole.consumed != bytes.consumed) {
      Die("whole and byte-by-byte feeding differ", in);
    }
  }
  return 0;
}
