#include "flow/filter.h"

#include <gtest/gtest.h>

#include "unit/web_test_flows.h"

namespace mitmd {
namespace {

using testing::FlowSpec;
using testing::MakeFlow;

bool M(std::string_view filter, const Flow& f) {
  auto parsed = Filter::Parse(filter);
  EXPECT_TRUE(parsed) << filter << ": " << parsed.error().message;
  return parsed && parsed->Matches(f);
}

std::string ParseError(std::string_view filter) {
  auto parsed = Filter::Parse(filter);
  EXPECT_FALSE(parsed) << filter << " should not parse";
  return parsed ? "" : parsed.error().message;
}

TEST(FilterTest, EmptyFilterMatchesEverything) {
  auto f = Filter::Parse("   ");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->empty());
  EXPECT_TRUE(f->Matches(MakeFlow({})));
}

TEST(FilterTest, HostMatchesDomainAndSubdomainsOnly) {
  Flow f = MakeFlow({.host = "api.example.com"});
  EXPECT_TRUE(M("host:example.com", f));
  EXPECT_TRUE(M("host:API.example.com", f));
  EXPECT_FALSE(M("host:ample.com", f));
  EXPECT_FALSE(M("host:other.com", f));
  EXPECT_TRUE(M("~host:ample", f));
  EXPECT_TRUE(M("host:*.example.*", f));
  EXPECT_FALSE(M("host:*.example.org", f));
}

TEST(FilterTest, MethodIsExact) {
  Flow f = MakeFlow({.method = "POST"});
  EXPECT_TRUE(M("method:post", f));
  EXPECT_FALSE(M("method:PO", f));
  EXPECT_TRUE(M("~method:PO", f));
}

TEST(FilterTest, StatusForms) {
  Flow f = MakeFlow({.status = 404});
  EXPECT_TRUE(M("status:404", f));
  EXPECT_TRUE(M("status:4xx", f));
  EXPECT_TRUE(M("status:>=400", f));
  EXPECT_TRUE(M("status:>403", f));
  EXPECT_FALSE(M("status:>404", f));
  EXPECT_TRUE(M("status:<=404", f));
  EXPECT_FALSE(M("status:<404", f));
  EXPECT_TRUE(M("status:400-499", f));
  EXPECT_FALSE(M("status:5xx", f));
  EXPECT_FALSE(M("status:=200", f));
  // A flow that never got a response has no status at all.
  Flow failed = testing::MakeErrorFlow("x.test", "connect", "connection refused");
  EXPECT_FALSE(M("status:>=0", failed));
  EXPECT_TRUE(M("-status:>=0", failed));
}

TEST(FilterTest, TypeFamiliesAndFullTypes) {
  Flow json = MakeFlow({.content_type = "application/problem+json; charset=utf-8"});
  Flow png = MakeFlow({.content_type = "image/png"});
  Flow js = MakeFlow({.content_type = "text/javascript"});
  EXPECT_TRUE(M("type:json", json));
  EXPECT_FALSE(M("type:image", json));
  EXPECT_TRUE(M("type:image", png));
  EXPECT_TRUE(M("type:png", png));
  EXPECT_TRUE(M("type:image/png", png));
  EXPECT_FALSE(M("type:image/gif", png));
  EXPECT_TRUE(M("-type:image", json));
  EXPECT_FALSE(M("-type:image", png));
  EXPECT_TRUE(M("type:js", js));
  EXPECT_TRUE(M("~type:problem", json));
}

TEST(FilterTest, PathIsAPrefixUrlIsASubstring) {
  Flow f = MakeFlow({.path = "/v1/items?page=2"});
  EXPECT_TRUE(M("path:/v1", f));
  EXPECT_FALSE(M("path:/items", f));
  EXPECT_TRUE(M("~path:/items", f));
  EXPECT_TRUE(M("path:/v*/items*", f));
  EXPECT_TRUE(M("url:example.com/v1", f));
  EXPECT_TRUE(M("items", f));  // bare word searches the URL
  EXPECT_FALSE(M("nothere", f));
  EXPECT_TRUE(M("https://api.example.com/v1", f));
}

TEST(FilterTest, HeadersByNameAndValue) {
  Flow f = MakeFlow({});
  EXPECT_TRUE(M("header:user-agent", f));
  EXPECT_TRUE(M("header:user-agent=CURL", f));
  EXPECT_FALSE(M("header:user-agent=wget", f));
  EXPECT_TRUE(M("reqheader:accept", f));
  EXPECT_FALSE(M("resheader:accept", f));
  EXPECT_TRUE(M("resheader:content-type=json", f));
  EXPECT_FALSE(M("header:x-missing", f));
}

TEST(FilterTest, BodySearchLooksInsideCompressedBodies) {
  Flow plain = MakeFlow({.response_body = "{\"token\":\"abc\"}"});
  Flow gz = MakeFlow({.response_body = "{\"hidden\":\"Needle\"}", .gzip = true});
  EXPECT_TRUE(M("~body:token", plain));
  EXPECT_TRUE(M("body:TOKEN", plain));
  EXPECT_FALSE(M("body:needle", plain));
  EXPECT_TRUE(M("body:needle", gz));
  EXPECT_TRUE(M("resbody:needle", gz));
  EXPECT_FALSE(M("reqbody:needle", gz));
  Flow post = MakeFlow({.method = "POST", .request_body = "user=alice&pass=x"});
  EXPECT_TRUE(M("reqbody:alice", post));
  EXPECT_TRUE(M("body:\"user=alice&pass\"", post));
}

TEST(FilterTest, SizeAndDurationWithUnits) {
  Flow f = MakeFlow({.response_body = std::string(3000, 'x'), .duration = 1.5});
  EXPECT_TRUE(M("size:>2k", f));
  EXPECT_FALSE(M("size:>3k", f));
  EXPECT_TRUE(M("size:2k-3k", f));
  EXPECT_TRUE(M("dur:>1s", f));
  EXPECT_TRUE(M("dur:>=1500ms", f));
  EXPECT_FALSE(M("dur:>1600", f));
  EXPECT_TRUE(M("dur:<2s", f));
}

TEST(FilterTest, ConnectionsErrorsAndIs) {
  Flow ok = MakeFlow({});
  ok.upstream_reused = true;
  Flow failed = testing::MakeErrorFlow("expired.test", "upstream_tls",
                                       "upstream certificate has expired");
  EXPECT_TRUE(M("conn:7", ok));
  EXPECT_FALSE(M("conn:8", ok));
  EXPECT_TRUE(M("upstream:3", ok));
  EXPECT_TRUE(M("is:reused", ok));
  EXPECT_TRUE(M("is:tls", ok));
  EXPECT_FALSE(M("is:error", ok));
  EXPECT_TRUE(M("is:error", failed));
  EXPECT_TRUE(M("error:expired", failed));
  EXPECT_TRUE(M("error:upstream_tls", failed));
  EXPECT_FALSE(M("error:refused", failed));
  EXPECT_TRUE(M("client:127.0.0.1", ok));
  EXPECT_TRUE(M("id:" + ok.id.substr(0, 8), ok));
  EXPECT_FALSE(M("is:tunnel", ok));
  EXPECT_TRUE(M("is:http", ok));
}

TEST(FilterTest, BooleanStructure) {
  Flow get = MakeFlow({.method = "GET", .status = 200});
  Flow post = MakeFlow({.method = "POST", .status = 500});
  const char* either = "method:GET OR status:5xx";
  EXPECT_TRUE(M(either, get));
  EXPECT_TRUE(M(either, post));
  EXPECT_TRUE(M("method:GET | method:POST", post));
  EXPECT_FALSE(M("method:GET status:5xx", post));       // AND
  EXPECT_FALSE(M("method:GET AND status:5xx", post));
  EXPECT_TRUE(M("-(method:GET OR status:200)", post));
  EXPECT_FALSE(M("-(method:GET OR status:200)", get));
  EXPECT_TRUE(M("(method:GET status:200) OR (method:POST status:500)", post));
  // AND binds tighter than OR.
  EXPECT_TRUE(M("method:PUT status:500 OR method:POST", post));
  EXPECT_FALSE(M("method:PUT status:500 OR method:DELETE", post));
}

TEST(FilterTest, ErrorsNameTheTermAndColumn) {
  std::string e = ParseError("host:a hots:b");
  EXPECT_NE(e.find("column 8"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown field 'hots'"), std::string::npos) << e;
  EXPECT_NE(e.find("host"), std::string::npos) << e;

  EXPECT_NE(ParseError("status:abc").find("not a number"), std::string::npos);
  EXPECT_NE(ParseError("(host:a").find("never closed"), std::string::npos);
  EXPECT_NE(ParseError("host:a)").find("unexpected ')'"), std::string::npos);
  EXPECT_NE(ParseError("body:\"open").find("quote"), std::string::npos);
  EXPECT_NE(ParseError("host:a OR").find("OR needs a term"), std::string::npos);
  EXPECT_NE(ParseError("is:purple").find("is: takes one of"), std::string::npos);
  EXPECT_NE(ParseError("~status:200").find("'~'"), std::string::npos);
  EXPECT_NE(ParseError("host:").find("needs a value"), std::string::npos);
}

TEST(FilterTest, GlobIsLinearOnPathologicalPatterns) {
  std::string text(20000, 'a');
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(GlobMatch("a*a?a", "aXXaYa"));
  EXPECT_FALSE(GlobMatch("a*a?a", "aXXaa"));
  EXPECT_TRUE(GlobMatch("*", ""));
}

TEST(FilterTest, DeepNestingIsAnErrorNotACrash) {
  // 10,000 levels overflowed the recursive parser's stack (a 20 KB URL from any web page).
  for (std::string_view open : {"(", "-(", "(-("}) {
    std::string deep;
    while (deep.size() + open.size() <= 8000) deep += open;
    deep += "host:a";
    std::string closed = deep + std::string(8000, ')');
    for (const std::string& text : {deep, closed}) {
      std::string e = ParseError(text);
      EXPECT_NE(e.find("nest deeper than 32 levels"), std::string::npos) << e.substr(0, 200);
    }
  }
  // 32 levels still parse and match.
  std::string ok;
  for (int i = 0; i < 32; ++i) ok += '(';
  ok += "host:a.test";
  for (int i = 0; i < 32; ++i) ok += ')';
  EXPECT_TRUE(M(ok, MakeFlow({.host = "a.test"})));
  EXPECT_NE(ParseError("(" + ok + ")").find("column 33:"), std::string::npos);
}

TEST(FilterTest, TermCountAndLengthAreBounded) {
  std::string many;
  for (int i = 0; i < 256; ++i) many += "host:a OR ";
  many += "host:b.test";
  EXPECT_NE(ParseError(many).find("more than 256 terms"), std::string::npos);
  many.resize(many.size() - std::string_view(" OR host:b.test").size());
  EXPECT_FALSE(M(many, MakeFlow({.host = "b.test"})));

  std::string longest = "url:" + std::string(16 * 1024 - 4, 'x');
  EXPECT_FALSE(M(longest, MakeFlow({})));
  EXPECT_NE(ParseError(longest + "x").find("the limit is 16384"), std::string::npos);
}

}  // namespace
}  // namespace mitmd
