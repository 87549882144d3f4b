#include "web/api_json.h"

#include <algorithm>
#include <cmath>

#include "flow/flow_json.h"
#include "http/headers.h"

namespace mitmd::web {

double FlowStartTime(const Flow& f) {
  return f.timings.request_start > 0 ? f.timings.request_start : f.timings.accepted;
}

double FlowDurationMs(const Flow& f) {
  const Timings& t = f.timings;
  double start = FlowStartTime(f);
  double end = t.response_end;
  if (end <= 0) {
    end = std::max({t.response_start, t.request_end, t.upstream_tls_end, t.upstream_connect_end,
                    t.client_tls_end});
  }
  if (start <= 0 || end <= 0 || end < start) return -1;
  return (end - start) * 1000.0;
}

nlohmann::json FlowSummaryJson(const Flow& f, uint64_t seq) {
  nlohmann::json j = {{"seq", seq},
                      {"id", f.id},
                      {"t", FlowStartTime(f)},
                      {"kind", f.kind == Flow::Kind::kTunnel ? "tunnel" : "http"},
                      {"state", ToString(f.state)},
                      {"conn", f.client_conn_id},
                      {"up", f.upstream_conn_id},
                      {"reused", f.upstream_reused},
                      {"insecure", f.insecure}};
  if (f.request) {
    const HttpRequest& r = *f.request;
    j["method"] = r.method;
    j["scheme"] = r.scheme;
    j["host"] = r.host.empty() ? f.server_host : r.host;
    j["port"] = r.port != 0 ? r.port : f.server_port;
    j["path"] = r.path.empty() ? r.target : r.path;
    j["ver"] = r.version;
  } else {
    j["method"] = f.kind == Flow::Kind::kTunnel ? "CONNECT" : "";
    j["scheme"] = "";
    j["host"] = f.server_host;
    j["port"] = f.server_port;
    j["path"] = "";
    j["ver"] = "";
  }
  bool truncated = f.request && f.request->body.truncated;
  if (f.response) {
    const HttpResponse& r = *f.response;
    j["status"] = r.status;
    const std::string* ct = FindHeader(r.headers, "content-type");
    j["type"] = ct ? ct->substr(0, ct->find(';')) : "";
    j["size"] = r.body.size;
    truncated = truncated || r.body.truncated;
  } else {
    j["status"] = 0;
    j["type"] = "";
    j["size"] = f.kind == Flow::Kind::kTunnel ? f.bytes_up + f.bytes_down : 0;
  }
  j["trunc"] = truncated;
  double dur = FlowDurationMs(f);
  j["dur"] = dur < 0 ? nlohmann::json(nullptr) : nlohmann::json(std::round(dur * 10) / 10);
  j["tls"] = f.client_tls ? f.client_tls->version : "";
  std::string alpn = f.client_tls ? f.client_tls->alpn : "";
  j["alpn"] = alpn;
  if (f.error) j["err"] = f.error->message;
  return j;
}

nlohmann::json FlowDetailJson(const Flow& f, uint64_t seq, bool include_bodies) {
  nlohmann::json j = FlowToJson(f);
  j["seq"] = seq;
  j["duration_ms"] = FlowDurationMs(f) < 0 ? nlohmann::json(nullptr) : nlohmann::json(FlowDurationMs(f));
  if (!include_bodies) {
    for (const char* side : {"request", "response"}) {
      if (j.contains(side) && j[side].contains("body")) j[side]["body"].erase("content");
    }
  }
  for (const char* side : {"request", "response"}) {
    if (!j.contains(side)) continue;
    const HeaderList& headers = std::string(side) == "request" ? f.request->headers : f.response->headers;
    const std::string* ce = FindHeader(headers, "content-encoding");
    j[side]["body"]["content_encoding"] = ce ? *ce : "";
  }
  return j;
}

}  // namespace mitmd::web
