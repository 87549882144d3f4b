#include "flow/flow_json.h"

#include "core/strings.h"

#include <openssl/base64.h>

#include "flow/json_writer.h"

namespace mitmd {
namespace {

using nlohmann::json;

constexpr int kSchemaVersion = 1;



Result<std::string> Base64Decode(const std::string& in) {
  size_t max_len = 0;
  if (!EVP_DecodedLength(&max_len, in.size())) return Fail("body content is not valid base64");
  std::string out(max_len, '\0');
  size_t out_len = 0;
  if (!EVP_DecodeBase64(reinterpret_cast<uint8_t*>(out.data()), &out_len, max_len,
                        reinterpret_cast<const uint8_t*>(in.data()), in.size())) {
    return Fail("body content is not valid base64");
  }
  out.resize(out_len);
  return out;
}

json HeadersToJson(const HeaderList& headers) {
  json arr = json::array();
  for (const auto& [k, v] : headers) arr.push_back(json::array({k, v}));
  return arr;
}

HeaderList HeadersFromJson(const json& j) {
  HeaderList out;
  if (!j.is_array()) return out;
  for (const auto& h : j) {
    if (h.is_array() && h.size() == 2) out.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());
  }
  return out;
}

json BodyToJson(const BodyRecord& b) {
  json j = {{"size", b.size}, {"truncated", b.truncated}};
  if (IsValidUtf8(b.content)) {
    j["encoding"] = "text";
    j["content"] = b.content;
  } else {
    j["encoding"] = "base64";
    j["content"] = Base64Encode(b.content);
  }
  return j;
}

Result<BodyRecord> BodyFromJson(const json& j) {
  BodyRecord b;
  if (!j.is_object()) return b;
  b.size = j.value("size", uint64_t{0});
  b.truncated = j.value("truncated", false);
  std::string content = j.value("content", std::string());
  if (j.value("encoding", std::string("text")) == "base64") {
    auto decoded = Base64Decode(content);
    if (!decoded) return std::unexpected(decoded.error());
    b.content = std::move(*decoded);
  } else {
    b.content = std::move(content);
  }
  return b;
}

json TlsToJson(const TlsInfo& t) {
  json j = {{"version", t.version}, {"cipher", t.cipher}, {"alpn", t.alpn}, {"sni", t.sni}};
  if (!t.alpn_offered.empty()) j["alpn_offered"] = t.alpn_offered;
  return j;
}

TlsInfo TlsFromJson(const json& j) {
  TlsInfo t;
  t.version = j.value("version", "");
  t.cipher = j.value("cipher", "");
  t.alpn = j.value("alpn", "");
  t.sni = j.value("sni", "");
  if (j.contains("alpn_offered")) t.alpn_offered = j["alpn_offered"].get<std::vector<std::string>>();
  return t;
}

json CertToJson(const CertInfo& c) {
  return {{"subject", c.subject}, {"issuer", c.issuer}, {"sans", c.sans},
          {"sha256", c.sha256}, {"not_before", c.not_before}, {"not_after", c.not_after},
          {"verified", c.verified}, {"verify_error", c.verify_error}};
}

CertInfo CertFromJson(const json& j) {
  CertInfo c;
  c.subject = j.value("subject", "");
  c.issuer = j.value("issuer", "");
  if (j.contains("sans")) c.sans = j["sans"].get<std::vector<std::string>>();
  c.sha256 = j.value("sha256", "");
  c.not_before = j.value("not_before", "");
  c.not_after = j.value("not_after", "");
  c.verified = j.value("verified", false);
  c.verify_error = j.value("verify_error", "");
  return c;
}

json TimingsToJson(const Timings& t) {
  return {{"accepted", t.accepted},
          {"upstream_connect_start", t.upstream_connect_start},
          {"upstream_connect_end", t.upstream_connect_end},
          {"upstream_tls_end", t.upstream_tls_end},
          {"client_tls_end", t.client_tls_end},
          {"request_start", t.request_start},
          {"request_end", t.request_end},
          {"response_start", t.response_start},
          {"response_end", t.response_end}};
}

Timings TimingsFromJson(const json& j) {
  Timings t;
  t.accepted = j.value("accepted", 0.0);
  t.upstream_connect_start = j.value("upstream_connect_start", 0.0);
  t.upstream_connect_end = j.value("upstream_connect_end", 0.0);
  t.upstream_tls_end = j.value("upstream_tls_end", 0.0);
  t.client_tls_end = j.value("client_tls_end", 0.0);
  t.request_start = j.value("request_start", 0.0);
  t.request_end = j.value("request_end", 0.0);
  t.response_start = j.value("response_start", 0.0);
  t.response_end = j.value("response_end", 0.0);
  return t;
}

}  // namespace

