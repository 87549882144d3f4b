#include "http/translate.h"

#include <openssl/base64.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>

#include "core/strings.h"
#include "http/status.h"

namespace mitmd::http {
namespace {

constexpr std::string_view kConnectionSpecific[] = {"connection", "keep-alive", "proxy-connection",
                                                    "transfer-encoding", "upgrade"};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsPseudo(std::string_view name) { return !name.empty() && name[0] == ':'; }

// The authority of an absolute-form target ("http://host:port/path"), or empty.
std::string_view AuthorityOf(std::string_view target) {
  size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string_view rest = target.substr(scheme_end + 3);
  return rest.substr(0, rest.find_first_of("/?#"));
}

std::string_view PathOf(std::string_view target) {
  size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return target;
  std::string_view rest = target.substr(scheme_end + 3);
  size_t slash = rest.find_first_of("/?");
  if (slash == std::string_view::npos) return "/";
  return rest.substr(slash);
}

// Regular headers for HTTP/1.1: crumbs of cookie joined into one field at the first one's place.
HeaderList H1Fields(const HeaderList& h2) {
  HeaderList out;
  size_t cookie_at = SIZE_MAX;
  for (const auto& [name, value] : h2) {
    if (IsPseudo(name)) continue;
    if (name == "cookie") {
      if (cookie_at == SIZE_MAX) {
        cookie_at = out.size();
        out.emplace_back(name, value);
      } else {
        out[cookie_at].second += "; " + value;
      }
      continue;
    }
    out.emplace_back(name, value);
  }
  return out;
}

bool BodyForbidden(int status, bool head_request) {
  return head_request || (status >= 100 && status < 200) || status == 204 || status == 304;
}

}  // namespace

bool HasPseudoHeaders(const HeaderList& headers) {
  return !headers.empty() && IsPseudo(headers.front().first);
}

const std::string* PseudoHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (!IsPseudo(n)) break;
    if (n == name) return &v;
  }
  return nullptr;
}

HeaderList RegularHeaders(const HeaderList& headers) {
  HeaderList out;
  for (const auto& h : headers) {
    if (!IsPseudo(h.first)) out.push_back(h);
  }
  return out;
}

void DropConnectionSpecific(HeaderList& headers) {
  // Connection names further hop-by-hop fields (RFC 9110 section 7.6.1).
  std::vector<std::string> named;
  for (const auto& [name, value] : headers) {
    if (!EqualsIgnoreCase(name, "connection")) continue;
    ForEachListElement(value, [&](std::string_view token) {
      named.push_back(Lower(token));
      return true;
    });
  }
  HeaderList out;
  out.reserve(headers.size());
  for (auto& [name, value] : headers) {
    std::string lower = Lower(name);
    bool drop = std::find(std::begin(kConnectionSpecific), std::end(kConnectionSpecific), lower) !=
                    std::end(kConnectionSpecific) ||
                std::find(named.begin(), named.end(), lower) != named.end();
    if (lower == "te") drop = !EqualsIgnoreCase(TrimOws(value), "trailers");
    if (lower == "host") drop = false;  // the caller decides (it becomes :authority)
    if (!drop) out.emplace_back(std::move(lower), std::move(value));
  }
  headers = std::move(out);
}

HeaderList ToH2Request(const RequestHead& head, std::string_view scheme,
                       std::string_view authority) {
  HeaderList regular = head.headers;
  DropConnectionSpecific(regular);
  std::string host;
  if (const std::string* h = FindHeader(regular, "host")) host = *h;
  RemoveHeader(regular, "host");
  if (host.empty()) host = std::string(AuthorityOf(head.target));
  if (host.empty()) host = std::string(authority);
  HeaderList out;
  out.emplace_back(":method", head.method);
  if (EqualsIgnoreCase(head.method, "CONNECT")) {
    out.emplace_back(":authority", head.target);
  } else {
    out.emplace_back(":scheme", std::string(scheme));
    out.emplace_back(":authority", host);
    out.emplace_back(":path", std::string(PathOf(head.target)));
  }
  for (auto& h : regular) out.push_back(std::move(h));
  return out;
}

HeaderList ToH2Response(const ResponseHead& head) {
  HeaderList regular = head.headers;
  DropConnectionSpecific(regular);
  HeaderList out;
  out.emplace_back(":status", std::to_string(head.status));
  for (auto& h : regular) out.push_back(std::move(h));
  return out;
}

