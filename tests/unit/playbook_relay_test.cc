// Playbooks of relay fidelity: header bytes that are not UTF-8, request targets in the forms a
// client may send inside a CONNECT tunnel, a request cut short by an early response, and one
// pooled upstream connection serving several client connections. No sockets: see
// tests/support/playbook.h.

#include <gtest/gtest.h>

#include "flow/flow_json.h"
#include "support/playbook.h"

namespace mitmd::testing {
namespace {

constexpr char kEstablished[] = "HTTP/1.1 200 Connection established\r\n\r\n";
constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

TEST(PlaybookRelay, HeaderBytesThatAreNotUtf8GoOutAsTheyCameAndAreRecordedExactly) {
  // Latin-1 in a request header, a lone continuation byte and a truncated sequence in a response.
  const std::string request = "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-Name: caf\xe9\r\n\r\n";
  const std::string forwarded = "GET / HTTP/1.1\r\nHost: a.test\r\nX-Name: caf\xe9\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nX-Raw: a\x80z\r\nX-Cut: \xe2\x82\r\nContent-Length: 0\r\n\r\n";
  Playbook pb;
  pb >> FromClient(request) << Dial("a.test:80");
  pb >> Dialed() << ToServer(forwarded);
  pb >> FromServer(response) << ToClient(response) << Recorded("200 GET http://a.test/");
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  EXPECT_EQ(*FindHeader(f.request->headers, "X-Name"), "caf\xe9");

  // The record keeps the bytes through the session log's schema, and shows them escaped.
  std::string line = FlowToJsonLine(f);
  auto back = FlowFromJson(nlohmann::json::parse(line));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->request->headers, f.request->headers);
  EXPECT_EQ(back->response->headers, f.response->headers);
  EXPECT_NE(line.find(R"(["X-Name","caf\\xe9",{"value_b64":"Y2Fm6Q=="}])"), std::string::npos)
      << line;
  EXPECT_NE(line.find(R"(["X-Raw","a\\x80z",{"value_b64":)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"(["Host","a.test"])"), std::string::npos) << line;  // text stays a pair
}

TEST(PlaybookRelay, AbsoluteFormInsideATunnelIsRecordedAsItsUrlWithoutCredentials) {
  Playbook pb;
  pb >> FromClient("CONNECT a.test:80 HTTP/1.1\r\nHost: a.test:80\r\n\r\n")
     << ToClient(kEstablished);
  pb >> FromClient("GET http://user:secret@a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
     << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /p?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/p?q=1");
  ASSERT_TRUE(pb.Run());
  const HttpRequest& r = *pb.recorded()[0]->request;
  EXPECT_EQ(r.Url(), "http://a.test/p?q=1");
  EXPECT_EQ(r.target, "http://a.test/p?q=1");
  EXPECT_EQ(FlowToJsonLine(*pb.recorded()[0]).find("secret"), std::string::npos);
}

TEST(PlaybookRelay, AbsoluteFormInsideATlsTunnelTakesTheTunnelsSchemeAndPort) {
  Playbook pb;
  pb >> FromClient("CONNECT a.test:8443 HTTP/1.1\r\nHost: a.test:8443\r\n\r\n")
     << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test"));
  pb >> ClientHello("a.test") << Dial("a.test:8443 tls sni=a.test");
  pb >> Dialed() << ContinueHandshake();
  pb >> ClientHandshakeDone();
  pb >> FromClient("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n")
     << ToServer("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET https://a.test:8443/x");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookRelay, CredentialsInAProxyRequestUrlAreNeitherForwardedNorRecorded) {
  Playbook pb;
  pb >> FromClient("GET http://me:pw@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n")
     << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->request->target, "http://a.test/");
  EXPECT_EQ(FlowToJsonLine(*pb.recorded()[0]).find("pw@"), std::string::npos);
}

TEST(PlaybookRelay, ConnectInsideATunnelGoesToTheServerAndIsRecordedAsItsAuthority) {
  // The tunnel leads to another proxy: the client's CONNECT is for it.
  const std::string connect = "CONNECT b.test:443 HTTP/1.1\r\nHost: b.test:443\r\n\r\n";
  Playbook pb;
  pb >> FromClient("CONNECT proxy.test:3128 HTTP/1.1\r\nHost: proxy.test:3128\r\n\r\n")
     << ToClient(kEstablished);
  pb >> FromClient(connect) << Dial("proxy.test:3128");
  pb >> Dialed() << ToServer(connect);
  pb >> FromServer(kEstablished) << ToClient(kEstablished) << Recorded("200 CONNECT b.test:443");
  pb >> FromClient("tls bytes") << ToServer("tls bytes");
  ASSERT_TRUE(pb.Run());
  const HttpRequest& r = *pb.recorded()[0]->request;
  EXPECT_EQ(r.host, "b.test");
  EXPECT_EQ(r.port, 443);
  EXPECT_EQ(r.Url(), "b.test:443");
}

TEST(PlaybookRelay, AnEarlyResponseCutsTheRequestBodyAndTheFlowSaysSo) {
  const std::string head =
      "POST http://a.test/up HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n";
  const std::string refused = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n";
  Playbook pb;
  pb >> FromClient(head + "abc") << Dial("a.test:80");
  pb >> Dialed() << ToServer("POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\nabc");
  pb >> FromServer(refused) << ToClient(refused) << Recorded("413 POST http://a.test/up")
     << CloseClient() << CloseServer("not kept alive");
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  EXPECT_EQ(f.response->status, 413);
  EXPECT_EQ(f.request->body.size, 3u);
  EXPECT_NE(f.note.find("before the request was complete"), std::string::npos) << f.note;
  EXPECT_NE(f.note.find("3 of 10"), std::string::npos) << f.note;
}

TEST(PlaybookRelay, AnEarlyRefusalOfAChunkedUploadIsASuccessWithANote) {
  const std::string head =
      "PUT http://a.test/up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string refused =
      "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope";
  Playbook pb;
  pb >> FromClient(head + "4\r\nabcd\r\n") << Dial("a.test:80");
  pb >> Dialed() << ToServer("PUT /up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
                             "\r\n4\r\nabcd\r\n");
  pb >> FromServer(refused) << ToClient(refused) << Recorded("401 PUT http://a.test/up")
     << CloseClient() << CloseServer("not kept alive");
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  EXPECT_FALSE(f.error.has_value());
  EXPECT_NE(f.note.find("4 bytes of its body"), std::string::npos) << f.note;
}

}  // namespace
}  // namespace mitmd::testing
