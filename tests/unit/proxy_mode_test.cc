// --mode values (core/proxy_mode.h): each mode with and without its own listening address, the
// next proxy's credentials, and the errors a user gets for what cannot work.

#include "core/proxy_mode.h"

#include <gtest/gtest.h>

namespace mitmd {
namespace {

ProxyMode Parse(std::string_view text) {
  auto mode = ParseProxyMode(text, "127.0.0.1");
  EXPECT_TRUE(mode) << text << ": " << mode.error().message;
  return mode ? *mode : ProxyMode{};
}

std::string Error(std::string_view text) {
  auto mode = ParseProxyMode(text, "127.0.0.1");
  EXPECT_FALSE(mode) << text << " parsed";
  return mode ? "" : mode.error().message;
}

TEST(ProxyMode, RegularAndTransparentWithListenAddresses) {
  EXPECT_EQ(Parse("regular").kind, ProxyMode::Kind::kRegular);
  EXPECT_FALSE(Parse("regular").listen);
  ProxyMode m = Parse("regular@8082");
  ASSERT_TRUE(m.listen);
  EXPECT_EQ(m.listen->ToString(), "127.0.0.1:8082");
  m = Parse("transparent@[::1]:9090");
  EXPECT_EQ(m.kind, ProxyMode::Kind::kTransparent);
  ASSERT_TRUE(m.listen);
  EXPECT_EQ(m.listen->host, "::1");
  EXPECT_EQ(m.listen->port, 9090);
}

TEST(ProxyMode, Upstream) {
  ProxyMode m = Parse("upstream:http://proxy.corp:3128");
  EXPECT_EQ(m.kind, ProxyMode::Kind::kUpstream);
  EXPECT_EQ(m.scheme, "http");
  EXPECT_EQ(m.host, "proxy.corp");
  EXPECT_EQ(m.port, 3128);
  EXPECT_FALSE(m.listen);
  EXPECT_TRUE(m.user.empty());

  m = Parse("upstream:http://proxy.corp:3128@8083");
  ASSERT_TRUE(m.listen);
  EXPECT_EQ(m.listen->port, 8083);
  EXPECT_EQ(m.host, "proxy.corp");

  m = Parse("upstream:http://alice:pa55word@proxy.corp:3128");
  EXPECT_EQ(m.user, "alice");
  EXPECT_EQ(m.password, "pa55word");
  EXPECT_EQ(m.host, "proxy.corp");
  EXPECT_FALSE(m.listen);
  EXPECT_EQ(m.Describe(), "upstream:http://alice:***@proxy.corp:3128") << "no password in logs";

  m = Parse("upstream:http://alice:pw@[::1]:3128@127.0.0.1:8084");
  EXPECT_EQ(m.user, "alice");
  EXPECT_EQ(m.host, "::1");
  ASSERT_TRUE(m.listen);
  EXPECT_EQ(m.listen->port, 8084);
}

TEST(ProxyMode, UpstreamOverTlsAndSocks5) {
  ProxyMode m = Parse("upstream:https://proxy.corp:3129");
  EXPECT_EQ(m.scheme, "https");
  EXPECT_EQ(m.port, 3129);
  m = Parse("upstream:socks5://bob:s3cret@127.0.0.1:1080@8085");
  EXPECT_EQ(m.scheme, "socks5");
  EXPECT_EQ(m.user, "bob");
  EXPECT_EQ(m.password, "s3cret");
  EXPECT_EQ(m.port, 1080);
  ASSERT_TRUE(m.listen);
  EXPECT_EQ(m.listen->port, 8085);
  EXPECT_EQ(m.Describe(), "upstream:socks5://bob:***@127.0.0.1:1080@127.0.0.1:8085");
  EXPECT_EQ(Parse("upstream:socks5h://h:1080").scheme, "socks5");  // names go to the proxy
  EXPECT_NE(Error("upstream:socks5://h").find("give a port"), std::string::npos);
  EXPECT_NE(Error("upstream:socks5://" + std::string(256, 'u') + ":p@h:1080").find("255"),
            std::string::npos);
  EXPECT_NE(Error("reverse:socks5://h:1").find("http or https"), std::string::npos);
}

TEST(ProxyMode, Reverse) {
  ProxyMode m = Parse("reverse:https://example.com");
  EXPECT_EQ(m.kind, ProxyMode::Kind::kReverse);
  EXPECT_EQ(m.scheme, "https");
  EXPECT_EQ(m.host, "example.com");
  EXPECT_EQ(m.port, 443);
  m = Parse("reverse:http://localhost:8000/@8085");
  EXPECT_EQ(m.port, 8000);
  ASSERT_TRUE(m.listen);
  EXPECT_EQ(m.listen->port, 8085);
  EXPECT_EQ(Parse("reverse:http://example.com").port, 80);
}

TEST(ProxyMode, ErrorsSayWhatToWrite) {
  EXPECT_NE(Error("socks9").find("unknown mode 'socks9'"), std::string::npos);
  EXPECT_NE(Error("upstream").find("upstream:http://proxy.example:3128"), std::string::npos);
  EXPECT_NE(Error("upstream:http://proxy.corp").find("give a port"), std::string::npos);
  EXPECT_NE(Error("upstream:ftp://proxy.corp:3128").find("http, https or socks5"),
            std::string::npos);
  EXPECT_NE(Error("reverse:ftp://x").find("scheme 'ftp'"), std::string::npos);
  EXPECT_NE(Error("reverse:https://example.com/path").find("without a path"), std::string::npos);
  EXPECT_NE(Error("regular@99999").find("listen address"), std::string::npos);
  EXPECT_NE(Error("regular:x").find("unexpected"), std::string::npos);
  EXPECT_NE(Error("reverse:example.com").find("SCHEME://"), std::string::npos);
}

}  // namespace
}  // namespace mitmd