json FlowToJson(const Flow& f) {
  json client = {{"conn", f.client_conn_id}, {"addr", f.client_addr}};
  if (f.client_tls) client["tls"] = TlsToJson(*f.client_tls);
  json server = {{"host", f.server_host}, {"port", f.server_port}, {"addr", f.server_addr},
                 {"conn", f.upstream_conn_id}, {"reused", f.upstream_reused}};
  if (f.server_tls) server["tls"] = TlsToJson(*f.server_tls);
  if (f.server_cert) server["cert"] = CertToJson(*f.server_cert);

  json j = {{"schema", kSchemaVersion},
            {"id", f.id},
            {"kind", f.kind == Flow::Kind::kTunnel ? "tunnel" : "http"},
            {"client", std::move(client)},
            {"server", std::move(server)},
            {"insecure", f.insecure},
            {"state", ToString(f.state)},
            {"timings", TimingsToJson(f.timings)},
            {"bytes", {{"up", f.bytes_up}, {"down", f.bytes_down}}},
            {"body_record_cap", f.body_record_cap}};
  if (f.request) {
    const HttpRequest& r = *f.request;
    j["request"] = {{"method", r.method}, {"scheme", r.scheme}, {"host", r.host},
                    {"port", r.port}, {"target", r.target}, {"path", r.path},
                    {"url", r.Url()}, {"version", r.version},
                    {"headers", HeadersToJson(r.headers)}, {"body", BodyToJson(r.body)}};
    if (!r.trailers.empty()) j["request"]["trailers"] = HeadersToJson(r.trailers);
  }
  if (f.response) {
    const HttpResponse& r = *f.response;
    j["response"] = {{"status", r.status}, {"reason", r.reason}, {"version", r.version},
                     {"headers", HeadersToJson(r.headers)}, {"body", BodyToJson(r.body)}};
    if (!r.trailers.empty()) j["response"]["trailers"] = HeadersToJson(r.trailers);
    if (!r.informational.empty()) j["response"]["informational"] = r.informational;
  }
  if (f.error) j["error"] = {{"phase", f.error->phase}, {"message", f.error->message}};
  if (!f.note.empty()) j["note"] = f.note;
  return j;
}

