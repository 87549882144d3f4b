// Fuzzes what the proxy reads from a request line and Host header: the CONNECT authority, the
// absolute-form target, the Host value, and the head rewrite of plain HTTP proxying. Aborts when
// a parsed target breaks its contract (a host with bytes that could split a header or a URL, a
// CONNECT port of 0) or the rewrite loses the request line.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/request_target.h"

namespace {

[[noreturn]] void Die(const char* what, std::string_view input) {
  std::fprintf(stderr, "request_target_fuzz: %s (input %zu bytes)\n", what, input.size());
  std::abort();
}

void CheckHost(const mitmd::proxy::Target& t, std::string_view input) {
  for (char c : t.host) {
    if (c == '\r' || c == '\n' || c == '\0' || c == ' ' || c == '/') Die("host holds a separator", input);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto t = mitmd::proxy::ParseAuthorityForm(in)) {
    CheckHost(*t, in);
    if (t->host.empty()) Die("authority-form without a host", in);
    if (t->port == 0) Die("authority-form with port 0", in);
  }
  if (auto t = mitmd::proxy::ParseAbsoluteForm(in)) {
    CheckHost(*t, in);
    if (t->scheme != "http" && t->scheme != "https") Die("unexpected scheme", in);
    if (t->path.empty() || t->path[0] != '/') Die("path does not start with /", in);
  }
  mitmd::proxy::Target host = mitmd::proxy::ParseHostHeader(in, 80);
  (void)host;
  // The input as a request head: the rewrite keeps a request line with the new target.
  std::string rewritten = mitmd::proxy::RewriteRequestHead(in, "/new-target", "Proxy-Connection");
  if (rewritten.size() > in.size() + 64) Die("rewrite grew the head beyond the new target", in);
  return 0;
}
