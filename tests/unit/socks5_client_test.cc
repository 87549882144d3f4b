// The SOCKS5 client mitmd speaks to an upstream:socks5:// next proxy (proxy/socks5_client.h):
// the bytes it sends for each step, answers arriving in pieces, and each refusal in words.

#include "proxy/socks5_client.h"

#include <gtest/gtest.h>

namespace mitmd::proxy {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(Socks5Client, NoAuthConnectByNameWithTheReplyInPieces) {
  Socks5Client c("example.com", 443, "", "");
  EXPECT_EQ(c.Start(), Bytes({5, 1, 0}));
  auto step = c.Feed(Bytes({5}));
  ASSERT_TRUE(step);
  EXPECT_EQ(step->consumed, 0u);  // not yet complete
  step = c.Feed(Bytes({5, 0}));
  ASSERT_TRUE(step) << step.error().message;
  EXPECT_EQ(step->consumed, 2u);
  EXPECT_EQ(step->send, Bytes({5, 1, 0, 3, 11}) + "example.com" + Bytes({1, 0xbb}));
  EXPECT_EQ(c.state(), Socks5Client::State::kConnect);
  std::string reply = Bytes({5, 0, 0, 3, 4}) + "host" + Bytes({0, 80}) + "TLS...";
  step = c.Feed(std::string_view(reply).substr(0, 8));
  ASSERT_TRUE(step);
  EXPECT_EQ(step->consumed, 0u);
  step = c.Feed(reply);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->consumed, reply.size() - 6) << "the target's bytes are left alone";
  EXPECT_EQ(c.state(), Socks5Client::State::kOpen);
}

TEST(Socks5Client, UsernamePasswordAndIpLiterals) {
  Socks5Client c("::1", 8443, "bob", "pw");
  EXPECT_EQ(c.Start(), Bytes({5, 1, 2}));
  auto step = c.Feed(Bytes({5, 2}));
  ASSERT_TRUE(step);
  EXPECT_EQ(step->send, Bytes({1, 3}) + "bob" + Bytes({2}) + "pw");
  step = c.Feed(Bytes({1, 0}));
  ASSERT_TRUE(step);
  EXPECT_EQ(step->send, Bytes({5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                               0x20, 0xfb}));
  step = c.Feed(Bytes({5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_TRUE(step);
  EXPECT_EQ(c.state(), Socks5Client::State::kOpen);

  Socks5Client v4("10.1.2.3", 80, "", "");
  v4.Start();
  EXPECT_EQ(v4.Feed(Bytes({5, 0}))->send, Bytes({5, 1, 0, 1, 10, 1, 2, 3, 0, 80}));
}

std::string Refusal(Socks5Client& c, std::initializer_list<std::string> answers) {
  c.Start();
  for (const std::string& a : answers) {
    auto step = c.Feed(a);
    if (!step) {
      EXPECT_EQ(c.state(), Socks5Client::State::kFailed);
      return step.error().message;
    }
  }
  ADD_FAILURE() << "not refused";
  return "";
}

TEST(Socks5Client, RefusalsSayWhatTheProxyAnswered) {
  Socks5Client wrong("h", 1, "bob", "bad");
  EXPECT_EQ(Refusal(wrong, {Bytes({5, 2}), Bytes({1, 1})}), "it refused the username and password");
  Socks5Client needs_auth("h", 1, "", "");
  EXPECT_NE(Refusal(needs_auth, {Bytes({5, 0xff})}).find("requires authentication"),
            std::string::npos);
  Socks5Client http("h", 1, "", "");
  EXPECT_NE(Refusal(http, {"HTTP/1.1 400 Bad Request\r\n"}).find("upstream:http://"),
            std::string::npos);
  Socks5Client refused("a.test", 443, "", "");
  std::string msg = Refusal(refused, {Bytes({5, 0}), Bytes({5, 5, 0, 1, 0, 0, 0, 0, 0, 0})});
  EXPECT_NE(msg.find("refused CONNECT a.test:443: connection refused"), std::string::npos) << msg;
  Socks5Client odd("a.test", 443, "", "");
  EXPECT_NE(Refusal(odd, {Bytes({5, 0}), Bytes({5, 0, 0, 9, 0, 0, 0, 0, 0, 0})})
                .find("unknown address type"),
            std::string::npos);
}

}  // namespace
}  // namespace mitmd::proxy
