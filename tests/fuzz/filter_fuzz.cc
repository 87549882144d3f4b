// Fuzzes the filter language: any text either parses or fails with a message, never crashes or
// recurses without bound, and a parsed filter matches sample flows (HTTP, tunnel, failed)
// without crashing.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "flow/filter.h"
#include "flow/flow.h"

namespace {

std::vector<mitmd::Flow> SampleFlows() {
  std::vector<mitmd::Flow> flows(3);
  mitmd::Flow& http = flows[0];
  http.id = "0123-abcd";
  http.kind = mitmd::Flow::Kind::kHttp;
  http.server_host = "api.example.com";
  http.server_port = 443;
  http.request.emplace();
  http.request->method = "POST";
  http.request->scheme = "https";
  http.request->host = "api.example.com";
  http.request->port = 443;
  http.request->path = "/v1/items?page=2";
  http.request->headers = {{"Content-Type", "application/json"}, {"Accept-Encoding", "gzip"}};
  http.request->body.content = "{\"a\":1}";
  http.request->body.size = 7;
  http.response.emplace();
  http.response->status = 201;
  http.response->headers = {{"Content-Type", "text/html; charset=utf-8"}, {"Content-Encoding", "gzip"}};
  http.response->body.content = "not really gzip";
  http.response->body.size = 15;
  http.timings.request_start = 1700000000.0;
  http.timings.response_end = 1700000000.25;
  mitmd::Flow& tunnel = flows[1];
  tunnel.kind = mitmd::Flow::Kind::kTunnel;
  tunnel.server_host = "pinned.example";
  tunnel.bytes_up = 1000;
  mitmd::Flow& failed = flows[2];
  failed.error = mitmd::FlowError{"upstream_tls", "certificate has expired"};
  return flows;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<mitmd::Flow> flows = SampleFlows();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto filter = mitmd::Filter::Parse(text);
  if (!filter) {
    if (filter.error().message.empty()) {
      std::fprintf(stderr, "filter_fuzz: an error without a message\n");
      std::abort();
    }
    return 0;
  }
  for (const auto& f : flows) (void)filter->Matches(f);
  (void)mitmd::GlobMatch(text, "api.example.com");
  return 0;
}