Result<Flow> FlowFromJson(const json& j) {
  if (!j.is_object()) return Fail("a flow must be a JSON object");
  if (j.value("schema", 0) != kSchemaVersion) {
    return Fail("unsupported flow schema version (expected 1)");
  }
  try {
    Flow f;
    f.id = j.at("id").get<std::string>();
    f.kind = j.value("kind", "http") == "tunnel" ? Flow::Kind::kTunnel : Flow::Kind::kHttp;
    const json& client = j.at("client");
    f.client_conn_id = client.value("conn", uint64_t{0});
    f.client_addr = client.value("addr", "");
    if (client.contains("tls")) f.client_tls = TlsFromJson(client["tls"]);
    const json& server = j.at("server");
    f.server_host = server.value("host", "");
    f.server_port = server.value("port", uint16_t{0});
    f.server_addr = server.value("addr", "");
    f.upstream_conn_id = server.value("conn", uint64_t{0});
    f.upstream_reused = server.value("reused", false);
    if (server.contains("tls")) f.server_tls = TlsFromJson(server["tls"]);
    if (server.contains("cert")) f.server_cert = CertFromJson(server["cert"]);
    f.insecure = j.value("insecure", false);
    f.note = j.value("note", "");
    // Logs from before the state field hold only finished flows.
    if (auto state = FlowStateFromString(j.value("state", "done"))) f.state = *state;
    if (j.contains("timings")) f.timings = TimingsFromJson(j["timings"]);
    if (j.contains("bytes")) {
      f.bytes_up = j["bytes"].value("up", uint64_t{0});
      f.bytes_down = j["bytes"].value("down", uint64_t{0});
    }
    f.body_record_cap = j.value("body_record_cap", size_t{0});
    if (j.contains("request")) {
      const json& r = j["request"];
      HttpRequest req;
      req.method = r.value("method", "");
      req.scheme = r.value("scheme", "");
      req.host = r.value("host", "");
      req.port = r.value("port", uint16_t{0});
      req.target = r.value("target", "");
      req.path = r.value("path", "");
      req.version = r.value("version", "");
      req.headers = HeadersFromJson(r.value("headers", json::array()));
      req.trailers = HeadersFromJson(r.value("trailers", json::array()));
      auto body = BodyFromJson(r.value("body", json::object()));
      if (!body) return std::unexpected(body.error());
      req.body = std::move(*body);
      f.request = std::move(req);
    }
    if (j.contains("response")) {
      const json& r = j["response"];
      HttpResponse resp;
      resp.status = r.value("status", 0);
      resp.reason = r.value("reason", "");
      resp.version = r.value("version", "");
      resp.headers = HeadersFromJson(r.value("headers", json::array()));
      resp.trailers = HeadersFromJson(r.value("trailers", json::array()));
      if (r.contains("informational")) resp.informational = r["informational"].get<std::vector<int>>();
      auto body = BodyFromJson(r.value("body", json::object()));
      if (!body) return std::unexpected(body.error());
      resp.body = std::move(*body);
      f.response = std::move(resp);
    }
    if (j.contains("error")) {
      f.error = FlowError{j["error"].value("phase", ""), j["error"].value("message", "")};
    }
    return f;
  } catch (const json::exception& e) {
    return Fail(std::string("malformed flow record: ") + e.what());
  }
}

