#include "web/api_json.h"

#include <algorithm>
#include <cmath>

#include "flow/flow_json.h"
#include "http/headers.h"

namespace mitmd::web {

using store::FlowDurationMs;

nlohmann::json RowSummaryJson(const store::FlowRow& r) {
  nlohmann::json j = {{"seq", r.seq},
          {"id", r.id},
          {"t", r.t},
          {"kind", r.kind},
          {"state", r.state},
          {"conn", r.conn},
          {"up", r.up},
          {"reused", r.reused},
          {"insecure", r.insecure},
          {"method", r.method},
          {"scheme", r.scheme},
          {"host", r.host},
          {"port", r.port},
          {"path", r.path},
          {"ver", r.ver},
          {"status", r.status},
          {"type", r.type},
          {"size", r.size},
          {"wire_size", r.wire_size},
          {"trunc", r.trunc},
          {"dur", r.dur < 0 ? nlohmann::json(nullptr) : nlohmann::json(std::round(r.dur * 10) / 10)},
          {"tls", r.tls},
          {"alpn", r.alpn},
          {"marked", r.marked},
          {"comment", r.comment},
          {"source", r.source}};
  if (!r.err_phase.empty() || !r.err.empty()) j["err"] = r.err;
  return j;
}

nlohmann::json FlowSummaryJson(const Flow& f, uint64_t seq) {
  return RowSummaryJson(store::RowFromFlow(f, seq));
}

nlohmann::json FlowDetailJson(const Flow& f, uint64_t seq, bool include_bodies) {
  return FlowDetailJson(f, store::RowFromFlow(f, seq), include_bodies);
}

nlohmann::json FlowDetailJson(const Flow& f, const store::FlowRow& row, bool include_bodies) {
  nlohmann::json j = FlowToJson(f);
  j["seq"] = row.seq;
  j["marked"] = row.marked;
  j["comment"] = row.comment;
  j["source"] = row.source;
  j["size"] = row.size;
  j["wire_size"] = row.wire_size;
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
