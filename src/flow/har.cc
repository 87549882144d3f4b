#include "flow/har.h"

#include <openssl/base64.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "core/strings.h"
#include "flow/json_fields.h"
#include "flow/json_writer.h"
#include "http/body_decoder.h"
#include "http/headers.h"

namespace mitmd {
namespace {

using nlohmann::json;



std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Form-style percent decoding ('+' is a space), leaving malformed escapes as they are.
std::string PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() &&
               HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

json NameValues(std::string_view query) {
  json arr = json::array();
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      arr.push_back({{"name", PercentDecode(pair.substr(0, eq))},
                     {"value", eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1))}});
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return arr;
}

// HAR has no place for bytes that are not text: they show as \xHH, as in the viewer.
json HeadersJson(const HeaderList& headers) {
  json arr = json::array();
  for (const auto& [k, v] : headers) {
    arr.push_back({{"name", IsValidUtf8(k) ? k : EscapeIllFormedUtf8(k)},
                   {"value", IsValidUtf8(v) ? v : EscapeIllFormedUtf8(v)}});
  }
  return arr;
}

json RequestCookies(const HeaderList& headers) {
  json arr = json::array();
  for (const auto& [k, v] : headers) {
    if (!EqualsIgnoreCase(k, "cookie")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view item = Trim(rest.substr(0, semi));
      if (!item.empty()) {
        size_t eq = item.find('=');
        arr.push_back({{"name", std::string(Trim(item.substr(0, eq)))},
                       {"value", eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1))}});
      }
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return arr;
}

json ResponseCookies(const HeaderList& headers) {
  json arr = json::array();
  for (const auto& [k, v] : headers) {
    if (!EqualsIgnoreCase(k, "set-cookie")) continue;
    std::string_view rest = v;
    size_t semi = rest.find(';');
    std::string_view first = Trim(rest.substr(0, semi));
    size_t eq = first.find('=');
    json c = {{"name", std::string(Trim(first.substr(0, eq)))},
              {"value", eq == std::string_view::npos ? "" : std::string(first.substr(eq + 1))}};
    while (semi != std::string_view::npos) {
      rest.remove_prefix(semi + 1);
      semi = rest.find(';');
      std::string_view attr = Trim(rest.substr(0, semi));
      size_t aeq = attr.find('=');
      std::string_view name = Trim(attr.substr(0, aeq));
      std::string value = aeq == std::string_view::npos ? "" : std::string(Trim(attr.substr(aeq + 1)));
      if (EqualsIgnoreCase(name, "path")) c["path"] = value;
      else if (EqualsIgnoreCase(name, "domain")) c["domain"] = value;
      else if (EqualsIgnoreCase(name, "httponly")) c["httpOnly"] = true;
      else if (EqualsIgnoreCase(name, "secure")) c["secure"] = true;
    }
    arr.push_back(std::move(c));
  }
  return arr;
}

std::string MimeType(const HeaderList& headers, std::string_view fallback) {
  const std::string* ct = FindHeader(headers, "content-type");
  return ct ? *ct : std::string(fallback);
}

// Bytes of an HTTP/1.x head as sent; -1 for HTTP/2, where there is no such byte count.
int64_t HeadSize(std::string_view first_line, const HeaderList& headers, std::string_view version) {
  if (!version.starts_with("HTTP/1")) return -1;
  int64_t n = static_cast<int64_t>(first_line.size()) + 2;
  for (const auto& [k, v] : headers) n += static_cast<int64_t>(k.size() + 2 + v.size() + 2);
  return n + 2;
}

double Ms(double from, double to) {
  if (from <= 0 || to <= 0 || to < from) return 0;
  return std::round((to - from) * 1e6) / 1e3;  // milliseconds, microsecond precision
}

// The address a flow connected to, without the port: HAR wants a bare IPv4 or IPv6 address.
std::string BareAddress(std::string_view addr) {
  if (addr.starts_with('[')) {
    size_t close = addr.find(']');
    return std::string(addr.substr(1, close == std::string_view::npos ? addr.size() - 1 : close - 1));
  }
  size_t colon = addr.find(':');
  if (colon != std::string_view::npos && addr.find(':', colon + 1) == std::string_view::npos) {
    return std::string(addr.substr(0, colon));
  }
  return std::string(addr);
}

