// Fuzzes the HTTP/1.1 <-> HTTP/2 head translation (http/translate.h) with heads as a peer may
// send them. The first input byte holds flags (bit 0: the message has a body, bit 1: it answers
// a HEAD, bit 2: the scheme is http); the rest is lines cut at '\n': the first is the start
// line ("METHOD TARGET", or a status), each other one a field "name:value" (a name that starts
// with ':' is a pseudo-header, cut at its second ':'). Besides the sanitizers' checks it aborts
// when a translation breaks its contract: a pseudo-header or a connection-specific field
// reaching the other version, an upper-case HTTP/2 name, a body framed on a message that
// cannot have one, a chunked framing without its Transfer-Encoding, an extended CONNECT
// downgraded to anything but one GET with one Host and one key.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/strings.h"
#include "http/translate.h"

namespace {

using mitmd::HeaderList;
using namespace mitmd::http;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "translate_fuzz: invariant broken: %s\n", what);
  std::abort();
}

bool IsPseudo(const std::string& name) { return !name.empty() && name[0] == ':'; }

size_t Count(const HeaderList& headers, std::string_view name) {
  size_t n = 0;
  for (const auto& h : headers) n += mitmd::EqualsIgnoreCase(h.first, name);
  return n;
}

// HTTP/2 fields after the pseudo-headers: lower-case, none connection-specific (and in a
// request no Host: it became :authority).
void CheckH2(const HeaderList& fields, std::string_view first) {
  bool request = first == ":method";
  if (fields.empty() || fields.front().first != first) Die("HTTP/2 head without its first field");
  bool regular = false;
  for (const auto& [name, value] : fields) {
    if (IsPseudo(name)) {
      if (regular) Die("a pseudo-header after a regular field");
      continue;
    }
    regular = true;
    for (char c : name) {
      if (c >= 'A' && c <= 'Z') Die("an upper-case HTTP/2 field name");
    }
    for (std::string_view gone : {"connection", "keep-alive", "proxy-connection",
                                  "transfer-encoding", "upgrade"}) {
      if (name == gone) Die("a connection-specific field in an HTTP/2 head");
    }
    if (request && name == "host") Die("Host in an HTTP/2 request");
    if (name == "te" && !mitmd::EqualsIgnoreCase(mitmd::TrimOws(value), "trailers")) {
      Die("te other than trailers in an HTTP/2 head");
    }
  }
}

void CheckH1(const HeaderList& fields) {
  for (const auto& h : fields) {
    if (IsPseudo(h.first)) Die("a pseudo-header in an HTTP/1.1 head");
  }
}

void CheckFraming(const HeaderList& fields, H1Framing framing, bool body_allowed) {
  if (!body_allowed && framing != H1Framing::kNone) Die("a body framed where none may be");
  if (framing == H1Framing::kChunked && Count(fields, "transfer-encoding") == 0) {
    Die("chunked framing without Transfer-Encoding");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const bool has_body = flags & 1;
  const bool head_request = flags & 2;
  const std::string_view scheme = (flags & 4) ? "http" : "https";
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string start;
  HeaderList fields;
  bool first = true;
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (first) {
      start = std::string(line);
      first = false;
      continue;
    }
    size_t colon = line.find(':', line.starts_with(':') ? 1 : 0);
    if (colon == std::string_view::npos) continue;
    fields.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }

  // HTTP/1 heads to HTTP/2.
  RequestHead h1_request;
  size_t space = start.find(' ');
  h1_request.method = start.substr(0, space);
  h1_request.target = space == std::string::npos ? "" : start.substr(space + 1);
  h1_request.version = "HTTP/1.1";
  h1_request.headers = RegularHeaders(fields);
  CheckH2(ToH2Request(h1_request, scheme, "fallback.test:443"), ":method");
  ResponseHead h1_response;
  h1_response.status = 200;
  h1_response.headers = h1_request.headers;
  CheckH2(ToH2Response(h1_response), ":status");
  HeaderList connect_answer = ExtendedConnectResponse(h1_response);
  CheckH2(connect_answer, ":status");
  if (connect_answer.front().second != "200") Die("extended CONNECT answered without 200");
  if (Count(connect_answer, "sec-websocket-accept") != 0) Die("the 101's accept reached h2");

  // HTTP/2 heads (pseudo-headers as sent) to HTTP/1.1.
  RequestHead h2_request;
  h2_request.headers = fields;
  h2_request.version = std::string(kHttp2Version);
  if (auto r = ToH1Request(h2_request, has_body)) {
    const RequestHead& head = r->request.head;
    CheckH1(head.headers);
    CheckFraming(head.headers, r->framing, has_body);
    if (head.method.empty()) Die("translated request without a method");
  }
  ResponseHead h2_response;
  h2_response.headers = fields;
  if (auto r = ToH1Response(h2_response, has_body, head_request)) {
    const ResponseHead& head = r->response.head;
    if (head.status < 100 || head.status > 999) Die("status out of range");
    CheckH1(head.headers);
    bool allowed = has_body && !head_request && head.status >= 200 && head.status != 204 &&
                   head.status != 304;
    CheckFraming(head.headers, r->framing, allowed);
  }
  if (auto r = UpgradeForExtendedConnect(h2_request, "dGhlIHNhbXBsZSBub25jZQ==")) {
    const RequestHead& head = r->head;
    if (head.method != "GET") Die("extended CONNECT not downgraded to GET");
    CheckH1(head.headers);
    if (Count(head.headers, "host") != 1) Die("downgraded CONNECT without exactly one Host");
    const std::string* protocol = ExtendedConnectProtocol(fields);
    if (!protocol) Die("downgraded without a :protocol");
    if (mitmd::EqualsIgnoreCase(*protocol, "websocket") &&
        Count(head.headers, "sec-websocket-key") != 1) {
      Die("downgraded WebSocket without exactly one key");
    }
  }

  // Chunk framing: the size line says what follows.
  std::string chunk = ChunkOf(start);
  if (!start.empty() && (chunk.size() < start.size() + 5 || !chunk.ends_with("\r\n"))) {
    Die("a chunk without its size line or end");
  }
  std::string last = LastChunk(RegularHeaders(fields));
  if (!last.starts_with("0\r\n") || !last.ends_with("\r\n\r\n")) Die("a last chunk misframed");
  return 0;
}
