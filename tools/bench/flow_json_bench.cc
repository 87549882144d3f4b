// flow_json_bench: CPU per flow of the session log's serialization, the streaming writer
// (FlowToJsonLine, AppendFlowJsonLine into a reused buffer) against the DOM round trip
// (FlowToJson(f).dump(), which now parses the line: what the viewer's detail view costs). Thread
// CPU time, median of several rounds, so other load on the machine moves the figures less than
// wall time would.
//
//   flow_json_bench [--rounds N] [--min-ms M]

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "flow/flow.h"
#include "flow/flow_json.h"

namespace mitmd {
namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// What mitmd records for one mitmd_bench keep-alive request: TLS both sides, the upstream
// certificate, three request headers, a 1 KiB response body.
Flow KeepAliveFlow(size_t body_bytes, bool binary) {
  Flow f;
  f.id = NewFlowId();
  f.client_conn_id = 12;
  f.upstream_conn_id = 13;
  f.upstream_reused = true;
  f.client_addr = "127.0.0.1:51324";
  f.server_host = "localhost";
  f.server_port = 40189;
  f.server_addr = "127.0.0.1:40189";
  f.body_record_cap = 1 << 20;
  f.client_tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "http/1.1", "localhost",
                         {"http/1.1"}};
  f.server_tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "http/1.1", "localhost", {}};
  f.server_cert = CertInfo{"CN=localhost", "CN=mitmd bench CA",
                           {"DNS:localhost", "IP:127.0.0.1", "IP:::1"}, std::string(64, 'c'),
                           "2025-11-19T20:00:00Z", "2026-11-21T20:00:00Z", true, ""};
  HttpRequest req;
  req.method = "GET";
  req.scheme = "https";
  req.host = "localhost";
  req.port = 40189;
  req.target = "/small";
  req.path = "/small";
  req.version = "HTTP/1.1";
  req.headers = {{"Host", "localhost:40189"}, {"User-Agent", "mitmd_bench"}, {"Accept", "*/*"}};
  f.request = std::move(req);
  HttpResponse resp;
  resp.status = 200;
  resp.reason = "OK";
  resp.version = "HTTP/1.1";
  resp.headers = {{"Content-Type", "application/octet-stream"},
                  {"Content-Length", std::to_string(body_bytes)}};
  std::string body(body_bytes, 'x');
  if (binary) {
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 131 + 7) & 0xff);
  }
  resp.body.Append(body.data(), body.size(), f.body_record_cap);
  f.response = std::move(resp);
  const double t0 = 1763750000.123456;
  f.timings = Timings{t0, 0, 0, 0, t0 + 0.000412, t0 + 1.25, t0 + 1.250031, t0 + 1.250388,
                      t0 + 1.250402};
  return f;
}

// A browser page load: many headers with cookies and a JSON body full of quotes.
Flow BrowserFlow() {
  Flow f = KeepAliveFlow(0, false);
  f.request->headers = {
      {"Host", "www.example.com"},
      {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/156.0.0.0 Safari/537.36"},
      {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
      {"Accept-Language", "en-GB,en;q=0.9,de;q=0.8"},
      {"Accept-Encoding", "gzip, deflate, br, zstd"},
      {"Cookie", "session=" + std::string(120, 'a') + "; prefs=" + std::string(60, 'b')},
      {"Sec-Fetch-Dest", "document"},
      {"Sec-Fetch-Mode", "navigate"},
      {"Sec-Fetch-Site", "none"},
      {"Upgrade-Insecure-Requests", "1"}};
  std::string json = "{\"items\":[";
  for (int i = 0; i < 60; ++i) {
    json += "{\"id\":" + std::to_string(i) + ",\"name\":\"item \\\"" + std::to_string(i) +
            "\\\" – ünïcode\",\"tags\":[\"a\",\"b\"]},";
  }
  json += "{}]}";
  f.response->headers = {{"Content-Type", "application/json; charset=utf-8"},
                         {"Cache-Control", "private, max-age=0"},
                         {"Set-Cookie", "a=" + std::string(80, 'z') + "; Path=/; Secure; HttpOnly"},
                         {"Content-Length", std::to_string(json.size())}};
  f.response->body = BodyRecord{};
  f.response->body.Append(json.data(), json.size(), f.body_record_cap);
  return f;
}

struct Case {
  const char* name;
  Flow flow;
};

// Median thread CPU nanoseconds per call of |fn| over |rounds| rounds of at least |min_ms|.
double MedianNsPerCall(const std::function<size_t()>& fn, int rounds, double min_ms) {
  std::vector<double> per_call;
  size_t sink = 0;
  for (int r = 0; r < rounds; ++r) {
    size_t calls = 0;
    double start = ThreadCpuSeconds();
    double elapsed = 0;
    do {
      for (int i = 0; i < 64; ++i) sink += fn();
      calls += 64;
      elapsed = ThreadCpuSeconds() - start;
    } while (elapsed * 1e3 < min_ms);
    per_call.push_back(elapsed * 1e9 / static_cast<double>(calls));
  }
  if (sink == 0) std::puts("");
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

int Main(int argc, char** argv) {
  int rounds = 7;
  double min_ms = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--min-ms") == 0 && i + 1 < argc) {
      min_ms = std::max(1.0, std::atof(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: flow_json_bench [--rounds N (default 7)] [--min-ms M (200)]\n");
      return 2;
    }
  }
  std::vector<Case> cases = {
      {"keepalive 1 KiB text body", KeepAliveFlow(1024, false)},
      {"browser: 10+4 headers, 5 KiB JSON", BrowserFlow()},
      {"64 KiB text body", KeepAliveFlow(64 << 10, false)},
      {"64 KiB binary body (base64)", KeepAliveFlow(64 << 10, true)},
  };
  std::printf("%-36s %8s %12s %12s %12s %8s\n", "flow", "bytes", "dom+dump ns", "line ns",
              "reused ns", "speedup");
  for (const Case& c : cases) {
    const Flow& f = c.flow;
    std::string old_line =
        FlowToJson(f).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (FlowToJsonLine(f) != old_line) {
      std::fprintf(stderr, "%s: the streaming line differs from the DOM's dump\n", c.name);
      return 1;
    }
    double dom = MedianNsPerCall(
        [&] {
          return FlowToJson(f).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
        },
        rounds, min_ms);
    double line = MedianNsPerCall([&] { return FlowToJsonLine(f).size(); }, rounds, min_ms);
    std::string buffer;
    double reused = MedianNsPerCall(
        [&] {
          buffer.clear();
          AppendFlowJsonLine(f, buffer);
          return buffer.size();
        },
        rounds, min_ms);
    std::printf("%-36s %8zu %12.0f %12.0f %12.0f %7.1fx\n", c.name, old_line.size(), dom, line,
                reused, dom / line);
  }
  return 0;
}

}  // namespace
}  // namespace mitmd

int main(int argc, char** argv) { return mitmd::Main(argc, argv); }