bool IsIpAddress(const std::string& s) {
  if (s.empty()) return false;
  bool v4 = std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  bool v6 = s.find(':') != std::string::npos &&
            std::all_of(s.begin(), s.end(), [](char c) { return HexValue(c) >= 0 || c == ':' || c == '.'; });
  return v4 || v6;
}

json ContentJson(const HttpResponse& resp, const HarOptions& options) {
  json content = {{"mimeType", MimeType(resp.headers, "x-unknown")}};
  std::string text = resp.body.content;
  std::string comment;
  bool coded = false;
  if (FindHeader(resp.headers, "content-encoding") != nullptr && !text.empty()) {
    auto decoded = DecodeBodyForHeaders(text, resp.headers, options.max_decoded_body);
    if (decoded) {
      coded = true;
      text = std::move(decoded->data);
      if (decoded->partial) comment = "decoded body is incomplete";
    } else {
      comment = decoded.error().message + "; content is the body as recorded";
    }
  }
  if (resp.body.truncated) {
    comment = StrCat(comment.empty() ? "" : comment + "; ", "recorded copy cut at ",
                     resp.body.content.size(), " of ", resp.body.size, " bytes");
  }
  content["size"] = coded || resp.body.truncated ? text.size() : resp.body.size;
  if (coded && !resp.body.truncated) {
    content["compression"] = static_cast<int64_t>(text.size()) - static_cast<int64_t>(resp.body.size);
  }
  if (!text.empty()) {
    if (IsValidUtf8(text)) {
      content["text"] = std::move(text);
    } else {
      content["text"] = Base64Encode(text);
      content["encoding"] = "base64";
    }
  }
  if (!comment.empty()) content["comment"] = comment;
  return content;
}

// RFC 3986 character classes, as har-validator's "uri" format checks them.
bool IsUnreservedOrSubDelim(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void AppendPercent(std::string& out, char c) {
  constexpr char kHex[] = "0123456789ABCDEF";
  auto b = static_cast<unsigned char>(c);
  out += '%';
  out += kHex[b >> 4];
  out += kHex[b & 15];
}

// The host as a URI authority: an IPv6 literal in brackets; anything else a reg-name with every
// other byte percent-encoded. The Host header is the client's word, so it can hold anything.
std::string UriHost(std::string_view host) {
  bool ipv6 = host.find(':') != std::string_view::npos &&
              host.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
  if (ipv6) return StrCat("[", host, "]");
  std::string out;
  for (char c : host) {
    if (IsUnreservedOrSubDelim(c)) out += c;
    else AppendPercent(out, c);
  }
  return out;
}

// Path and query with every byte RFC 3986 does not allow there percent-encoded; existing
// %XX escapes are kept.
std::string UriPathAndQuery(std::string_view path) {
  if (path.empty()) return "/";
  std::string out;
  bool in_query = false;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    bool ok = IsUnreservedOrSubDelim(c) || c == ':' || c == '@' || c == '/' || (in_query && c == '?');
    if (c == '?' && !in_query) {
      in_query = true;
      ok = true;
    }
    if (c == '%' && i + 2 < path.size() && IsHexDigit(path[i + 1]) && IsHexDigit(path[i + 2])) ok = true;
    if (ok) out += c;
    else AppendPercent(out, c);
  }
  if (!out.starts_with('/')) out.insert(0, "/");
  return out;
}

std::string HarUrl(std::string_view scheme, std::string_view host, uint16_t port,
                   std::string_view path) {
  bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  std::string scheme_text = scheme == "https" || scheme == "http" ? std::string(scheme) : "http";
  return StrCat(scheme_text, "://", UriHost(host), default_port || port == 0 ? "" : StrCat(":", port),
                UriPathAndQuery(path));
}

json TlsJson(const std::optional<TlsInfo>& t) {
  if (!t) return nullptr;
  return {{"version", t->version}, {"cipher", t->cipher}, {"alpn", t->alpn}, {"sni", t->sni}};
}

}  // namespace

std::string IsoTimeMillis(double epoch_seconds) {
  if (epoch_seconds < 0) epoch_seconds = 0;
  auto whole = static_cast<time_t>(std::floor(epoch_seconds));
  int ms = static_cast<int>(std::lround((epoch_seconds - static_cast<double>(whole)) * 1000));
  if (ms >= 1000) {
    ++whole;
    ms -= 1000;
  }
  tm t{};
  gmtime_r(&whole, &t);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ms);
  return buf;
}