namespace {

// The streaming form of FlowToJson: the same members in the same (sorted, as nlohmann's std::map
// orders them) sequence, so the line is the text FlowToJson(f).dump() would print.

void WriteHeaders(JsonWriter& w, const HeaderList& headers) {
  w.Raw("[");
  for (size_t i = 0; i < headers.size(); ++i) {
    w.Raw(i == 0 ? "[" : ",[");
    w.String(headers[i].first);
    w.Raw(",");
    w.String(headers[i].second);
    w.Raw("]");
  }
  w.Raw("]");
}

void WriteStrings(JsonWriter& w, const std::vector<std::string>& strings) {
  w.Raw("[");
  for (size_t i = 0; i < strings.size(); ++i) {
    if (i > 0) w.Raw(",");
    w.String(strings[i]);
  }
  w.Raw("]");
}

void WriteBody(JsonWriter& w, const BodyRecord& b) {
  w.Raw("{\"content\":");
  bool text = w.StringIfUtf8(b.content);
  if (!text) w.Base64String(b.content);
  w.Raw(text ? ",\"encoding\":\"text\",\"size\":" : ",\"encoding\":\"base64\",\"size\":");
  w.Uint(b.size);
  w.Raw(",\"truncated\":");
  w.Bool(b.truncated);
  w.Raw("}");
}

void WriteTls(JsonWriter& w, const TlsInfo& t) {
  w.Raw("{\"alpn\":");
  w.String(t.alpn);
  if (!t.alpn_offered.empty()) {
    w.Raw(",\"alpn_offered\":");
    WriteStrings(w, t.alpn_offered);
  }
  w.Raw(",\"cipher\":");
  w.String(t.cipher);
  w.Raw(",\"sni\":");
  w.String(t.sni);
  w.Raw(",\"version\":");
  w.String(t.version);
  w.Raw("}");
}

void WriteCert(JsonWriter& w, const CertInfo& c) {
  w.Raw("{\"issuer\":");
  w.String(c.issuer);
  w.Raw(",\"not_after\":");
  w.String(c.not_after);
  w.Raw(",\"not_before\":");
  w.String(c.not_before);
  w.Raw(",\"sans\":");
  WriteStrings(w, c.sans);
  w.Raw(",\"sha256\":");
  w.String(c.sha256);
  w.Raw(",\"subject\":");
  w.String(c.subject);
  w.Raw(",\"verified\":");
  w.Bool(c.verified);
  w.Raw(",\"verify_error\":");
  w.String(c.verify_error);
  w.Raw("}");
}

void WriteTimings(JsonWriter& w, const Timings& t) {
  w.Raw("{\"accepted\":");
  w.Double(t.accepted);
  w.Raw(",\"client_tls_end\":");
  w.Double(t.client_tls_end);
  w.Raw(",\"request_end\":");
  w.Double(t.request_end);
  w.Raw(",\"request_start\":");
  w.Double(t.request_start);
  w.Raw(",\"response_end\":");
  w.Double(t.response_end);
  w.Raw(",\"response_start\":");
  w.Double(t.response_start);
  w.Raw(",\"upstream_connect_end\":");
  w.Double(t.upstream_connect_end);
  w.Raw(",\"upstream_connect_start\":");
  w.Double(t.upstream_connect_start);
  w.Raw(",\"upstream_tls_end\":");
  w.Double(t.upstream_tls_end);
  w.Raw("}");
}

void WriteRequest(JsonWriter& w, const HttpRequest& r) {
  w.Raw("{\"body\":");
  WriteBody(w, r.body);
  w.Raw(",\"headers\":");
  WriteHeaders(w, r.headers);
  w.Raw(",\"host\":");
  w.String(r.host);
  w.Raw(",\"method\":");
  w.String(r.method);
  w.Raw(",\"path\":");
  w.String(r.path);
  w.Raw(",\"port\":");
  w.Uint(r.port);
  w.Raw(",\"scheme\":");
  w.String(r.scheme);
  w.Raw(",\"target\":");
  w.String(r.target);
  if (!r.trailers.empty()) {
    w.Raw(",\"trailers\":");
    WriteHeaders(w, r.trailers);
  }
  w.Raw(",\"url\":");
  w.String(r.Url());
  w.Raw(",\"version\":");
  w.String(r.version);
  w.Raw("}");
}

void WriteResponse(JsonWriter& w, const HttpResponse& r) {
  w.Raw("{\"body\":");
  WriteBody(w, r.body);
  w.Raw(",\"headers\":");
  WriteHeaders(w, r.headers);
  if (!r.informational.empty()) {
    w.Raw(",\"informational\":[");
    for (size_t i = 0; i < r.informational.size(); ++i) {
      if (i > 0) w.Raw(",");
      w.Int(r.informational[i]);
    }
    w.Raw("]");
  }
  w.Raw(",\"reason\":");
  w.String(r.reason);
  w.Raw(",\"status\":");
  w.Int(r.status);
  if (!r.trailers.empty()) {
    w.Raw(",\"trailers\":");
    WriteHeaders(w, r.trailers);
  }
  w.Raw(",\"version\":");
  w.String(r.version);
  w.Raw("}");
}

// Enough for the line in the common case (text bodies without many escapes), so that the
// output grows once.
size_t EstimateLineSize(const Flow& f) {
  constexpr size_t kFixed = 1024;       // keys, punctuation, numbers, TLS and cert names
  constexpr size_t kPerHeader = 8;      // ["",""],
  size_t n = kFixed + f.id.size() + f.client_addr.size() + f.server_host.size() +
             f.server_addr.size() + f.note.size();
  auto headers = [&](const HeaderList& h) {
    for (const auto& [k, v] : h) n += k.size() + v.size() + kPerHeader;
  };
  auto body = [&](const BodyRecord& b) { n += b.content.size() + (b.content.size() + 2) / 3; };
  if (f.server_cert) {
    for (const auto& san : f.server_cert->sans) n += san.size() + 3;
    n += f.server_cert->subject.size() + f.server_cert->issuer.size() +
         f.server_cert->verify_error.size();
  }
  if (f.request) {
    const HttpRequest& r = *f.request;
    n += 2 * r.host.size() + 2 * r.path.size() + r.target.size() + r.method.size();
    headers(r.headers);
    headers(r.trailers);
    body(r.body);
  }
  if (f.response) {
    n += f.response->reason.size();
    headers(f.response->headers);
    headers(f.response->trailers);
    body(f.response->body);
  }
  if (f.error) n += f.error->phase.size() + f.error->message.size();
  return n;
}

}  // namespace

