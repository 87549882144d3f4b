#include "proxy/request_target.h"

#include <gtest/gtest.h>

#include "proxy/error_page.h"

namespace mitmd::proxy {
namespace {

TEST(AuthorityFormTest, HostAndPort) {
  auto t = ParseAuthorityForm("example.com:443");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->host, "example.com");
  EXPECT_EQ(t->port, 443);
  auto v6 = ParseAuthorityForm("[::1]:8443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8443);
}

TEST(AuthorityFormTest, RejectsWithReason) {
  EXPECT_NE(ParseAuthorityForm("example.com").error().message.find("port"), std::string::npos);
  EXPECT_FALSE(ParseAuthorityForm("example.com:0"));
  EXPECT_FALSE(ParseAuthorityForm("example.com:70000"));
  EXPECT_FALSE(ParseAuthorityForm("[::1:443"));
  EXPECT_FALSE(ParseAuthorityForm("exa mple.com:443"));
  EXPECT_FALSE(ParseAuthorityForm(":443"));
}

TEST(AbsoluteFormTest, Parses) {
  auto t = ParseAbsoluteForm("http://Example.com:8080/a/b?c=d#frag");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->scheme, "http");
  EXPECT_EQ(t->host, "Example.com");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->path, "/a/b?c=d");
  auto bare = ParseAbsoluteForm("HTTP://127.0.0.1");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->scheme, "http");
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->path, "/");
  auto tls = ParseAbsoluteForm("https://user:pw@[::1]/x");
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->host, "::1");
  EXPECT_EQ(tls->port, 443);
  auto query = ParseAbsoluteForm("http://h?q=1");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->path, "/?q=1");
}

TEST(AbsoluteFormTest, RejectsOtherSchemes) {
  auto ftp = ParseAbsoluteForm("ftp://example.com/file");
  ASSERT_FALSE(ftp);
  EXPECT_NE(ftp.error().message.find("unsupported URL scheme 'ftp'"), std::string::npos);
  EXPECT_FALSE(ParseAbsoluteForm("/just/a/path"));
  EXPECT_FALSE(ParseAbsoluteForm("http://:80/"));
  EXPECT_FALSE(ParseAbsoluteForm("http://host:99999/"));
}

TEST(HostHeaderTest, DefaultsPort) {
  Target t = ParseHostHeader("example.com", 443);
  EXPECT_EQ(t.host, "example.com");
  EXPECT_EQ(t.port, 443);
  t = ParseHostHeader("[::1]:8080", 443);
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, 8080);
}

TEST(RewriteTest, ReplacesTargetAndKeepsEveryOtherByte) {
  std::string raw =
      "GET http://h:81/p?q HTTP/1.1\r\nHost: h:81\r\nProxy-Authorization: Basic eA==\r\n"
      "X-MiXeD:  spaced \r\n\r\n";
  EXPECT_EQ(RewriteRequestHead(raw, "/p?q", "proxy-authorization"),
            "GET /p?q HTTP/1.1\r\nHost: h:81\r\nX-MiXeD:  spaced \r\n\r\n");
  EXPECT_EQ(RewriteRequestHead(raw, "/p?q", ""),
            "GET /p?q HTTP/1.1\r\nHost: h:81\r\nProxy-Authorization: Basic eA==\r\n"
            "X-MiXeD:  spaced \r\n\r\n");
  // Bare LF line endings survive as they came.
  EXPECT_EQ(RewriteRequestHead("GET http://h/ HTTP/1.1\nHost: h\n\n", "/", ""),
            "GET / HTTP/1.1\nHost: h\n\n");
  // A request line without a line end is rewritten once, not copied again (found by fuzzing).
  EXPECT_EQ(RewriteRequestHead("GET http://h/ HTTP/1.1", "/", ""), "GET / HTTP/1.1");
}

TEST(ErrorPageTest, IsACompleteResponseThatNamesTheReason) {
  std::string r = Encode(ErrorPage(502, "upstream certificate has expired (notAfter 2020-01-01)",
                                  "detail line", {{"X-Extra", "1"}}));
  EXPECT_TRUE(r.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(r.find("X-Extra: 1\r\n"), std::string::npos);
  size_t body_at = r.find("\r\n\r\n") + 4;
  std::string body = r.substr(body_at);
  EXPECT_NE(r.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_EQ(body,
            "mitmd: upstream certificate has expired (notAfter 2020-01-01)\n\ndetail line\n");
}

}  // namespace
}  // namespace mitmd::proxy