double ParseIsoTime(std::string_view s) {
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > s.size()) return false;
    auto [end, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, out);
    return ec == std::errc() && end == s.data() + pos + len;
  };
  tm t{};
  int year, mon, day, hour, min, sec;
  if (!num(0, 4, year) || s.size() < 19 || s[4] != '-' || !num(5, 2, mon) || s[7] != '-' ||
      !num(8, 2, day) || (s[10] != 'T' && s[10] != ' ') || !num(11, 2, hour) || s[13] != ':' ||
      !num(14, 2, min) || s[16] != ':' || !num(17, 2, sec)) {
    return 0;
  }
  t.tm_year = year - 1900;
  t.tm_mon = mon - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = min;
  t.tm_sec = sec;
  double out = static_cast<double>(timegm(&t));
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    double scale = 0.1;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      out += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    bool colon = i + 3 < s.size() && s[i + 3] == ':';
    if (num(i + 1, 2, oh) && num(i + (colon ? 4 : 3), 2, om)) {
      double offset = oh * 3600.0 + om * 60.0;
      out += s[i] == '+' ? -offset : offset;
    }
  }
  return out;
}

json BuildHarEntry(const Flow& f, const HarOptions& options) {
  const Timings& t = f.timings;
  bool opened_upstream = !f.upstream_reused && t.upstream_connect_start > 0;
  double connected = std::max(t.upstream_connect_end, t.upstream_tls_end);
  double request_start = t.request_start > 0 ? t.request_start : t.accepted;
  double started = opened_upstream ? t.upstream_connect_start : request_start;
  if (started <= 0) started = t.accepted;

  json timings = {{"blocked", -1}, {"dns", -1}, {"connect", -1}, {"ssl", -1}};
  double total = 0;
  if (opened_upstream && t.upstream_connect_end > 0) {
    double connect = Ms(t.upstream_connect_start, connected);
    timings["connect"] = connect;
    total += connect;
    if (t.upstream_tls_end > 0) timings["ssl"] = Ms(t.upstream_connect_end, t.upstream_tls_end);
    if (t.request_start > 0) {
      double blocked = Ms(connected, t.request_start);
      timings["blocked"] = blocked;
      total += blocked;
    }
  }
  double send = Ms(t.request_start, t.request_end);
  double wait = Ms(t.request_end, t.response_start);
  double receive = Ms(t.response_start, t.response_end);
  timings["send"] = send;
  timings["wait"] = wait;
  timings["receive"] = receive;
  total += send + wait + receive;

  json request;
  json response;
  if (f.request) {
    const HttpRequest& r = *f.request;
    std::string query;
    if (size_t q = r.path.find('?'); q != std::string::npos) query = r.path.substr(q + 1);
    request = {{"method", r.method},
               {"url", HarUrl(r.scheme, r.host, r.port, r.path)},
               {"httpVersion", r.version.empty() ? "HTTP/1.1" : r.version},
               {"cookies", RequestCookies(r.headers)},
               {"headers", HeadersJson(r.headers)},
               {"queryString", NameValues(query)},
               {"headersSize", HeadSize(StrCat(r.method, " ", r.target, " ", r.version), r.headers, r.version)},
               {"bodySize", r.body.size}};
    if (r.body.size > 0 || !r.body.content.empty()) {
      std::string mime = MimeType(r.headers, "application/octet-stream");
      json post = {{"mimeType", mime}};
      if (IsValidUtf8(r.body.content)) {
        post["text"] = r.body.content;
        if (mime.starts_with("application/x-www-form-urlencoded")) post["params"] = NameValues(r.body.content);
      } else {
        post["text"] = Base64Encode(r.body.content);
        post["comment"] = "binary body, base64-encoded";
      }
      request["postData"] = std::move(post);
    }
  } else {
    request = {{"method", "CONNECT"},
               {"url", StrCat("https://", UriHost(f.server_host), ":", f.server_port, "/")},
               {"httpVersion", "HTTP/1.1"},
               {"cookies", json::array()},
               {"headers", json::array()},
               {"queryString", json::array()},
               {"headersSize", -1},
               {"bodySize", f.bytes_up}};
  }
  if (f.response) {
    const HttpResponse& r = *f.response;
    const std::string* location = FindHeader(r.headers, "location");
    response = {{"status", r.status},
                {"statusText", r.reason},
                {"httpVersion", r.version.empty() ? "HTTP/1.1" : r.version},
                {"cookies", ResponseCookies(r.headers)},
                {"headers", HeadersJson(r.headers)},
                {"content", ContentJson(r, options)},
                {"redirectURL", location ? *location : ""},
                {"headersSize", HeadSize(StrCat(r.version, " ", r.status, " ", r.reason), r.headers, r.version)},
                {"bodySize", r.body.size}};
  } else {
    bool tunnel_ok = f.kind == Flow::Kind::kTunnel && !f.error;
    response = {{"status", tunnel_ok ? 200 : 0},
                {"statusText", tunnel_ok ? "Connection established" : ""},
                {"httpVersion", "HTTP/1.1"},
                {"cookies", json::array()},
                {"headers", json::array()},
                {"content", {{"size", 0}, {"mimeType", "x-unknown"}}},
                {"redirectURL", ""},
                {"headersSize", -1},
                {"bodySize", f.kind == Flow::Kind::kTunnel ? static_cast<int64_t>(f.bytes_down) : -1}};
  }

  json entry = {{"startedDateTime", IsoTimeMillis(started)},
                {"time", std::round(total * 1000) / 1000},
                {"request", std::move(request)},
                {"response", std::move(response)},
                {"cache", json::object()},
                {"timings", std::move(timings)},
                {"_flowId", f.id},
                {"_clientConnection", f.client_conn_id},
                {"_upstreamConnection", f.upstream_conn_id},
                {"_upstreamReused", f.upstream_reused}};
  std::string ip = BareAddress(f.server_addr);
  if (IsIpAddress(ip)) entry["serverIPAddress"] = ip;
  if (f.upstream_conn_id != 0) entry["connection"] = std::to_string(f.upstream_conn_id);
  if (f.error) entry["_error"] = {{"phase", f.error->phase}, {"message", f.error->message}};
  if (f.client_tls || f.server_tls) {
    entry["_tls"] = {{"client", TlsJson(f.client_tls)}, {"server", TlsJson(f.server_tls)}};
  }
  if (f.insecure) entry["comment"] = "upstream certificate verification was disabled (--insecure)";
  if (f.websocket) {
    // As Chrome's DevTools export them: text as is, binary (opcode 2) base64-encoded.
    static constexpr std::pair<std::string_view, int> kOpcodes[] = {
        {"text", 1}, {"binary", 2}, {"close", 8}, {"ping", 9}, {"pong", 10}};
    json messages = json::array();
    for (const WebSocketMessage& m : f.websocket->messages) {
      int opcode = 0;
      for (const auto& [name, value] : kOpcodes) {
        if (m.opcode == name) opcode = value;
      }
      bool text = opcode != 2 && IsValidUtf8(m.content);
      messages.push_back({{"type", m.from_client ? "send" : "receive"},
                          {"time", m.time},
                          {"opcode", opcode},
                          {"data", text ? m.content : Base64Encode(m.content)}});
    }
    entry["_webSocketMessages"] = std::move(messages);
  }
  if (f.har) {
    if (!f.har->page_id.empty()) entry["pageref"] = f.har->page_id;
    if (!f.har->resource_type.empty()) entry["_resourceType"] = f.har->resource_type;
    if (!f.har->initiator.empty()) {
      json initiator = json::parse(f.har->initiator, nullptr, /*allow_exceptions=*/false);
      entry["_initiator"] = initiator.is_discarded() ? json(f.har->initiator) : std::move(initiator);
    }
  }
  return entry;
}

