#include "flow/har.h"

#include <openssl/base64.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

#include "core/strings.h"
#include "http/body_decoder.h"
#include "http/headers.h"

namespace mitmd {
namespace {

using nlohmann::json;



std::string UnBase64(std::string_view in) {
  size_t max = 0;
  if (!EVP_DecodedLength(&max, in.size())) return {};
  std::string out(max, '\0');
  size_t n = 0;
  if (!EVP_DecodeBase64(reinterpret_cast<uint8_t*>(out.data()), &n, max,
                        reinterpret_cast<const uint8_t*>(in.data()), in.size())) {
    return {};
  }
  out.resize(n);
  return out;
}

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

json HeadersJson(const HeaderList& headers) {
  json arr = json::array();
  for (const auto& [k, v] : headers) arr.push_back({{"name", k}, {"value", v}});
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
               {"url", r.Url()},
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
    std::string authority = f.server_host.find(':') != std::string::npos ? "[" + f.server_host + "]" : f.server_host;
    request = {{"method", "CONNECT"},
               {"url", StrCat("https://", authority, ":", f.server_port, "/")},
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
  return entry;
}

json BuildHar(const std::vector<std::shared_ptr<const Flow>>& flows, const HarOptions& options) {
  json entries = json::array();
  for (const auto& f : flows) entries.push_back(BuildHarEntry(*f, options));
  return {{"log",
           {{"version", "1.2"},
            {"creator", {{"name", "mitmd"}, {"version", options.creator_version}}},
            {"pages", json::array()},
            {"entries", std::move(entries)}}}};
}

namespace {

HeaderList HeadersFromHar(const json& arr) {
  HeaderList out;
  if (!arr.is_array()) return out;
  for (const auto& h : arr) {
    if (!h.is_object()) continue;
    auto name = h.value("name", std::string());
    auto value = h.value("value", std::string());
    // HTTP/2 pseudo-headers are not headers in the HTTP/1.1 sense.
    if (name.empty() || name[0] == ':') continue;
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
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

double NonNegative(const json& timings, const char* key) {
  if (!timings.is_object() || !timings.contains(key) || !timings[key].is_number()) return 0;
  double v = timings[key].get<double>();
  return v > 0 ? v / 1000.0 : 0;
}

Result<Flow> FlowFromHarEntry(const json& e) {
  if (!e.is_object() || !e.contains("request") || !e["request"].is_object()) {
    return Fail("entry has no request");
  }
  const json& rq = e["request"];
  auto url = ParseUrl(rq.value("url", std::string()));
  if (!url) return Fail("entry has no absolute request URL");
  Flow f;
  f.id = e.value("_flowId", std::string());
  if (f.id.empty()) f.id = NewFlowId();
  f.client_conn_id = e.value("_clientConnection", uint64_t{0});
  f.upstream_conn_id = e.value("_upstreamConnection", uint64_t{0});
  f.upstream_reused = e.value("_upstreamReused", false);
  f.server_host = url->host;
  f.server_port = url->port;
  if (e.contains("serverIPAddress") && e["serverIPAddress"].is_string()) {
    f.server_addr = e["serverIPAddress"].get<std::string>();
  }
  std::string method = rq.value("method", std::string("GET"));
  const json& rs = e.value("response", json::object());
  if (method == "CONNECT") {
    f.kind = Flow::Kind::kTunnel;
    f.bytes_up = std::max<int64_t>(0, rq.value("bodySize", int64_t{0}));
    f.bytes_down = std::max<int64_t>(0, rs.value("bodySize", int64_t{0}));
  } else {
    HttpRequest req;
    req.method = std::move(method);
    req.scheme = url->scheme;
    req.host = url->host;
    req.port = url->port;
    req.path = url->path;
    req.target = url->path;
    req.version = rq.value("httpVersion", std::string("HTTP/1.1"));
    req.headers = HeadersFromHar(rq.value("headers", json::array()));
    if (rq.contains("postData") && rq["postData"].is_object()) {
      std::string text = rq["postData"].value("text", std::string());
      req.body.content = text;
      req.body.size = text.size();
    }
    f.request = std::move(req);
    int status = rs.value("status", 0);
    if (status > 0) {
      HttpResponse resp;
      resp.status = status;
      resp.reason = rs.value("statusText", std::string());
      resp.version = rs.value("httpVersion", std::string("HTTP/1.1"));
      resp.headers = HeadersFromHar(rs.value("headers", json::array()));
      const json& content = rs.value("content", json::object());
      std::string text = content.value("text", std::string());
      if (content.value("encoding", std::string()) == "base64") text = UnBase64(text);
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
  if (e.contains("_error") && e["_error"].is_object()) {
    f.error = FlowError{e["_error"].value("phase", std::string("response")),
                        e["_error"].value("message", std::string())};
  } else if (f.kind == Flow::Kind::kHttp && !f.response) {
    f.error = FlowError{"response", rs.value("_error", std::string("no response in the HAR file"))};
  }
  const json& t = e.value("timings", json::object());
  double at = ParseIsoTime(e.value("startedDateTime", std::string()));
  Timings& ft = f.timings;
  ft.accepted = at;
  at += NonNegative(t, "blocked") + NonNegative(t, "dns");
  double connect = NonNegative(t, "connect");
  if (connect > 0) {
    double ssl = std::min(NonNegative(t, "ssl"), connect);
    ft.upstream_connect_start = at;
    ft.upstream_connect_end = at + connect - ssl;
    if (ssl > 0) ft.upstream_tls_end = at + connect;
    at += connect;
  }
  ft.request_start = at;
  ft.request_end = at += NonNegative(t, "send");
  ft.response_start = at += NonNegative(t, "wait");
  ft.response_end = at + NonNegative(t, "receive");
  if (!f.response && f.kind == Flow::Kind::kHttp) ft.response_start = ft.response_end = 0;
  return f;
}

}  // namespace

Result<HarImport> FlowsFromHar(const json& har) {
  if (!har.is_object() || !har.contains("log") || !har["log"].is_object() ||
      !har["log"].contains("entries") || !har["log"]["entries"].is_array()) {
    return Fail("not a HAR file: no log.entries array");
  }
  HarImport out;
  for (const auto& e : har["log"]["entries"]) {
    try {
      auto f = FlowFromHarEntry(e);
      if (f) {
        out.flows.push_back(std::move(*f));
      } else {
        ++out.skipped;
      }
    } catch (const json::exception&) {
      ++out.skipped;
    }
  }
  return out;
}

}  // namespace mitmd
