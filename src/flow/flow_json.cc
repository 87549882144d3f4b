#include "flow/flow_json.h"

#include "core/strings.h"
#include "flow/json_fields.h"
#include "flow/json_writer.h"

namespace mitmd {
namespace {

using nlohmann::json;

constexpr int kSchemaVersion = 1;

// [name, value] or [name, value, {"name_b64": ..., "value_b64": ...}]: the object, when there,
// holds the exact bytes the two strings show escaped.
void HeadersFromJson(JsonFields& parent, std::string_view key, HeaderList& out) {
  const json* arr = parent.Array(key);
  if (arr == nullptr) return;
  for (size_t i = 0; i < arr->size(); ++i) {
    const json& h = (*arr)[i];
    std::string path = StrCat(parent.PathOf(key), "[", i, "]");
    if (!h.is_array() || h.size() < 2 || h.size() > 3 || !h[0].is_string() ||
        !h[1].is_string() || (h.size() == 3 && !h[2].is_object())) {
      return parent.Bad(path, "expected [\"name\", \"value\"] or [\"name\", \"value\", {bytes}]");
    }
    std::string name = h[0].get<std::string>();
    std::string value = h[1].get<std::string>();
    if (h.size() == 3) {
      JsonFields bytes = parent.Nested(h[2], StrCat(path, "[2]"));
      for (auto [field, target] : {std::pair{"name_b64", &name}, std::pair{"value_b64", &value}}) {
        if (!bytes.Has(field)) continue;
        std::string text;
        bytes.String(field, text);
        auto decoded = Base64Decode(text);
        if (!decoded) return parent.Bad(bytes.PathOf(field), "not valid base64");
        *target = std::move(*decoded);
      }
      if (!bytes.ok()) return;
    }
    out.emplace_back(std::move(name), std::move(value));
  }
}

void BodyFromJson(JsonFields& parent, BodyRecord& b) {
  auto j = parent.Object("body");
  if (!j) return;
  j->Integer("size", b.size);
  j->Bool("truncated", b.truncated);
  std::string content, encoding = "text";
  j->String("content", content);
  j->String("encoding", encoding);
  if (encoding == "base64") {
    auto decoded = Base64Decode(content);
    if (!decoded) return j->Bad(j->PathOf("content"), "not valid base64");
    b.content = std::move(*decoded);
  } else {
    b.content = std::move(content);
  }
}

std::optional<TlsInfo> TlsFromJson(JsonFields& parent) {
  auto j = parent.Object("tls");
  if (!j) return std::nullopt;
  TlsInfo t;
  j->String("version", t.version);
  j->String("cipher", t.cipher);
  j->String("alpn", t.alpn);
  j->String("sni", t.sni);
  j->StringList("alpn_offered", t.alpn_offered);
  return t;
}

std::optional<CertInfo> CertFromJson(JsonFields& parent) {
  auto j = parent.Object("cert");
  if (!j) return std::nullopt;
  CertInfo c;
  j->String("subject", c.subject);
  j->String("issuer", c.issuer);
  j->StringList("sans", c.sans);
  j->String("sha256", c.sha256);
  j->String("not_before", c.not_before);
  j->String("not_after", c.not_after);
  j->Bool("verified", c.verified);
  j->String("verify_error", c.verify_error);
  return c;
}

void TimingsFromJson(JsonFields& parent, Timings& t) {
  auto j = parent.Object("timings");
  if (!j) return;
  j->Double("accepted", t.accepted);
  j->Double("upstream_connect_start", t.upstream_connect_start);
  j->Double("upstream_connect_end", t.upstream_connect_end);
  j->Double("upstream_tls_end", t.upstream_tls_end);
  j->Double("client_tls_end", t.client_tls_end);
  j->Double("request_start", t.request_start);
  j->Double("request_end", t.request_end);
  j->Double("response_start", t.response_start);
  j->Double("response_end", t.response_end);
}

void WebSocketFromJson(JsonFields& parent, std::optional<WebSocketRecord>& out) {
  auto j = parent.Object("websocket");
  if (!j) return;
  WebSocketRecord ws;
  j->Integer("dropped", ws.dropped);
  j->String("error", ws.error);
  if (auto c = j->Object("close")) {
    WebSocketClose close;
    std::string by;
    c->String("by", by);
    close.by_client = by == "client";
    c->String("reason", close.reason);
    if (c->Has("code")) {
      int code = 0;
      c->Integer("code", code);
      close.code = code;
    }
    ws.close = std::move(close);
  }
  if (const json* arr = j->Array("messages")) {
    for (size_t i = 0; i < arr->size(); ++i) {
      JsonFields jm = j->Nested((*arr)[i], StrCat(j->PathOf("messages"), "[", i, "]"));
      WebSocketMessage m;
      jm.Bool("from_client", m.from_client);
      jm.String("opcode", m.opcode);
      jm.Double("time", m.time);
      jm.Integer("size", m.size);
      jm.Bool("truncated", m.truncated);
      jm.Bool("compressed", m.compressed);
      std::string content, encoding = "text";
      jm.String("content", content);
      jm.String("encoding", encoding);
      if (encoding == "base64") {
        auto decoded = Base64Decode(content);
        if (!decoded) return jm.Bad(jm.PathOf("content"), "not valid base64");
        m.content = std::move(*decoded);
      } else {
        m.content = std::move(content);
      }
      if (!jm.ok()) return;
      ws.messages.push_back(std::move(m));
    }
  }
  out = std::move(ws);
}

}  // namespace

json FlowToJson(const Flow& f) {
  // Derived from the line writer, so that the schema has one writer. The line is valid JSON by
  // construction (ill-formed UTF-8 is escaped or replaced there).
  return json::parse(FlowToJsonLine(f), nullptr, /*allow_exceptions=*/false);
}

Result<Flow> FlowFromJson(const json& j) {
  if (!j.is_object()) return Fail("a flow must be a JSON object");
  std::string error;
  JsonFields top(j, "", error);
  int schema = 0;
  top.Integer("schema", schema);
  if (!error.empty()) return Fail(error);
  if (schema != kSchemaVersion) {
    return Fail(StrCat("unsupported flow schema version ", schema, " (expected ", kSchemaVersion, ")"));
  }
  Flow f;
  if (top.Require("id")) top.String("id", f.id);
  std::string kind = "http";
  top.String("kind", kind);
  f.kind = kind == "tunnel" ? Flow::Kind::kTunnel : Flow::Kind::kHttp;
  if (top.Require("client")) {
    if (auto client = top.Object("client")) {
      client->Integer("conn", f.client_conn_id);
      client->String("addr", f.client_addr);
      client->String("entry", f.entry);
      f.client_tls = TlsFromJson(*client);
    }
  }
  if (top.Require("server")) {
    if (auto server = top.Object("server")) {
      server->String("host", f.server_host);
      server->Integer("port", f.server_port);
      server->String("addr", f.server_addr);
      server->Integer("conn", f.upstream_conn_id);
      server->Bool("reused", f.upstream_reused);
      f.server_tls = TlsFromJson(*server);
      f.server_cert = CertFromJson(*server);
    }
  }
  top.Bool("insecure", f.insecure);
  top.String("note", f.note);
  // Logs from before the state field hold only finished flows.
  std::string state = "done";
  top.String("state", state);
  if (auto s = FlowStateFromString(state)) f.state = *s;
  TimingsFromJson(top, f.timings);
  if (auto bytes = top.Object("bytes")) {
    bytes->Integer("up", f.bytes_up);
    bytes->Integer("down", f.bytes_down);
  }
  top.Integer("body_record_cap", f.body_record_cap);
  top.Integer("stream_id", f.stream_id);
  WebSocketFromJson(top, f.websocket);
  if (auto r = top.Object("request")) {
    HttpRequest req;
    r->String("method", req.method);
    r->String("scheme", req.scheme);
    r->String("host", req.host);
    r->Integer("port", req.port);
    r->String("target", req.target);
    r->String("path", req.path);
    r->String("version", req.version);
    HeadersFromJson(*r, "headers", req.headers);
    HeadersFromJson(*r, "trailers", req.trailers);
    BodyFromJson(*r, req.body);
    f.request = std::move(req);
  }
  if (auto r = top.Object("response")) {
    HttpResponse resp;
    r->Integer("status", resp.status);
    r->String("reason", resp.reason);
    r->String("version", resp.version);
    HeadersFromJson(*r, "headers", resp.headers);
    HeadersFromJson(*r, "trailers", resp.trailers);
    r->IntList("informational", resp.informational);
    BodyFromJson(*r, resp.body);
    f.response = std::move(resp);
  }
  top.String("replay_of", f.replay_of);
  if (auto h = top.Object("har")) {
    HarContext har;
    h->String("initiator", har.initiator);
    h->String("resource_type", har.resource_type);
    if (auto page = h->Object("page")) {
      page->String("id", har.page_id);
      page->String("started", har.page_started);
      page->String("title", har.page_title);
    }
    f.har = std::move(har);
  }
  if (const json* mods = top.Array("modified_by")) {
    for (size_t i = 0; i < mods->size(); ++i) {
      JsonFields m = top.Nested((*mods)[i], StrCat("modified_by[", i, "]"));
      Modification mod;
      m.String("rule", mod.rule);
      m.String("what", mod.what);
      m.String("before", mod.before);
      m.String("after", mod.after);
      f.modified_by.push_back(std::move(mod));
    }
  }
  if (auto e = top.Object("error")) {
    FlowError fe;
    e->String("phase", fe.phase);
    e->String("message", fe.message);
    f.error = std::move(fe);
  }
  if (!error.empty()) return Fail(error);
  return f;
}

namespace {

// Members in sorted order, as nlohmann's std::map orders them: the line is the text that
// FlowToJson(f).dump() prints back.

// A header whose name or value is not UTF-8 (HTTP allows any byte from 0x80 in a value) keeps
// its bytes: ["X-Name","caf\\xe9",{"value_b64":"Y2Fm6Q=="}]: the strings show them escaped
// (EscapeIllFormedUtf8), the object holds them exactly.
void WriteHeaders(JsonWriter& w, const HeaderList& headers) {
  w.Raw("[");
  for (size_t i = 0; i < headers.size(); ++i) {
    const auto& [name, value] = headers[i];
    w.Raw(i == 0 ? "[" : ",[");
    bool name_bytes = !w.StringIfUtf8(name);
    if (name_bytes) w.String(EscapeIllFormedUtf8(name));
    w.Raw(",");
    bool value_bytes = !w.StringIfUtf8(value);
    if (value_bytes) w.String(EscapeIllFormedUtf8(value));
    if (name_bytes || value_bytes) {
      w.Raw(",{");
      if (name_bytes) {
        w.Raw("\"name_b64\":");
        w.Base64String(name);
      }
      if (value_bytes) {
        w.Raw(name_bytes ? ",\"value_b64\":" : "\"value_b64\":");
        w.Base64String(value);
      }
      w.Raw("}");
    }
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

// How bodies are written, and where: with |spans|, each body's `"…","encoding":"…"` text (from
// its content's opening quote to the end of its encoding's value) is noted, so the same line
// without body contents can be cut out of the line with them (AppendFlowJsonLines).
struct BodySpans {
  std::pair<size_t, size_t> at[2];
  int n = 0;
};
struct BodyOut {
  BodyContent content = BodyContent::kInclude;
  BodySpans* spans = nullptr;
};

constexpr std::string_view kOmittedContent = "\"\",\"encoding\":\"text\"";

void WriteBody(JsonWriter& w, const BodyRecord& b, BodyOut out) {
  w.Raw("{\"content\":");
  const size_t begin = w.size();
  bool text = w.StringIfUtf8(out.content == BodyContent::kOmit ? std::string_view() : b.content);
  if (!text) w.Base64String(b.content);
  w.Raw(text ? ",\"encoding\":\"text\"" : ",\"encoding\":\"base64\"");
  if (out.spans != nullptr && out.spans->n < 2) out.spans->at[out.spans->n++] = {begin, w.size()};
  w.Raw(",\"size\":");
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

void WriteRequest(JsonWriter& w, const HttpRequest& r, BodyOut content) {
  w.Raw("{\"body\":");
  WriteBody(w, r.body, content);
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

void WriteResponse(JsonWriter& w, const HttpResponse& r, BodyOut content) {
  w.Raw("{\"body\":");
  WriteBody(w, r.body, content);
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

void WriteWebSocket(JsonWriter& w, const WebSocketRecord& ws) {
  w.Raw("{");
  if (ws.close) {
    w.Raw("\"close\":{\"by\":");
    w.String(ws.close->by_client ? "client" : "server");
    if (ws.close->code) {
      w.Raw(",\"code\":");
      w.Int(*ws.close->code);
    }
    w.Raw(",\"reason\":");
    w.String(ws.close->reason);
    w.Raw("},");
  }
  w.Raw("\"dropped\":");
  w.Uint(ws.dropped);
  if (!ws.error.empty()) {
    w.Raw(",\"error\":");
    w.String(ws.error);
  }
  w.Raw(",\"messages\":[");
  for (size_t i = 0; i < ws.messages.size(); ++i) {
    const WebSocketMessage& m = ws.messages[i];
    w.Raw(i == 0 ? "{\"compressed\":" : ",{\"compressed\":");
    w.Bool(m.compressed);
    w.Raw(",\"content\":");
    bool text = w.StringIfUtf8(m.content);
    if (!text) w.Base64String(m.content);
    w.Raw(text ? ",\"encoding\":\"text\",\"from_client\":"
               : ",\"encoding\":\"base64\",\"from_client\":");
    w.Bool(m.from_client);
    w.Raw(",\"opcode\":");
    w.String(m.opcode);
    w.Raw(",\"size\":");
    w.Uint(m.size);
    w.Raw(",\"time\":");
    w.Double(m.time);
    w.Raw(",\"truncated\":");
    w.Bool(m.truncated);
    w.Raw("}");
  }
  w.Raw("]}");
}

// Enough for the line in the common case (text bodies without many escapes), so that the
// output grows once.
size_t EstimateLineSize(const Flow& f) {
  constexpr size_t kFixed = 1024;       // keys, punctuation, numbers, TLS and cert names
  constexpr size_t kPerHeader = 8;      // ["",""],
  size_t n = kFixed + f.id.size() + f.client_addr.size() + f.server_host.size() +
             f.server_addr.size() + f.note.size() + f.replay_of.size();
  for (const Modification& m : f.modified_by) {
    n += m.rule.size() + m.what.size() + m.before.size() + m.after.size() + 48;
  }
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
  if (f.har) {
    n += 96 + 2 * (f.har->initiator.size() + f.har->page_id.size() + f.har->page_title.size() +
                   f.har->page_started.size() + f.har->resource_type.size());
  }
  if (f.websocket) {
    for (const WebSocketMessage& m : f.websocket->messages) n += 160 + m.content.size() * 4 / 3;
  }
  return n;
}

void AppendLine(const Flow& f, std::string& out, BodyOut content) {
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
  if (!f.entry.empty()) {
    w.Raw(",\"entry\":");
    w.String(f.entry);
  }
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
  if (f.har) {
    w.Raw(",\"har\":{\"initiator\":");
    w.String(f.har->initiator);
    w.Raw(",\"page\":{\"id\":");
    w.String(f.har->page_id);
    w.Raw(",\"started\":");
    w.String(f.har->page_started);
    w.Raw(",\"title\":");
    w.String(f.har->page_title);
    w.Raw("},\"resource_type\":");
    w.String(f.har->resource_type);
    w.Raw("}");
  }
  w.Raw(",\"id\":");
  w.String(f.id);
  w.Raw(",\"insecure\":");
  w.Bool(f.insecure);
  w.Raw(f.kind == Flow::Kind::kTunnel ? ",\"kind\":\"tunnel\"" : ",\"kind\":\"http\"");
  if (!f.modified_by.empty()) {
    w.Raw(",\"modified_by\":[");
    for (size_t i = 0; i < f.modified_by.size(); ++i) {
      const Modification& m = f.modified_by[i];
      w.Raw(i == 0 ? "{\"after\":" : ",{\"after\":");
      w.String(m.after);
      w.Raw(",\"before\":");
      w.String(m.before);
      w.Raw(",\"rule\":");
      w.String(m.rule);
      w.Raw(",\"what\":");
      w.String(m.what);
      w.Raw("}");
    }
    w.Raw("]");
  }
  if (!f.note.empty()) {
    w.Raw(",\"note\":");
    w.String(f.note);
  }
  if (!f.replay_of.empty()) {
    w.Raw(",\"replay_of\":");
    w.String(f.replay_of);
  }
  if (f.request) {
    w.Raw(",\"request\":");
    WriteRequest(w, *f.request, content);
  }
  if (f.response) {
    w.Raw(",\"response\":");
    WriteResponse(w, *f.response, content);
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
  w.Raw("\"");
  if (f.stream_id != 0) {
    w.Raw(",\"stream_id\":");
    w.Uint(f.stream_id);
  }
  w.Raw(",\"timings\":");
  WriteTimings(w, f.timings);
  if (f.websocket) {
    w.Raw(",\"websocket\":");
    WriteWebSocket(w, *f.websocket);
  }
  w.Raw("}");
}

}  // namespace

void AppendFlowJsonLine(const Flow& f, std::string& out, BodyContent content) {
  AppendLine(f, out, BodyOut{content, nullptr});
}

void AppendFlowJsonLines(const Flow& f, std::string& line, std::string& without_bodies) {
  const size_t base = line.size();
  BodySpans spans;
  AppendLine(f, line, BodyOut{BodyContent::kInclude, &spans});
  without_bodies.reserve(without_bodies.size() + line.size() - base);
  size_t from = base;
  for (int i = 0; i < spans.n; ++i) {
    without_bodies.append(line, from, spans.at[i].first - from);
    without_bodies.append(kOmittedContent);
    from = spans.at[i].second;
  }
  without_bodies.append(line, from, line.size() - from);
}

std::string FlowToJsonLine(const Flow& flow) {
  std::string line;
  AppendFlowJsonLine(flow, line);
  return line;
}

}  // namespace mitmd