namespace {

json PageJson(const HarContext& c) {
  return {{"id", c.page_id},
          {"title", c.page_title},
          {"startedDateTime", c.page_started},
          {"pageTimings", json::object()}};
}

}  // namespace

HarStream::HarStream(HarOptions options) : options_(std::move(options)) {}

std::string HarStream::Head() const {
  json creator = {{"name", "mitmd"}, {"version", options_.creator_version}};
  return StrCat("{\"log\":{\"version\":\"1.2\",\"creator\":", creator.dump(), ",\"entries\":[");
}

void HarStream::AppendEntry(const Flow& flow, std::string& out) {
  if (entries_++ > 0) out.push_back(',');
  out += BuildHarEntry(flow, options_).dump(-1, ' ', false, json::error_handler_t::replace);
  if (flow.har && !flow.har->page_id.empty() && pages_.size() < kMaxPages &&
      seen_pages_.insert(flow.har->page_id).second) {
    pages_.push_back(PageJson(*flow.har));
  }
}

std::string HarStream::Tail() const {
  return StrCat("],\"pages\":", json(pages_).dump(-1, ' ', false, json::error_handler_t::replace),
                "}}");
}

json BuildHar(const std::vector<std::shared_ptr<const Flow>>& flows, const HarOptions& options) {
  HarStream stream(options);
  std::string doc = stream.Head();
  for (const auto& f : flows) stream.AppendEntry(*f, doc);
  doc += stream.Tail();
  return json::parse(doc);
}

