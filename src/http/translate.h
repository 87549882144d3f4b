#pragma once
// HTTP/1.1 <-> HTTP/2 head translation (RFC 9113 section 8), pure functions. HTTP/2 heads keep
// their pseudo-headers as the first entries of |headers| (":method", ":scheme", ":authority",
// ":path"; ":status"), as H2Codec reports and sends them.
//
// To HTTP/2: Host becomes :authority, connection-specific fields (Connection and what it
// names, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade; TE unless "trailers") are
// dropped, names are lower-cased. To HTTP/1.1: pseudo-headers become the start line and Host,
// cookie crumbs are joined with "; ", and a body of unknown length is sent chunked.

#include <string>
#include <string_view>

#include "core/result.h"
#include "http/headers.h"
#include "http/message.h"

namespace mitmd::http {

inline constexpr std::string_view kHttp2Version = "HTTP/2";

// True when the list opens with a pseudo-header (an HTTP/2 head).
bool HasPseudoHeaders(const HeaderList& headers);
// The value of pseudo-header |name| (":path"), or nullptr.
const std::string* PseudoHeader(const HeaderList& headers, std::string_view name);
// |headers| without pseudo-headers.
HeaderList RegularHeaders(const HeaderList& headers);

// Removes the fields HTTP/2 forbids (above) and lower-cases every name.
void DropConnectionSpecific(HeaderList& headers);

// An HTTP/1 request head as HTTP/2 header fields, pseudo-headers first. |scheme| is "https" or
// "http"; the authority comes from Host, else from an absolute-form target, else |authority|.
// CONNECT carries only :method and :authority.
HeaderList ToH2Request(const RequestHead& head, std::string_view scheme,
                       std::string_view authority = {});
// An HTTP/1 response head as HTTP/2 fields, :status first.
HeaderList ToH2Response(const ResponseHead& head);

// How an HTTP/2 message's body goes over HTTP/1.1.
enum class H1Framing {
  kNone,           // no body (END_STREAM on the head)
  kContentLength,  // the content-length field frames it; the data goes as is
  kChunked,        // no length known: Transfer-Encoding: chunked was added
};

struct H1Request {
  Request request;  // raw empty: encode it
  H1Framing framing = H1Framing::kNone;
};
struct H1Response {
  Response response;
  H1Framing framing = H1Framing::kNone;
};

// An HTTP/2 request head as HTTP/1.1. |has_body|: END_STREAM was not on the head. An error
// when a pseudo-header is missing (":method", ":path" unless CONNECT).
Result<H1Request> ToH1Request(const RequestHead& h2, bool has_body);
// An HTTP/2 response head as HTTP/1.1 (reason phrase from the status table). |has_body| as
// above; a response that cannot have one (HEAD, 204, 304) is kNone whatever it says.
Result<H1Response> ToH1Response(const ResponseHead& h2, bool has_body, bool head_request = false);

// RFC 8441 (WebSockets over HTTP/2) negotiated down to an HTTP/1.1 server: the client's
// extended CONNECT (":method" CONNECT with ":protocol") becomes the HTTP/1.1 Upgrade that asks
// the same (RFC 6455 section 4.1): GET :path, Host from :authority, Upgrade: the protocol,
// Connection: Upgrade, |websocket_key| as Sec-WebSocket-Key (HTTP/2 has none: the proxy makes
// one), the regular fields as they are (Sec-WebSocket-Version, -Protocol, -Extensions, Origin).
// An error when it is no extended CONNECT or a pseudo-header it needs is missing.
Result<Request> UpgradeForExtendedConnect(const RequestHead& h2, std::string_view websocket_key);
// The ":protocol" of an extended CONNECT, or nullptr for any other request.
const std::string* ExtendedConnectProtocol(const HeaderList& h2);
// The 2xx that answers an extended CONNECT for the HTTP/1.1 server's 101: ":status" 200 and
// the 101's fields without the connection-specific ones and Sec-WebSocket-Accept (which
// belongs to the HTTP/1.1 handshake, checked by the proxy).
HeaderList ExtendedConnectResponse(const ResponseHead& h1_switching);
// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2).
std::string WebSocketAccept(std::string_view key);

// Body bytes and the end of a chunked HTTP/1.1 body, trailers included.
std::string ChunkOf(std::string_view data);
std::string LastChunk(const HeaderList& trailers = {});

}  // namespace mitmd::http
