#pragma once
// Synthetic flows for the viewer's tests (filter, HAR, API, loader).

#include <zlib.h>

#include <memory>
#include <string>

#include "flow/flow.h"

namespace mitmd::testing {

inline std::string GzipForTest(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct FlowSpec {
  std::string method = "GET";
  std::string host = "api.example.com";
  uint16_t port = 443;
  std::string path = "/v1/items?page=2";
  int status = 200;
  std::string content_type = "application/json";
  std::string response_body = "{\"items\":[1,2,3],\"token\":\"s3cret\"}";
  bool gzip = false;
  std::string request_body;
  double start = 1700000000.0;
  double duration = 0.120;
};

// A complete HTTPS exchange with TLS on both sides and every timestamp set.
inline Flow MakeFlow(const FlowSpec& s) {
  Flow f;
  f.id = NewFlowId();
  f.client_conn_id = 7;
  f.upstream_conn_id = 3;
  f.client_addr = "127.0.0.1:50123";
  f.server_host = s.host;
  f.server_port = s.port;
  f.server_addr = "127.0.0.1:" + std::to_string(s.port);
  f.body_record_cap = 1 << 20;
  if (s.port == 443) {
    f.client_tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "http/1.1", s.host, {"h2", "http/1.1"}};
    f.server_tls = TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384", "http/1.1", s.host, {}};
    f.server_cert = CertInfo{"CN=" + s.host, "CN=Test CA", {"DNS:" + s.host}, std::string(64, 'a'),
                             "2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z", true, ""};
  }
  HttpRequest req;
  req.method = s.method;
  req.scheme = s.port == 443 ? "https" : "http";
  req.host = s.host;
  req.port = s.port;
  req.target = s.path;
  req.path = s.path;
  req.version = "HTTP/1.1";
  req.headers = {{"Host", s.host}, {"User-Agent", "curl/7.88.1"}, {"Accept", "*/*"}};
  if (!s.request_body.empty()) {
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.headers.emplace_back("Content-Length", std::to_string(s.request_body.size()));
    req.body.Append(s.request_body.data(), s.request_body.size(), f.body_record_cap);
  }
  f.request = std::move(req);
  if (s.status != 0) {
    HttpResponse resp;
    resp.status = s.status;
    resp.reason = s.status == 200 ? "OK" : "Status";
    resp.version = "HTTP/1.1";
    std::string body = s.gzip ? GzipForTest(s.response_body) : s.response_body;
    resp.headers = {{"Content-Type", s.content_type},
                    {"Content-Length", std::to_string(body.size())}};
    if (s.gzip) resp.headers.emplace_back("Content-Encoding", "gzip");
    resp.body.Append(body.data(), body.size(), f.body_record_cap);
    f.response = std::move(resp);
  }
  Timings& t = f.timings;
  t.accepted = s.start - 0.010;
  t.upstream_connect_start = s.start - 0.009;
  t.upstream_connect_end = s.start - 0.008;
  t.upstream_tls_end = s.start - 0.005;
  t.client_tls_end = s.start - 0.002;
  t.request_start = s.start;
  t.request_end = s.start + 0.001;
  t.response_start = s.start + s.duration * 0.8;
  t.response_end = s.start + s.duration;
  return f;
}

inline Flow MakeErrorFlow(const std::string& host, const std::string& phase,
                          const std::string& message) {
  FlowSpec s;
  s.host = host;
  s.status = 0;
  Flow f = MakeFlow(s);
  f.server_tls.reset();
  f.server_cert.reset();
  f.error = FlowError{phase, message};
  return f;
}

}  // namespace mitmd::testing