namespace {

void HeadersFromHar(JsonFields& parent, HeaderList& out) {
  const json* arr = parent.Array("headers");
  if (arr == nullptr) return;
  for (size_t i = 0; i < arr->size(); ++i) {
    std::string name, value;
    JsonFields h = parent.Nested((*arr)[i], StrCat(parent.PathOf("headers"), "[", i, "]"));
    h.String("name", name);
    h.String("value", value);
    // HTTP/2 pseudo-headers are not headers in the HTTP/1.1 sense.
    if (name.empty() || name[0] == ':') continue;
    out.emplace_back(std::move(name), std::move(value));
  }
}

struct ParsedUrl {
  std::string scheme, host, path;
  uint16_t port = 0;
};

std::optional<ParsedUrl> ParseUrl(std::string_view url) {
  ParsedUrl u;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  u.scheme = std::string(url.substr(0, sep));
  for (char& c : u.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view rest = url.substr(sep + 3);
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.path.starts_with('?')) u.path = "/" + u.path;
  if (size_t hash = u.path.find('#'); hash != std::string::npos) u.path.resize(hash);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view port_text;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') port_text = authority.substr(close + 2);
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  u.port = u.scheme == "https" || u.scheme == "wss" ? 443 : 80;
  if (!port_text.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || p > 65535) return std::nullopt;
    u.port = static_cast<uint16_t>(p);
  }
  return u;
}

// A HAR timing in milliseconds as seconds; -1 (not applicable) and absent are 0.
double NonNegative(JsonFields& timings, std::string_view key) {
  double v = 0;
  timings.Double(key, v);
  return v > 0 ? v / 1000.0 : 0;
}

