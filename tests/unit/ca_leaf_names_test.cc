#include <gtest/gtest.h>

#include "ca/leaf_names.h"

namespace mitmd::ca {
namespace {

using Names = std::vector<std::string>;

TEST(CanonicalIpTest, AcceptsV4AndV6InAnyNotation) {
  EXPECT_EQ(CanonicalIp("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(CanonicalIp("::1"), "::1");
  EXPECT_EQ(CanonicalIp("[::1]"), "::1");
  EXPECT_EQ(CanonicalIp("0:0:0:0:0:0:0:1"), "::1");
  EXPECT_EQ(CanonicalIp("2001:DB8::A"), "2001:db8::a");
  EXPECT_EQ(CanonicalIp("::ffff:10.1.2.3"), "::ffff:10.1.2.3");
}

TEST(CanonicalIpTest, RejectsEverythingElse) {
  EXPECT_EQ(CanonicalIp(""), "");
  EXPECT_EQ(CanonicalIp("example.com"), "");
  EXPECT_EQ(CanonicalIp("256.1.1.1"), "");
  EXPECT_EQ(CanonicalIp("1.2.3"), "");
  EXPECT_EQ(CanonicalIp("[127.0.0.1"), "");
  EXPECT_EQ(CanonicalIp("fe80::1%eth0"), "");
}

TEST(CanonicalDnsNameTest, LowerCasesAndDropsTheTrailingDot) {
  EXPECT_EQ(CanonicalDnsName("WWW.Example.COM."), "www.example.com");
  EXPECT_EQ(CanonicalDnsName("*.Example.com"), "*.example.com");
  EXPECT_EQ(CanonicalDnsName("localhost"), "localhost");
  EXPECT_EQ(CanonicalDnsName("_dmarc.example.com"), "_dmarc.example.com");
}

TEST(CanonicalDnsNameTest, RejectsWhatIsNotAHostName) {
  EXPECT_EQ(CanonicalDnsName(""), "");
  EXPECT_EQ(CanonicalDnsName("."), "");
  EXPECT_EQ(CanonicalDnsName("Acme Corp"), "");
  EXPECT_EQ(CanonicalDnsName("a..b"), "");
  EXPECT_EQ(CanonicalDnsName("a.*.b"), "");
  EXPECT_EQ(CanonicalDnsName("*"), "");
  EXPECT_EQ(CanonicalDnsName("exa\xc3\xa9mple.com"), "");
  EXPECT_EQ(CanonicalDnsName(std::string(64, 'a') + ".com"), "");
  EXPECT_EQ(CanonicalDnsName(std::string(63, 'a') + ".com"), std::string(63, 'a') + ".com");
}

TEST(NamesForTest, OrderIsUpstreamCnSansThenSniThenHost) {
  LeafNames n = NamesFor({.sni = "sni.test",
                          .host = "host.test",
                          .upstream_cn = "cn.test",
                          .upstream_dns = {"san1.test", "san2.test"},
                          .upstream_ips = {"192.0.2.1"}});
  EXPECT_EQ(n.dns, (Names{"cn.test", "san1.test", "san2.test", "sni.test", "host.test"}));
  EXPECT_EQ(n.ips, (Names{"192.0.2.1"}));
  EXPECT_EQ(n.common_name, "cn.test");
}

TEST(NamesForTest, IpLiteralsAnywhereBecomeIps) {
  LeafNames n = NamesFor({.sni = "",
                          .host = "[2001:db8::1]",
                          .upstream_cn = "192.0.2.7",
                          .upstream_dns = {"192.0.2.8"}});
  EXPECT_TRUE(n.dns.empty());
  EXPECT_EQ(n.ips, (Names{"192.0.2.7", "192.0.2.8", "2001:db8::1"}));
  EXPECT_EQ(n.common_name, "");
}

TEST(NamesForTest, DeduplicatesCaseInsensitively) {
  LeafNames n = NamesFor({.sni = "Example.com",
                          .host = "EXAMPLE.COM.",
                          .upstream_cn = "example.com",
                          .upstream_dns = {"example.COM"},
                          .upstream_ips = {"::1", "0::1"}});
  EXPECT_EQ(n.dns, (Names{"example.com"}));
  EXPECT_EQ(n.ips, (Names{"::1"}));
}

TEST(NamesForTest, DropsAnUpstreamCnThatIsNotAHostName) {
  LeafNames n =
      NamesFor({.sni = "example.com", .host = "example.com", .upstream_cn = "Example Server"});
  EXPECT_EQ(n.dns, (Names{"example.com"}));
  EXPECT_EQ(n.common_name, "example.com");
}

TEST(NamesForTest, EmptySpecGivesNoNames) { EXPECT_TRUE(NamesFor({}).empty()); }

TEST(NamesForTest, KeyIgnoresOrderButNotContent) {
  LeafNames a = NamesFor({.sni = "a.test", .host = "b.test"});
  LeafNames b = NamesFor({.sni = "B.test", .host = "a.test"});
  LeafNames c = NamesFor({.sni = "a.test", .host = "c.test"});
  LeafNames d = NamesFor({.sni = "a.test", .host = "127.0.0.1"});
  EXPECT_EQ(a.Key(), b.Key());
  EXPECT_NE(a.Key(), c.Key());
  EXPECT_NE(a.Key(), d.Key());
}

}  // namespace
}  // namespace mitmd::ca
