// Playbooks of the proxy port's entry (issue 13): SOCKS5 to plain HTTP and to TLS, the
// handshake timeout, a refused target, the proxy token as the SOCKS password, and SOCKS4.
// No sockets: see tests/support/playbook.h.

#include <gtest/gtest.h>

#include "support/playbook.h"

namespace mitmd::testing {
namespace {

std::string B(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

const std::string kNoAuth = B({5, 1, 0});
const std::string kChosen = B({5, 0});
const std::string kSucceeded = B({5, 0, 0, 1, 0, 0, 0, 0, 0, 0});
constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

std::string Connect(const std::string& host, int port) {
  return B({5, 1, 0, 3, static_cast<int>(host.size())}) + host + B({port >> 8, port & 0xff});
}

TEST(PlaybookModes, Socks5ToPlainHttpIsReadAndRecordedAsSocks5) {
  Playbook pb;
  pb >> FromClient(kNoAuth + Connect("a.test", 80)) << ToClient(kChosen + kSucceeded);
  pb >> FromClient("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n") << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->entry, "socks5");
}

TEST(PlaybookModes, Socks5ToTlsIsInterceptedUpstreamFirst) {
  Playbook pb;
  pb >> FromClient(kNoAuth + Connect("a.test", 443) + ClientHelloBytes("a.test"))
     << ToClient(kChosen + kSucceeded);
  pb >> ClientHello("a.test") << Dial("a.test:443 tls sni=a.test");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(pb.client().tls_started());
}

TEST(PlaybookModes, Socks5StalledHandshakeTimesOut) {
  Playbook pb;
  pb >> FromClient(kNoAuth) << ToClient(kChosen);
  pb >> TimerFired("socks5_handshake") << Recorded("- error=proxy_request") << CloseClient();
  ASSERT_TRUE(pb.Run());
  EXPECT_NE(pb.recorded()[0]->error->message.find("socks5_request"), std::string::npos)
      << pb.recorded()[0]->error->message;
}

TEST(PlaybookModes, Socks5TokenIsThePassword) {
  Playbook pb([](Config& c) { c.proxy_token = "s3cret"; });
  std::string auth = B({1, 5}) + "mitmd" + B({6}) + "s3cret";
  pb >> FromClient(B({5, 1, 2}) + auth + Connect("a.test", 80))
     << ToClient(B({5, 2, 1, 0}) + kSucceeded);
  ASSERT_TRUE(pb.Run());

  Playbook wrong([](Config& c) { c.proxy_token = "s3cret"; });
  wrong >> FromClient(B({5, 1, 0})) << ToClient(B({5, 0xff})) << Recorded("- error=proxy_request")
        << CloseClient();
  ASSERT_TRUE(wrong.Run());
  EXPECT_EQ(wrong.recorded()[0]->entry, "socks5");
}

TEST(PlaybookModes, Socks4IsRefusedWithItsOwnReply) {
  Playbook pb;
  pb >> FromClient(B({4, 1, 0, 80, 127, 0, 0, 1, 0})) << Recorded("- error=proxy_request")
     << ToClient(B({0, 0x5b, 0, 0, 0, 0, 0, 0})) << CloseClient();
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->entry, "socks4");
}

TEST(PlaybookModes, HttpProxyRequestsStillWorkBehindTheEntry) {
  Playbook pb;
  pb >> FromClient("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n") << Dial("a.test:80");
  ASSERT_TRUE(pb.Run());
}

}  // namespace
}  // namespace mitmd::testing