Result<Flow> FlowFromHarEntry(const json& e, const std::unordered_map<std::string, const json*>& pages) {
  const json absent;  // stands for an optional object the entry leaves out
  std::string error;
  JsonFields entry(e, "", error);
  auto rq = entry.Object("request");
  if (!rq) return Fail(error.empty() ? "the entry has no request" : error);
  std::string url_text;
  rq->String("url", url_text);
  auto url = ParseUrl(url_text);
  if (!url) return Fail(error.empty() ? "request.url: not an absolute URL" : error);
  Flow f;
  entry.String("_flowId", f.id);
  if (f.id.empty()) f.id = NewFlowId();
  entry.Integer("_clientConnection", f.client_conn_id);
  entry.Integer("_upstreamConnection", f.upstream_conn_id);
  entry.Bool("_upstreamReused", f.upstream_reused);
  f.server_host = url->host;
  f.server_port = url->port;
  entry.String("serverIPAddress", f.server_addr);
  std::string method = "GET";
  rq->String("method", method);
  auto rs = entry.Object("response");
  if (!rs) rs.emplace(entry.Nested(absent, "response"));
  if (method == "CONNECT") {
    f.kind = Flow::Kind::kTunnel;
    int64_t up = 0, down = 0;
    rq->Integer("bodySize", up);
    rs->Integer("bodySize", down);
    f.bytes_up = static_cast<uint64_t>(std::max<int64_t>(0, up));
    f.bytes_down = static_cast<uint64_t>(std::max<int64_t>(0, down));
  } else {
    HttpRequest req;
    req.method = std::move(method);
    req.scheme = url->scheme;
    req.host = url->host;
    req.port = url->port;
    req.path = url->path;
    req.target = url->path;
    req.version = "HTTP/1.1";
    rq->String("httpVersion", req.version);
    HeadersFromHar(*rq, req.headers);
    if (auto post = rq->Object("postData")) {
      post->String("text", req.body.content);
      req.body.size = req.body.content.size();
    }
    f.request = std::move(req);
    int status = 0;
    rs->Integer("status", status);
    if (status > 0) {
      HttpResponse resp;
      resp.status = status;
      rs->String("statusText", resp.reason);
      resp.version = "HTTP/1.1";
      rs->String("httpVersion", resp.version);
      HeadersFromHar(*rs, resp.headers);
      std::string text, encoding;
      if (auto content = rs->Object("content")) {
        content->String("text", text);
        content->String("encoding", encoding);
      }
      if (encoding == "base64") text = Base64Decode(text).value_or(std::string());
      // HAR bodies are already decoded: a Content-Encoding header would make the viewer
      // decode them twice, so it is kept under a name that says what happened.
      for (auto& [name, value] : resp.headers) {
        if (EqualsIgnoreCase(name, "content-encoding") && !text.empty()) name = "X-HAR-Decoded-Content-Encoding";
      }
      resp.body.content = std::move(text);
      resp.body.size = resp.body.content.size();
      f.response = std::move(resp);
    }
  }
  if (auto err = entry.Object("_error")) {
    FlowError fe{"response", ""};
    err->String("phase", fe.phase);
    err->String("message", fe.message);
    f.error = std::move(fe);
  } else if (f.kind == Flow::Kind::kHttp && !f.response) {
    FlowError fe{"response", "no response in the HAR file"};
    rs->String("_error", fe.message);
    f.error = std::move(fe);
  }
  std::string started;
  entry.String("startedDateTime", started);
  double at = ParseIsoTime(started);
  auto t = entry.Object("timings");
  if (!t) t.emplace(entry.Nested(absent, "timings"));
  Timings& ft = f.timings;
  ft.accepted = at;
  at += NonNegative(*t, "blocked") + NonNegative(*t, "dns");
  double connect = NonNegative(*t, "connect");
  if (connect > 0) {
    double ssl = std::min(NonNegative(*t, "ssl"), connect);
    ft.upstream_connect_start = at;
    ft.upstream_connect_end = at + connect - ssl;
    if (ssl > 0) ft.upstream_tls_end = at + connect;
    at += connect;
  }
  ft.request_start = at;
  ft.request_end = at += NonNegative(*t, "send");
  ft.response_start = at += NonNegative(*t, "wait");
  ft.response_end = at + NonNegative(*t, "receive");
  if (!f.response && f.kind == Flow::Kind::kHttp) ft.response_start = ft.response_end = 0;
  // A browser's context for the entry: its page, what started it, what kind of resource it is.
  HarContext har;
  entry.String("pageref", har.page_id);
  entry.String("_resourceType", har.resource_type);
  if (e.contains("_initiator") && !e["_initiator"].is_null()) {
    const json& initiator = e["_initiator"];
    har.initiator = initiator.is_string() ? initiator.get<std::string>()
                                          : initiator.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (auto page = pages.find(har.page_id); !har.page_id.empty() && page != pages.end()) {
    JsonFields p = entry.Nested(*page->second, StrCat("page ", har.page_id));
    p.String("title", har.page_title);
    p.String("startedDateTime", har.page_started);
  }
  if (har != HarContext{}) f.har = std::move(har);
  if (!error.empty()) return Fail(error);
  return f;
}

}  // namespace

Result<HarImport> FlowsFromHar(const json& har) {
  if (!har.is_object() || !har.contains("log") || !har["log"].is_object() ||
      !har["log"].contains("entries") || !har["log"]["entries"].is_array()) {
    return Fail("not a HAR file: no log.entries array");
  }
  HarImport out;
  std::unordered_map<std::string, const json*> pages;
  if (const json& log = har["log"]; log.contains("pages") && log["pages"].is_array()) {
    for (const json& page : log["pages"]) {
      if (page.is_object() && page.contains("id") && page["id"].is_string()) {
        pages.emplace(page["id"].get<std::string>(), &page);
      }
    }
  }
  const json& entries = har["log"]["entries"];
  for (size_t i = 0; i < entries.size(); ++i) {
    auto f = FlowFromHarEntry(entries[i], pages);
    if (f) {
      out.flows.push_back(std::move(*f));
      continue;
    }
    ++out.skipped;
    if (out.warnings.size() < kMaxLoadWarnings) {
      out.warnings.push_back(StrCat("entry ", i + 1, ": ", f.error().message));
    }
  }
  return out;
}

}  // namespace mitmd
