#pragma once
// Which application protocol the client gets: mirrored from the upstream where the two can
// meet, translated where they cannot. mitmd offers the server what the client offered (minus
// what it cannot relay), then answers the client with what the server chose:
//  - a client that offers h2 but not HTTP/1.1 (nghttp, gRPC, curl --http2-prior-knowledge) is
//    offered upstream with http/1.1 added: a server that speaks only HTTP/1.1 then gets HTTP/1.1
//    and the client h2;
//  - an HTTP/1 client (it offers http/1.1 but not h2, or no ALPN at all: curl --http1.1, Python
//    requests, most libraries) is offered exactly that, so a server that speaks both versions
//    gets the client's HTTP/1.1, relayed byte for byte. A server that speaks only h2 gives itself
//    away: it refuses the handshake with no_application_protocol (Go, gRPC), answers the
//    request with HTTP/2 frames, or completes the handshake without choosing a protocol and
//    closes without a byte (nghttpd, Python h2 servers). mitmd then offers it h2 (http/1.1
//    first, h2 last) on a new connection, once, and if the server chooses h2 the exchange goes
//    as a stream of a shared HTTP/2 connection, translated, and the host:port is remembered
//    (H2OnlyHosts): later connections to it offer h2 at once. WebSocket upgrades, which
//    HTTP/2 cannot carry as such, keep an HTTP/1.1 offer (HttpLayer).
// A pure policy: client offer x upstream outcome -> answer.
//
//   client offers      server chooses      client gets   upstream speaks
//   h2, http/1.1       h2                  h2            h2          (mirror)
//   h2, http/1.1       http/1.1 or none    http/1.1      HTTP/1.1    (mirror)
//   h2                 h2                  h2            h2          (mirror)
//   h2                 http/1.1 or none    h2            HTTP/1.1    (translate)
//   h2                 fails               h2            -           (a 502 over h2)
//   http/1.1 or none   http/1.1 or none    HTTP/1.1      HTTP/1.1    (mirror)
//   http/1.1 or none   h2 (offered only to a server known to speak only h2)
//                                          HTTP/1.1      h2          (translate)

#include <string>
#include <string_view>
#include <vector>

namespace mitmd::proxy {

// What mitmd can parse once the client's handshake is done. http/1.1 always; any other
// protocol but h2 is relayed as recorded raw bytes.
struct ProtocolSupport {
  bool h2 = false;  // an HTTP/2 codec exists: h2 is offered and parsed
};
// What this build supports.
inline constexpr ProtocolSupport kProtocolSupport{.h2 = true};

// The ALPN list to offer the upstream for a client that offered |client_offer| (in its order),
// http/1.1 added last when the client offered h2 alone; h2 added last for an HTTP/1 client when
// the server is known to speak only h2 (|h2_only_server|, see above).
std::vector<std::string> UpstreamAlpnOffer(const std::vector<std::string>& client_offer,
                                           const ProtocolSupport& support,
                                           bool h2_only_server = false);

// An HTTP/1 client's upstream offer with h2 added last (http/1.1 first when it was empty): for a
// server that speaks only h2.
std::vector<std::string> WithH2(const std::vector<std::string>& offer);
bool OffersH2(const std::vector<std::string>& offer);
// "http/1.1, h2"; "no ALPN" for an empty offer.
std::string OfferText(const std::vector<std::string>& offer);

// The first bytes a server sent in answer to an HTTP/1.1 request are HTTP/2 frames (its
// SETTINGS preface, or a GOAWAY): it speaks only h2. Needs at least a frame header (9 bytes).
bool LooksLikeHttp2Server(std::string_view first_bytes);
// The upstream TLS handshake failed with the no_application_protocol alert (|tls_error| as
// net::TlsErrorString words it): the server has none of the offered protocols.
bool RefusedForAlpn(std::string_view tls_error);

// |offer| without the HTTP/2 protocols (h2, grpc-exp): for a request that HTTP/2 cannot carry
// as it is (an HTTP/1.1 Upgrade), which needs an HTTP/1.1 connection of its own.
std::vector<std::string> Http1Offer(const std::vector<std::string>& offer);

// How the upstream handshake ended, as far as ALPN is concerned.
struct UpstreamAlpn {
  bool connected = true;  // false: the upstream failed (an HTTP client is told with a 502)
  std::string chosen;     // the protocol the upstream selected, empty when none
};

struct ClientAnswer {
  enum class Next {
    kHttp1,   // HTTP/1.x through the HTTP layer
    kHttp2,   // HTTP/2 through its layer
    kRaw,     // another protocol: relayed as decrypted bytes in a recorded flow
    kRefuse,  // no protocol in common, or the upstream failed and the client speaks no
              // HTTP to explain it in: the client gets a no_application_protocol alert
  };
  Next next = Next::kHttp1;
  std::string alpn;    // the protocol answered to the client; empty: no ALPN extension
  std::string reason;  // kRefuse: why, in words for the recorded flow
  // The two sides speak different HTTP versions: an h2 client and an HTTP/1.1 upstream, or an
  // HTTP/1 client (kHttp1) and an h2 upstream.
  bool translated = false;
};
std::string_view ToString(ClientAnswer::Next next);

ClientAnswer AnswerClient(const std::vector<std::string>& client_offer,
                          const UpstreamAlpn& upstream, const ProtocolSupport& support);

}  // namespace mitmd::proxy
