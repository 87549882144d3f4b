#pragma once
// Which application protocol the client gets: mirrored from the upstream where the two can
// meet, translated where they cannot. mitmd offers the server what the client offered (minus
// what it cannot relay), then answers the client with what the server chose. A client that
// offers h2 but not HTTP/1.1 (nghttp, gRPC, curl --http2-prior-knowledge) is offered upstream
// with http/1.1 added: a server that speaks only HTTP/1.1 then gets HTTP/1.1 and the client
// h2, mitmd translating between them. A pure policy: client offer x upstream outcome -> answer.
//
//   client offers      server chooses      client gets   upstream speaks
//   h2, http/1.1       h2                  h2            h2          (mirror)
//   h2, http/1.1       http/1.1 or none    http/1.1      HTTP/1.1    (mirror)
//   h2                 h2                  h2            h2          (mirror)
//   h2                 http/1.1 or none    h2            HTTP/1.1    (translate)
//   h2                 fails               h2            -           (a 502 over h2)
//   http/1.1 or none   http/1.1 or none    HTTP/1.1      HTTP/1.1    (mirror)

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
// http/1.1 added last when the client offered h2 alone (see above).
std::vector<std::string> UpstreamAlpnOffer(const std::vector<std::string>& client_offer,
                                           const ProtocolSupport& support);

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
  bool translated = false;  // the client speaks h2, the upstream HTTP/1.1
};
std::string_view ToString(ClientAnswer::Next next);

ClientAnswer AnswerClient(const std::vector<std::string>& client_offer,
                          const UpstreamAlpn& upstream, const ProtocolSupport& support);

}  // namespace mitmd::proxy
