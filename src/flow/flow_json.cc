#include "flow/flow_json.h"

#include <openssl/base64.h>

namespace mitmd {
namespace {

using nlohmann::json;

constexpr int kSchemaVersion = 1;

bool IsValidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c >> 5) == 0x6) { len = 2; cp = c & 0x1f; }
    else if ((c >> 4) == 0xe) { len = 3; cp = c & 0x0f; }
    else if ((c >> 3) == 0x1e) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string Base64Encode(const std::string& in) {
  size_t out_len = 0;
  EVP_EncodedLength(&out_len, in.size());
  std::string out(out_len, '\0');
  size_t written = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out.data()),
                                   reinterpret_cast<const uint8_t*>(in.data()), in.size());
  out.resize(written);
  return out;
}

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

std::string FlowToJsonLine(const Flow& flow) {
  return FlowToJson(flow).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace mitmd
