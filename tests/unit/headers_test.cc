#include "http/headers.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace mitmd {
namespace {

TEST(HeadersTest, EqualsIgnoreCaseIsAsciiOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("Host", "Hosts"));
  EXPECT_FALSE(EqualsIgnoreCase("a-b", "a_b"));
  // '@' (0x40) and '`' (0x60) differ by the case bit but are not letters.
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
  EXPECT_FALSE(EqualsIgnoreCase("\xc3\xa9", "\xc3\x89"));
}

TEST(HeadersTest, FindHeaderReturnsTheFirstMatch) {
  HeaderList h = {{"X-A", "1"}, {"x-a", "2"}, {"Host", "h"}};
  ASSERT_NE(FindHeader(h, "x-A"), nullptr);
  EXPECT_EQ(*FindHeader(h, "x-A"), "1");
  EXPECT_EQ(*FindHeader(h, "HOST"), "h");
  EXPECT_EQ(FindHeader(h, "Accept"), nullptr);
  EXPECT_EQ(FindHeader({}, "Host"), nullptr);
}

TEST(HeadersTest, HeaderHasTokenReadsEveryListElementOfEveryHeader) {
  HeaderList h = {{"Connection", "Upgrade,  keep-alive "},
                  {"connection", ""},
                  {"Connection", "\tClose"},
                  {"X", "close"}};
  EXPECT_TRUE(HeaderHasToken(h, "connection", "upgrade"));
  EXPECT_TRUE(HeaderHasToken(h, "Connection", "KEEP-ALIVE"));
  EXPECT_TRUE(HeaderHasToken(h, "Connection", "close"));
  EXPECT_FALSE(HeaderHasToken(h, "Connection", "keep"));
  EXPECT_FALSE(HeaderHasToken(h, "Connection", "alive"));
  EXPECT_FALSE(HeaderHasToken(h, "Connection", "upgrade, keep-alive"));
  EXPECT_FALSE(HeaderHasToken(h, "Keep-Alive", "close"));
  EXPECT_FALSE(HeaderHasToken({{"Connection", "keep-alive-ish"}}, "Connection", "keep-alive"));
}

TEST(HeadersTest, TokenCharsAndHeaderNames) {
  for (char c : std::string_view("!#$%&'*+-.^_`|~09azAZ")) EXPECT_TRUE(IsTokenChar(c)) << c;
  for (char c : std::string_view(" \t\"(),/:;<=>?@[\\]{}\x7f\x01")) {
    EXPECT_FALSE(IsTokenChar(c)) << static_cast<int>(c);
  }
  EXPECT_FALSE(IsTokenChar('\0'));
  EXPECT_FALSE(IsTokenChar('\xe9'));
  EXPECT_TRUE(IsValidHeaderName("X-Custom_Header.1"));
  EXPECT_FALSE(IsValidHeaderName(""));
  EXPECT_FALSE(IsValidHeaderName("Bad Name"));
  EXPECT_FALSE(IsValidHeaderName("Bad:Name"));
}

TEST(HeadersTest, HeaderValuesRejectControlCharactersButHtab) {
  EXPECT_TRUE(IsValidHeaderValue(""));
  EXPECT_TRUE(IsValidHeaderValue("text/html; charset=\"utf-8\""));
  EXPECT_TRUE(IsValidHeaderValue("a\tb"));
  EXPECT_TRUE(IsValidHeaderValue("caf\xc3\xa9"));  // obs-text
  EXPECT_FALSE(IsValidHeaderValue("a\rb"));
  EXPECT_FALSE(IsValidHeaderValue("a\nb"));
  EXPECT_FALSE(IsValidHeaderValue(std::string_view("a\0b", 3)));
  EXPECT_FALSE(IsValidHeaderValue("a\x7f"));
  EXPECT_FALSE(IsValidHeaderValue("\x1b[31m"));
}

TEST(HeadersTest, TrimOws) {
  EXPECT_EQ(TrimOws("  \t value \t "), "value");
  EXPECT_EQ(TrimOws("a b"), "a b");
  EXPECT_EQ(TrimOws(" \t "), "");
  EXPECT_EQ(TrimOws(""), "");
  EXPECT_EQ(TrimOws("\r x"), "\r x");  // only SP and HTAB are OWS
}

TEST(HeadersTest, ForEachListElementSkipsEmptiesAndCanStop) {
  std::vector<std::string> seen;
  ForEachListElement(" gzip ,, chunked,\t,", [&](std::string_view e) {
    seen.emplace_back(e);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"gzip", "chunked"}));

  seen.clear();
  ForEachListElement("a, b, c", [&](std::string_view e) {
    seen.emplace_back(e);
    return e != "b";
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));

  int calls = 0;
  ForEachListElement("", [&](std::string_view) { return ++calls, true; });
  ForEachListElement(" , ", [&](std::string_view) { return ++calls, true; });
  EXPECT_EQ(calls, 0);
}

TEST(HeadersTest, RemoveHeaderRemovesEveryCase) {
  HeaderList h = {{"Proxy-Connection", "keep-alive"}, {"Host", "h"},
                  {"proxy-connection", "close"},      {"Accept", "*/*"}};
  EXPECT_EQ(RemoveHeader(h, "PROXY-CONNECTION"), 2u);
  EXPECT_EQ(h, (HeaderList{{"Host", "h"}, {"Accept", "*/*"}}));
  EXPECT_EQ(RemoveHeader(h, "Missing"), 0u);
}

TEST(HeadersTest, SetHeaderKeepsPositionAndCaseOfTheFirst) {
  HeaderList h = {{"host", "a"}, {"Accept", "*/*"}, {"HOST", "b"}, {"X", "1"}};
  SetHeader(h, "Host", "c");
  EXPECT_EQ(h, (HeaderList{{"host", "c"}, {"Accept", "*/*"}, {"X", "1"}}));
  SetHeader(h, "Via", "1.1 mitmd");
  EXPECT_EQ(h.back(), (std::pair<std::string, std::string>{"Via", "1.1 mitmd"}));
  EXPECT_EQ(h.size(), 4u);
}

TEST(HeadersTest, AppendHeaderLinesSerializesInOrder) {
  std::string out = "GET / HTTP/1.1\r\n";
  AppendHeaderLines(out, {{"Host", "h"}, {"x-a", ""}, {"X-B", "1, 2"}});
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: h\r\nx-a: \r\nX-B: 1, 2\r\n");
  std::string empty;
  AppendHeaderLines(empty, {});
  EXPECT_EQ(empty, "");
}

}  // namespace
}  // namespace mitmd
