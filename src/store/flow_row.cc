#include "store/flow_row.h"

#include <algorithm>

#include "http/headers.h"

namespace mitmd::store {

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

FlowRow RowFromFlow(const Flow& f, uint64_t seq, int64_t decoded_size) {
  FlowRow r;
  r.seq = seq;
  r.id = f.id;
  r.t = FlowStartTime(f);
  r.kind = f.kind == Flow::Kind::kTunnel ? "tunnel" : "http";
  r.state = std::string(ToString(f.state));
  r.revision = f.revision;
  if (f.request) {
    const HttpRequest& q = *f.request;
    r.method = q.method;
    r.scheme = q.scheme;
    r.host = q.host.empty() ? f.server_host : q.host;
    r.port = q.port != 0 ? q.port : f.server_port;
    r.path = q.path.empty() ? q.target : q.path;
    r.ver = q.version;
    r.trunc = q.body.truncated;
  } else {
    r.method = f.kind == Flow::Kind::kTunnel ? "CONNECT" : "";
    r.host = f.server_host;
    r.port = f.server_port;
  }
  if (f.response) {
    const HttpResponse& s = *f.response;
    r.status = s.status;
    const std::string* ct = FindHeader(s.headers, "content-type");
    if (ct) r.type = ct->substr(0, ct->find(';'));
    r.wire_size = static_cast<int64_t>(s.body.size);
    r.trunc = r.trunc || s.body.truncated;
  } else if (f.kind == Flow::Kind::kTunnel) {
    r.wire_size = static_cast<int64_t>(f.bytes_up + f.bytes_down);
  }
  r.size = decoded_size >= 0 ? decoded_size : r.wire_size;
  r.dur = FlowDurationMs(f);
  if (f.client_tls) {
    r.tls = f.client_tls->version;
    r.alpn = f.client_tls->alpn;
  }
  if (f.server_tls) r.up_alpn = f.server_tls->alpn;
  r.conn = static_cast<int64_t>(f.client_conn_id);
  r.up = static_cast<int64_t>(f.upstream_conn_id);
  r.reused = f.upstream_reused;
  r.insecure = f.insecure;
  if (f.error) {
    r.err_phase = f.error->phase;
    r.err = f.error->message;
  }
  r.client = f.client_addr;
  return r;
}

Flow FlowFromRow(const FlowRow& r) {
  Flow f;
  f.id = r.id;
  f.kind = r.kind == "tunnel" ? Flow::Kind::kTunnel : Flow::Kind::kHttp;
  f.state = FlowStateFromString(r.state).value_or(FlowState::kDone);
  f.revision = r.revision;
  f.client_conn_id = static_cast<uint64_t>(r.conn);
  f.upstream_conn_id = static_cast<uint64_t>(r.up);
  f.upstream_reused = r.reused;
  f.insecure = r.insecure;
  f.client_addr = r.client;
  f.server_host = r.host;
  f.server_port = static_cast<uint16_t>(r.port);
  f.timings.request_start = r.t;
  if (r.dur >= 0) f.timings.response_end = r.t + r.dur / 1000.0;
  if (!r.tls.empty() || !r.alpn.empty()) {
    f.client_tls.emplace();
    f.client_tls->version = r.tls;
    f.client_tls->alpn = r.alpn;
  }
  if (!r.up_alpn.empty()) {
    f.server_tls.emplace();
    f.server_tls->alpn = r.up_alpn;
  }
  if (f.kind == Flow::Kind::kTunnel) {
    f.bytes_down = static_cast<uint64_t>(r.wire_size);
  } else if (!r.method.empty() || !r.path.empty()) {
    HttpRequest& q = f.request.emplace();
    q.method = r.method;
    q.scheme = r.scheme;
    q.host = r.host;
    q.port = static_cast<uint16_t>(r.port);
    q.path = r.path;
    q.target = r.path;
    q.version = r.ver;
    q.body.truncated = r.trunc;
  }
  if (r.status != 0) {
    HttpResponse& s = f.response.emplace();
    s.status = static_cast<int>(r.status);
    if (!r.type.empty()) s.headers.emplace_back("Content-Type", r.type);
    s.body.size = static_cast<uint64_t>(r.wire_size);
    s.body.truncated = r.trunc;
  }
  if (!r.err_phase.empty() || !r.err.empty()) f.error = FlowError{r.err_phase, r.err};
  return f;
}

}  // namespace mitmd::store
