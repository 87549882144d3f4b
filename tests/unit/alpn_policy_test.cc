// The ALPN mirroring policy: client offer x upstream outcome -> what the client is answered.

#include "proxy/alpn_policy.h"

#include <gtest/gtest.h>

namespace mitmd::proxy {
namespace {

using Next = ClientAnswer::Next;
constexpr ProtocolSupport kH1Only{.h2 = false};
constexpr ProtocolSupport kWithH2{.h2 = true};

TEST(AlpnPolicy, OfferIsTheClientsListWithoutWhatCannotBeRelayed) {
  EXPECT_EQ(UpstreamAlpnOffer({"h2", "http/1.1"}, kH1Only), std::vector<std::string>{"http/1.1"});
  EXPECT_EQ(UpstreamAlpnOffer({"h2", "http/1.1"}, kWithH2),
            (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(UpstreamAlpnOffer({"mqtt", "", "mqtt"}, kH1Only), std::vector<std::string>{"mqtt"});
  EXPECT_TRUE(UpstreamAlpnOffer({}, kH1Only).empty());
  EXPECT_TRUE(UpstreamAlpnOffer({"h2"}, kH1Only).empty());
  // An h2-only client: the server may answer HTTP/1.1, which mitmd translates.
  EXPECT_EQ(UpstreamAlpnOffer({"h2"}, kWithH2), (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(UpstreamAlpnOffer({"grpc-exp", "h2"}, kWithH2),
            (std::vector<std::string>{"grpc-exp", "h2", "http/1.1"}));
  // An HTTP/1 client is mirrored: a server that speaks both keeps the client's HTTP/1.1.
  EXPECT_EQ(UpstreamAlpnOffer({"http/1.1"}, kWithH2), std::vector<std::string>{"http/1.1"});
  EXPECT_TRUE(UpstreamAlpnOffer({}, kWithH2).empty());
  // ... unless the server is known to speak only h2: then h2 goes last.
  EXPECT_EQ(UpstreamAlpnOffer({"http/1.1"}, kWithH2, /*h2_only_server=*/true),
            (std::vector<std::string>{"http/1.1", "h2"}));
  EXPECT_EQ(UpstreamAlpnOffer({}, kWithH2, true), (std::vector<std::string>{"http/1.1", "h2"}));
  EXPECT_EQ(UpstreamAlpnOffer({"http/1.1"}, kH1Only, true), std::vector<std::string>{"http/1.1"});
  // A client that offers h2 itself, or another protocol, is not changed by what was learned.
  EXPECT_EQ(UpstreamAlpnOffer({"h2", "http/1.1"}, kWithH2, true),
            (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(UpstreamAlpnOffer({"mqtt"}, kWithH2, true), std::vector<std::string>{"mqtt"});
  // A client with a protocol of its own is offered upstream as it is.
  EXPECT_EQ(UpstreamAlpnOffer({"mqtt"}, kWithH2), std::vector<std::string>{"mqtt"});
}

TEST(AlpnPolicy, AnHttp1ClientToAnH2ServerIsTranslated) {
  ClientAnswer a = AnswerClient({"http/1.1"}, {.chosen = "h2"}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_EQ(a.alpn, "http/1.1");
  EXPECT_TRUE(a.translated);
  // A client without ALPN gets no ALPN answer, and HTTP/1.1.
  a = AnswerClient({}, {.chosen = "h2"}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_EQ(a.alpn, "");
  EXPECT_TRUE(a.translated);
  // The server honoured the client's order: mirrored.
  a = AnswerClient({"http/1.1"}, {.chosen = "http/1.1"}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_FALSE(a.translated);
  // Without an HTTP/2 codec h2 is never offered, so a server choosing it is stray.
  EXPECT_EQ(AnswerClient({"http/1.1"}, {.chosen = "h2"}, kH1Only).next, Next::kRefuse);
  // A client that offered h2 itself is mirrored, not translated.
  a = AnswerClient({"h2", "http/1.1"}, {.chosen = "h2"}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp2);
  EXPECT_FALSE(a.translated);
}

TEST(AlpnPolicy, WithH2AddsH2LastAndHttp11WhenThereWasNoOffer) {
  EXPECT_EQ(WithH2({"http/1.1"}), (std::vector<std::string>{"http/1.1", "h2"}));
  EXPECT_EQ(WithH2({}), (std::vector<std::string>{"http/1.1", "h2"}));
  EXPECT_EQ(WithH2({"http/1.1", "h2"}), (std::vector<std::string>{"http/1.1", "h2"}));
  EXPECT_TRUE(OffersH2({"http/1.1", "h2"}));
  EXPECT_FALSE(OffersH2({"http/1.1"}));
  EXPECT_EQ(OfferText({}), "no ALPN");
  EXPECT_EQ(OfferText({"http/1.1", "h2"}), "http/1.1, h2");
}

TEST(AlpnPolicy, AnH2ServersFirstBytesAreRecognised) {
  using namespace std::string_view_literals;
  // nghttp2's server preface: SETTINGS with 3 settings (18 bytes), then more.
  EXPECT_TRUE(LooksLikeHttp2Server("\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03"sv));
  EXPECT_TRUE(LooksLikeHttp2Server("\x00\x00\x00\x04\x00\x00\x00\x00\x00"sv));  // empty
  // A GOAWAY at once (last stream id, error code, debug data).
  EXPECT_TRUE(LooksLikeHttp2Server("\x00\x00\x11\x07\x00\x00\x00\x00\x00"sv));
  EXPECT_FALSE(LooksLikeHttp2Server("HTTP/1.1 200 OK\r\n\r\n"));
  EXPECT_FALSE(LooksLikeHttp2Server("HTTP/1.0 4"));
  EXPECT_FALSE(LooksLikeHttp2Server("\x00\x00\x12\x04\x00"sv));  // too short to tell
  // A SETTINGS ACK, a SETTINGS on a stream, a length no setting list has, a HEADERS frame.
  EXPECT_FALSE(LooksLikeHttp2Server("\x00\x00\x00\x04\x01\x00\x00\x00\x00"sv));
  EXPECT_FALSE(LooksLikeHttp2Server("\x00\x00\x06\x04\x00\x00\x00\x00\x01"sv));
  EXPECT_FALSE(LooksLikeHttp2Server("\x00\x00\x05\x04\x00\x00\x00\x00\x00"sv));
  EXPECT_FALSE(LooksLikeHttp2Server("\x00\x00\x05\x01\x04\x00\x00\x00\x01"sv));
  EXPECT_FALSE(LooksLikeHttp2Server("\x00\x00\x04\x07\x00\x00\x00\x00\x00"sv));
}

TEST(AlpnPolicy, TheNoApplicationProtocolAlertIsRecognised) {
  EXPECT_TRUE(RefusedForAlpn("the peer sent the TLS alert 'no application protocol'"));
  EXPECT_FALSE(RefusedForAlpn("the peer sent the TLS alert 'handshake failure'"));
  EXPECT_FALSE(RefusedForAlpn("the connection closed during TLS"));
}

TEST(AlpnPolicy, AnUpgradeIsOfferedHttp1Only) {
  EXPECT_EQ(Http1Offer({"http/1.1", "h2"}), std::vector<std::string>{"http/1.1"});
  EXPECT_EQ(Http1Offer({"grpc-exp", "h2", "http/1.1"}), std::vector<std::string>{"http/1.1"});
  EXPECT_TRUE(Http1Offer({}).empty());
}

TEST(AlpnPolicy, AnH2OnlyClientToAnHttp1ServerIsTranslated) {
  for (std::string chosen : {"http/1.1", ""}) {
    ClientAnswer a = AnswerClient({"h2"}, {.chosen = chosen}, kWithH2);
    EXPECT_EQ(a.next, Next::kHttp2) << chosen;
    EXPECT_EQ(a.alpn, "h2");
    EXPECT_TRUE(a.translated);
  }
  // Where the sides can meet, nothing is translated.
  EXPECT_FALSE(AnswerClient({"h2"}, {.chosen = "h2"}, kWithH2).translated);
  ClientAnswer a = AnswerClient({"h2", "http/1.1"}, {.chosen = "http/1.1"}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_FALSE(a.translated);
  // Without an HTTP/2 codec there is nothing to translate to.
  EXPECT_EQ(AnswerClient({"h2"}, {.chosen = "http/1.1"}, kH1Only).next, Next::kRefuse);
}

TEST(AlpnPolicy, AFailedUpstreamIsExplainedToAnH2OnlyClientOverH2) {
  ClientAnswer a = AnswerClient({"h2"}, {.connected = false}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp2);
  EXPECT_EQ(a.alpn, "h2");
}

TEST(AlpnPolicy, UpstreamChoiceIsMirrored) {
  ClientAnswer a = AnswerClient({"h2", "http/1.1"}, {.chosen = "http/1.1"}, kH1Only);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_EQ(a.alpn, "http/1.1");
  a = AnswerClient({"mqtt"}, {.chosen = "mqtt"}, kH1Only);
  EXPECT_EQ(a.next, Next::kRaw);
  EXPECT_EQ(a.alpn, "mqtt");
  a = AnswerClient({"h2", "http/1.1"}, {.chosen = "h2"}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp2);
  EXPECT_EQ(a.alpn, "h2");
  // gRPC clients offer grpc-exp first: HTTP/2 under another name.
  a = AnswerClient({"grpc-exp", "h2"}, {.chosen = "grpc-exp"}, kWithH2);
  EXPECT_EQ(a.next, Next::kHttp2);
  EXPECT_EQ(a.alpn, "grpc-exp");
}

TEST(AlpnPolicy, NoChoiceFallsBackToHttp1OnlyWhenTheClientOfferedIt) {
  ClientAnswer a = AnswerClient({"h2", "http/1.1"}, {.chosen = ""}, kH1Only);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_EQ(a.alpn, "");  // mirrored: the server answered no ALPN either
  a = AnswerClient({"imap"}, {.chosen = ""}, kH1Only);
  EXPECT_EQ(a.next, Next::kRefuse);
  EXPECT_NE(a.reason.find("imap"), std::string::npos) << a.reason;
  a = AnswerClient({"h2"}, {.chosen = ""}, kH1Only);
  EXPECT_EQ(a.next, Next::kRefuse);
  EXPECT_NE(a.reason.find("cannot intercept"), std::string::npos) << a.reason;
}

TEST(AlpnPolicy, NoOfferMeansHttp1WithoutAlpn) {
  ClientAnswer a = AnswerClient({}, {.chosen = ""}, kH1Only);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_EQ(a.alpn, "");
}

TEST(AlpnPolicy, FailedUpstreamOrStrayChoiceRefusesAClientThatSpeaksNoHttp) {
  ClientAnswer a = AnswerClient({"mqtt"}, {.connected = false}, kH1Only);
  EXPECT_EQ(a.next, Next::kRefuse);
  EXPECT_NE(a.reason.find("mqtt"), std::string::npos) << a.reason;
  EXPECT_EQ(AnswerClient({"http/1.1"}, {.chosen = "spdy/3"}, kH1Only).next, Next::kRefuse);
}

TEST(AlpnPolicy, FailedUpstreamStillLetsAnHttpClientReadThe502) {
  ClientAnswer a = AnswerClient({"h2", "http/1.1"}, {.connected = false}, kH1Only);
  EXPECT_EQ(a.next, Next::kHttp1);
  EXPECT_EQ(a.alpn, "http/1.1");
}

}  // namespace
}  // namespace mitmd::proxy