void AppendFlowJsonLine(const Flow& f, std::string& out) {
  out.reserve(out.size() + EstimateLineSize(f));
  JsonWriter w(out);
  w.Raw("{\"body_record_cap\":");
  w.Uint(f.body_record_cap);
  w.Raw(",\"bytes\":{\"down\":");
  w.Uint(f.bytes_down);
  w.Raw(",\"up\":");
  w.Uint(f.bytes_up);
  w.Raw("},\"client\":{\"addr\":");
  w.String(f.client_addr);
  w.Raw(",\"conn\":");
  w.Uint(f.client_conn_id);
  if (f.client_tls) {
    w.Raw(",\"tls\":");
    WriteTls(w, *f.client_tls);
  }
  w.Raw("}");
  if (f.error) {
    w.Raw(",\"error\":{\"message\":");
    w.String(f.error->message);
    w.Raw(",\"phase\":");
    w.String(f.error->phase);
    w.Raw("}");
  }
  w.Raw(",\"id\":");
  w.String(f.id);
  w.Raw(",\"insecure\":");
  w.Bool(f.insecure);
  w.Raw(f.kind == Flow::Kind::kTunnel ? ",\"kind\":\"tunnel\"" : ",\"kind\":\"http\"");
  if (!f.note.empty()) {
    w.Raw(",\"note\":");
    w.String(f.note);
  }
  if (f.request) {
    w.Raw(",\"request\":");
    WriteRequest(w, *f.request);
  }
  if (f.response) {
    w.Raw(",\"response\":");
    WriteResponse(w, *f.response);
  }
  w.Raw(",\"schema\":");
  w.Int(kSchemaVersion);
  w.Raw(",\"server\":{\"addr\":");
  w.String(f.server_addr);
  if (f.server_cert) {
    w.Raw(",\"cert\":");
    WriteCert(w, *f.server_cert);
  }
  w.Raw(",\"conn\":");
  w.Uint(f.upstream_conn_id);
  w.Raw(",\"host\":");
  w.String(f.server_host);
  w.Raw(",\"port\":");
  w.Uint(f.server_port);
  w.Raw(",\"reused\":");
  w.Bool(f.upstream_reused);
  if (f.server_tls) {
    w.Raw(",\"tls\":");
    WriteTls(w, *f.server_tls);
  }
  w.Raw("},\"state\":\"");
  w.Raw(ToString(f.state));
  w.Raw("\",\"timings\":");
  WriteTimings(w, f.timings);
  w.Raw("}");
}

std::string FlowToJsonLine(const Flow& flow) {
  std::string line;
  AppendFlowJsonLine(flow, line);
  return line;
}

}  // namespace mitmd
