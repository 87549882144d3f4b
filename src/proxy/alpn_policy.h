#pragma once
// Which application protocol the client gets: mirrored from the upstream where the two can
// meet, translated where they cannot. mitmd offers the server what the client offered (minus
// what it cannot relay), then answers the client with what the server chose. Where one side
// speaks only one HTTP version the offer upstream adds the other one, so that a server that
// speaks only that one is still reached and mitmd translates between the two:
//  - a client that offers h2 but not HTTP/1.1 (nghttp, gRPC, curl --http2-prior-knowledge) is
//    offered upstream with http/1.1 added: a server that speaks only HTTP/1.1 then gets HTTP/1.1
//    and the client h2;
//  - an HTTP/1 client (it offers http/1.1 but not h2, or no ALPN at all: curl --http1.1, Python
//    requests, most libraries) is offered upstream with h2 added LAST: a server that speaks only
//    h2 (nghttpd, gRPC services) selects it, the client gets HTTP/1.1 and the exchange goes
//    upstream as an HTTP/2 stream of a shared connection. A server that honours the client's
//    order still picks http/1.1 (mirrored); most servers pick by their own order, so an HTTP/1
//    client to a server that speaks both is usually translated too, which mitmproxy avoids by
//    never offering h2 here. mitmd prefers reaching h2-only servers at all; WebSocket upgrades,
//    which HTTP/2 cannot carry as such, get an HTTP/1.1 connection of their own (HttpLayer).
// A pure policy: client offer x upstream outcome -> answer.
//
//   client offers      server chooses      client gets   upstream speaks
//   h2, http/1.1       h2                  h2            h2          (mirror)
//   h2, http/1.1       http/1.1 or none    http/1.1      HTTP/1.1    (mirror)
//   h2                 h2                  h2            h2          (mirror)
//   h2                 http/1.1 or none    h2            HTTP/1.1    (translate)
//   h2                 fails               h2            -           (a 502 over h2)
//   http/1.1 or none   http/1.1 or none    HTTP/1.1      HTTP/1.1    (mirror)
//   http/1.1 or none   h2                  HTTP/1.1      h2          (translate)

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
// http/1.1 added last when the client offered h2 alone, h2 added last when it speaks only
// HTTP/1 (see above).
std::vector<std::string> UpstreamAlpnOffer(const std::vector<std::string>& client_offer,
                                           const ProtocolSupport& support);

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
