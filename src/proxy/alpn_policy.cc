#include "proxy/alpn_policy.h"

#include <algorithm>

#include "core/strings.h"

namespace mitmd::proxy {
namespace {

constexpr std::string_view kHttp1 = "http/1.1";
constexpr std::string_view kH2 = "h2";
// gRPC clients offer it before h2: HTTP/2 under gRPC's own name.
constexpr std::string_view kGrpcExp = "grpc-exp";

bool Offers(const std::vector<std::string>& offer, std::string_view protocol) {
  return std::find(offer.begin(), offer.end(), protocol) != offer.end();
}

// A client that will speak HTTP/1 whatever the server chooses: it offered http/1.1 without h2,
// or no ALPN at all.
bool SpeaksOnlyHttp1(const std::vector<std::string>& offer) {
  return offer.empty() || (Offers(offer, kHttp1) && !Offers(offer, kH2));
}

std::string List(const std::vector<std::string>& offer) {
  std::string out;
  for (const std::string& p : offer) out += StrCat(out.empty() ? "" : ", ", p);
  return out;
}

// An h2-only client to an HTTP/1.1 server: h2 on the client's side, mitmd translates.
ClientAnswer Translated() {
  return {.next = ClientAnswer::Next::kHttp2, .alpn = std::string(kH2), .translated = true};
}

}  // namespace

std::string_view ToString(ClientAnswer::Next next) {
  switch (next) {
    case ClientAnswer::Next::kHttp1: return "http1";
    case ClientAnswer::Next::kHttp2: return "http2";
    case ClientAnswer::Next::kRaw: return "raw";
    case ClientAnswer::Next::kRefuse: return "refuse";
  }
  return "unknown";
}

std::vector<std::string> UpstreamAlpnOffer(const std::vector<std::string>& client_offer,
                                           const ProtocolSupport& support, bool h2_only_server) {
  std::vector<std::string> offer;
  for (const std::string& p : client_offer) {
    if (p.empty() || (p == kH2 && !support.h2) || Offers(offer, p)) continue;
    offer.push_back(p);
  }
  if (Offers(offer, kH2) && !Offers(offer, kHttp1)) offer.emplace_back(kHttp1);
  if (support.h2 && h2_only_server && SpeaksOnlyHttp1(client_offer)) return WithH2(offer);
  return offer;
}

std::vector<std::string> WithH2(const std::vector<std::string>& offer) {
  std::vector<std::string> out = offer;
  if (out.empty()) out.emplace_back(kHttp1);  // no ALPN: the client speaks HTTP/1.1
  if (!Offers(out, kH2)) out.emplace_back(kH2);  // last: the client's own choice stays first
  return out;
}

bool OffersH2(const std::vector<std::string>& offer) { return Offers(offer, kH2); }

std::string OfferText(const std::vector<std::string>& offer) {
  return offer.empty() ? "no ALPN" : List(offer);
}

bool LooksLikeHttp2Server(std::string_view first_bytes) {
  // A frame header (RFC 9113, 4.1): 24-bit length, type, flags, 31-bit stream id. An HTTP/1
  // status line starts "HTTP/": read as a length that is 4.7 MB, far over any frame an
  // unconfigured peer may send (16 KiB), so the two cannot be confused.
  if (first_bytes.size() < 9) return false;
  auto byte = [&](size_t i) { return static_cast<uint8_t>(first_bytes[i]); };
  uint32_t length = (byte(0) << 16) | (byte(1) << 8) | byte(2);
  uint8_t type = byte(3);
  uint8_t flags = byte(4);
  uint32_t stream = ((byte(5) & 0x7f) << 24) | (byte(6) << 16) | (byte(7) << 8) | byte(8);
  constexpr uint8_t kSettings = 0x4;
  constexpr uint8_t kGoaway = 0x7;
  if (stream != 0 || length > 16384) return false;
  // The server's preface is a SETTINGS frame (not an ACK); some servers send a GOAWAY at once
  // on a client preface they cannot read.
  if (type == kSettings) return flags == 0 && length % 6 == 0;
  return type == kGoaway && length >= 8;
}

bool RefusedForAlpn(std::string_view tls_error) {
  // net/tls_errors.cc names the alert in words.
  return tls_error.find("no application protocol") != std::string_view::npos;
}

std::vector<std::string> Http1Offer(const std::vector<std::string>& offer) {
  std::vector<std::string> out;
  for (const std::string& p : offer) {
    if (p != kH2 && p != kGrpcExp) out.push_back(p);
  }
  return out;
}

ClientAnswer AnswerClient(const std::vector<std::string>& client_offer,
                          const UpstreamAlpn& upstream, const ProtocolSupport& support) {
  using Next = ClientAnswer::Next;
  if (upstream.connected && upstream.chosen == kH2 && support.h2 &&
      SpeaksOnlyHttp1(client_offer)) {
    // h2 was offered upstream for this HTTP/1 client (UpstreamAlpnOffer): the client gets
    // HTTP/1.1, as it offered (no ALPN answer when it offered none).
    return {.next = Next::kHttp1,
            .alpn = client_offer.empty() ? "" : std::string(kHttp1),
            .translated = true};
  }
  if (client_offer.empty()) return {Next::kHttp1, "", ""};
  if (!upstream.connected) {
    // An HTTP client reads a 502 that explains. A server that refuses an offer it has no
    // protocol in common with often just closes (OpenSSL's s_server does), so for any other
    // client the failure is the no-common-protocol one.
    if (Offers(client_offer, kHttp1)) return {Next::kHttp1, std::string(kHttp1), ""};
    if (Offers(client_offer, kH2) && support.h2) return {Next::kHttp2, std::string(kH2), ""};
    return {Next::kRefuse, "",
            StrCat("the server did not complete a TLS handshake offering ",
                   List(client_offer))};
  }
  const std::string& chosen = upstream.chosen;
  if (chosen.empty()) {
    // The server chose nothing: the client falls back to HTTP/1.1 when it offered that.
    if (Offers(client_offer, kHttp1)) return {Next::kHttp1, "", ""};
    // A server without ALPN speaks HTTP/1.1.
    if (Offers(client_offer, kH2) && support.h2) return Translated();
    std::vector<std::string> relayable = UpstreamAlpnOffer(client_offer, support);
    if (relayable.empty()) {
      return {Next::kRefuse, "",
              StrCat("the client offered only ", List(client_offer),
                     ", which mitmd cannot intercept yet")};
    }
    return {Next::kRefuse, "",
            StrCat("no application protocol in common: the client offered ",
                   List(client_offer), " and the server chose none of them")};
  }
  if (chosen == kHttp1 && !Offers(client_offer, kHttp1) && Offers(client_offer, kH2) &&
      support.h2) {
    return Translated();
  }
  if (!Offers(client_offer, chosen)) {
    return {Next::kRefuse, "",
            StrCat("the server chose the application protocol ", chosen,
                   ", which the client did not offer (", List(client_offer), ")")};
  }
  if (chosen == kHttp1) return {Next::kHttp1, chosen, ""};
  if ((chosen == kH2 || chosen == kGrpcExp) && support.h2) return {Next::kHttp2, chosen, ""};
  return {Next::kRaw, chosen, ""};
}

}  // namespace mitmd::proxy
