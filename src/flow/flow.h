#pragma once
// Flow: the record of one exchange (an HTTP request/response, a tunnel, or a failure).
// Its JSON form (flow_json.h) is the one schema shared by the session log, the viewer and HAR.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/headers.h"

namespace mitmd {

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_128_GCM_SHA256"
  std::string alpn;     // negotiated protocol, empty when none
  std::string sni;      // server name the client asked for (client side) / we sent (server side)
  std::vector<std::string> alpn_offered;  // client side: what the client offered
};

struct CertInfo {
  std::string subject;
  std::string issuer;
  std::vector<std::string> sans;  // "DNS:example.com", "IP:127.0.0.1"
  std::string sha256;             // hex, lower case, of the DER
  std::string not_before;         // ISO 8601 UTC
  std::string not_after;
  bool verified = false;
  std::string verify_error;  // empty when verified
};

// A body as recorded: its full size on the wire (after transfer decoding) and the first
// max_body_record bytes of it.
struct BodyRecord {
  uint64_t size = 0;
  std::string content;  // raw bytes, at most the cap
  bool truncated = false;

  // Appends what fits under |cap| and counts all of |data|.
  void Append(const char* data, size_t len, size_t cap);
};

struct HttpRequest {
  std::string method;
  std::string scheme;  // "https" or "http"
  std::string host;    // from the Host header / authority
  uint16_t port = 0;
  std::string target;  // as on the request line
  std::string path;    // origin-form path and query
  std::string version; // "HTTP/1.1"
  HeaderList headers;
  HeaderList trailers;
  BodyRecord body;

  std::string Url() const;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::string version;
  HeaderList headers;
  HeaderList trailers;
  BodyRecord body;
  // Interim (1xx) responses seen before the final one, e.g. 100 Continue.
  std::vector<int> informational;
};

// One WebSocket message as recorded (a control frame is a message too).
struct WebSocketMessage {
  bool from_client = false;
  std::string opcode;       // "text", "binary", "ping", "pong", "close"
  double time = 0;          // when its last frame was read (epoch seconds)
  uint64_t size = 0;        // payload bytes, inflated when compressed
  std::string content;      // the first bytes of the payload, up to the flow's body cap
  bool truncated = false;   // content holds less than size
  bool compressed = false;  // permessage-deflate (content is inflated)
};

struct WebSocketClose {
  bool by_client = false;  // who sent the first close frame
  std::optional<int> code;
  std::string reason;
};

// The messages of a WebSocket that followed a 101 (or an HTTP/2 extended CONNECT).
struct WebSocketRecord {
  std::vector<WebSocketMessage> messages;
  uint64_t dropped = 0;  // messages past the per-flow cap: counted, not kept
  std::optional<WebSocketClose> close;
  std::string error;     // why the frames stopped being read (the relay went on)
};

struct Timings {
  double accepted = 0;        // client connection accepted (epoch seconds)
  double upstream_connect_start = 0;
  double upstream_connect_end = 0;
  double upstream_tls_end = 0;
  double client_tls_end = 0;
  double request_start = 0;   // first byte of the request head
  double request_end = 0;     // last byte of the request body
  double response_start = 0;  // first byte of the response head
  double response_end = 0;    // last byte of the response body
};

struct FlowError {
  std::string phase;    // "proxy_request", "dns", "connect", "upstream_tls", "client_tls",
                        // "request", "response", "policy"
  std::string message;  // in words a user understands
};

// Where a flow is in its life. A live flow is published to the viewer while it runs (request
// head seen, response streaming, a WebSocket open); a held one waits for the user (hold/edit);
// a done flow is final and is the only kind written to the session log.
enum class FlowState { kLive, kHeld, kDone };
// "live", "held", "done": the JSON "state" value.
std::string_view ToString(FlowState state);
// The inverse of ToString; nullopt for anything else.
std::optional<FlowState> FlowStateFromString(std::string_view text);

// One change mitmd made to a flow on the user's behalf: a rule (map-local, map-remote,
// modify-headers, modify-body) or the user's own edit of a held message. The flow records what
// went on the wire; |before| keeps what the client or the server had sent.
struct Modification {
  std::string rule;    // the rule as written ("modify-headers |host:a.test|X-Env|dev"), or "edit"
  std::string what;    // "request header X-Env", "request url", "response body", ...
  std::string before;  // empty when the value was absent; bodies are cut at kModificationCap
  std::string after;   // empty when the change removed it
};
// Bytes of a body kept in a Modification's |before| and |after|.
inline constexpr size_t kModificationCap = 64 * 1024;

// What a browser's HAR export said about an entry beyond the exchange: kept on import so the flow
// goes out again in a HAR with its page, initiator and resource type. JSON "har".
struct HarContext {
  std::string page_id;        // the entry's pageref
  std::string page_title;     // that page's title
  std::string page_started;   // that page's startedDateTime, as the file wrote it
  std::string initiator;      // _initiator as JSON text (Chrome: {"type":"script","stack":...})
  std::string resource_type;  // _resourceType: "document", "script", "xhr", ...
  bool operator==(const HarContext&) const = default;
};

struct Flow {
  enum class Kind { kHttp, kTunnel };

  std::string id;  // a version 7 UUID (NewFlowId)
  Kind kind = Kind::kHttp;
  FlowState state = FlowState::kDone;
  // Grows with every published snapshot of a live flow (1, 2, ...), so a consumer that sees
  // snapshots out of order keeps the newest; the recorded (done) flow has the highest.
  uint64_t revision = 0;
  uint64_t client_conn_id = 0;
  uint64_t upstream_conn_id = 0;
  bool upstream_reused = false;
  std::string client_addr;  // "127.0.0.1:53422"
  // How the client reached mitmd when not as a plain HTTP proxy: "socks5", "https-proxy"
  // (TLS to the proxy itself), "socks4" (refused). JSON client.entry, absent when empty.
  std::string entry;
  std::string server_host;
  uint16_t server_port = 0;
  std::string server_addr;  // resolved address we connected to
  bool insecure = false;    // upstream verification was disabled (--insecure)
  std::string note;         // e.g. why a connection was tunnelled instead of intercepted
  std::optional<TlsInfo> client_tls;
  std::optional<TlsInfo> server_tls;
  std::optional<CertInfo> server_cert;
  std::optional<HttpRequest> request;
  std::optional<HttpResponse> response;
  std::optional<FlowError> error;
  Timings timings;
  uint32_t stream_id = 0;   // the HTTP/2 stream on the client connection; 0 for HTTP/1
  std::optional<WebSocketRecord> websocket;
  uint64_t bytes_up = 0;    // tunnels: client to server
  uint64_t bytes_down = 0;  // tunnels: server to client
  size_t body_record_cap = 0;
  // Every change rules or the user made, in the order they were made.
  std::vector<Modification> modified_by;
  std::string replay_of;  // the id of the flow this one replays; empty for live traffic
  std::optional<HarContext> har;  // only for flows imported from a HAR file
};

// A version 7 UUID: time-ordered to the millisecond, random after that.
std::string NewFlowId();

}  // namespace mitmd