Result<H1Request> ToH1Request(const RequestHead& h2, bool has_body) {
  const std::string* method = PseudoHeader(h2.headers, ":method");
  const std::string* authority = PseudoHeader(h2.headers, ":authority");
  const std::string* path = PseudoHeader(h2.headers, ":path");
  // Empty values too: nghttp2 refuses them on the wire, but an empty one here would make a
  // request line with a missing part (found by translate_fuzz).
  if (!method || method->empty()) return Fail("HTTP/2 request without :method");
  bool connect = *method == "CONNECT";
  if (!connect && (!path || path->empty())) return Fail("HTTP/2 request without :path");
  if (connect && (!authority || authority->empty())) {
    return Fail("HTTP/2 CONNECT without :authority");
  }
  H1Request out;
  RequestHead& head = out.request.head;
  head.method = *method;
  head.target = connect ? *authority : *path;
  head.version = "HTTP/1.1";
  HeaderList fields = H1Fields(h2.headers);
  if (authority && !FindHeader(fields, "host")) head.headers.emplace_back("host", *authority);
  for (auto& f : fields) head.headers.push_back(std::move(f));
  if (!has_body) {
    out.framing = H1Framing::kNone;
  } else if (FindHeader(head.headers, "content-length")) {
    out.framing = H1Framing::kContentLength;
  } else {
    head.headers.emplace_back("transfer-encoding", "chunked");
    out.framing = H1Framing::kChunked;
  }
  return out;
}

Result<H1Response> ToH1Response(const ResponseHead& h2, bool has_body, bool head_request) {
  int status = h2.status;
  if (const std::string* s = PseudoHeader(h2.headers, ":status")) {
    status = 0;
    for (char c : *s) {
      if (c < '0' || c > '9' || status > 999) return Fail("HTTP/2 response with a bad :status");
      status = status * 10 + (c - '0');
    }
  }
  if (status < 100 || status > 999) return Fail("HTTP/2 response without a valid :status");
  H1Response out;
  ResponseHead& head = out.response.head;
  head.version = "HTTP/1.1";
  head.status = status;
  head.reason = std::string(ReasonPhrase(status));
  head.headers = H1Fields(h2.headers);
  if (!has_body || BodyForbidden(status, head_request)) {
    out.framing = H1Framing::kNone;
  } else if (FindHeader(head.headers, "content-length")) {
    out.framing = H1Framing::kContentLength;
  } else {
    head.headers.emplace_back("transfer-encoding", "chunked");
    out.framing = H1Framing::kChunked;
  }
  return out;
}

const std::string* ExtendedConnectProtocol(const HeaderList& h2) {
  const std::string* method = PseudoHeader(h2, ":method");
  if (!method || *method != "CONNECT") return nullptr;
  return PseudoHeader(h2, ":protocol");
}

Result<Request> UpgradeForExtendedConnect(const RequestHead& h2, std::string_view websocket_key) {
  const std::string* protocol = ExtendedConnectProtocol(h2.headers);
  if (!protocol) return Fail("not an extended CONNECT (no :protocol)");
  const std::string* authority = PseudoHeader(h2.headers, ":authority");
  const std::string* path = PseudoHeader(h2.headers, ":path");
  if (!authority || !path) return Fail("extended CONNECT without :authority or :path");
  Request out;
  RequestHead& head = out.head;
  head.method = "GET";
  head.target = *path;
  head.version = "HTTP/1.1";
  head.headers.emplace_back("Host", *authority);
  head.headers.emplace_back("Connection", "Upgrade");
  head.headers.emplace_back("Upgrade", *protocol);
  if (EqualsIgnoreCase(*protocol, "websocket")) {
    head.headers.emplace_back("Sec-WebSocket-Key", std::string(websocket_key));
  }
  for (auto& f : H1Fields(h2.headers)) {
    // The client's own (an HTTP/2 client has no business sending them) would contradict ours.
    if (EqualsIgnoreCase(f.first, "host") || EqualsIgnoreCase(f.first, "sec-websocket-key")) {
      continue;
    }
    head.headers.push_back(std::move(f));
  }
  return out;
}

HeaderList ExtendedConnectResponse(const ResponseHead& h1_switching) {
  HeaderList regular = h1_switching.headers;
  DropConnectionSpecific(regular);
  RemoveHeader(regular, "sec-websocket-accept");
  HeaderList out;
  out.emplace_back(":status", "200");
  for (auto& h : regular) out.push_back(std::move(h));
  return out;
}

std::string WebSocketAccept(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input = StrCat(key, kGuid);
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const uint8_t*>(input.data()), input.size(), digest);
  char out[64];
  size_t n = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out), digest, sizeof digest);
  return std::string(out, n);
}

std::string ChunkOf(std::string_view data) {
  if (data.empty()) return {};
  char size[20];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size, static_cast<size_t>(n));
  out.append(data);
  out += "\r\n";
  return out;
}

std::string LastChunk(const HeaderList& trailers) {
  std::string out = "0\r\n";
  AppendHeaderLines(out, trailers);
  out += "\r\n";
  return out;
}

}  // namespace mitmd::http
