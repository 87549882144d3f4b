// Auto-passthrough's decision table (proxy/passthrough.h): per client and host, and only when the
// client is known to trust mitmd's root.

#include "proxy/passthrough.h"

#include <gtest/gtest.h>

#include "core/address.h"

namespace mitmd::proxy {
namespace {

using mitmd::AddressWithoutPort;
using mitmd::Cidr;
using mitmd::InNetworks;

using Evidence = PassthroughPolicy::Evidence;

std::unique_ptr<PassthroughPolicy> Make(bool auto_on = true, std::vector<std::string> ignore = {}) {
  Config c;
  c.auto_passthrough = auto_on;
  c.auto_passthrough_ttl = std::chrono::seconds(600);
  c.ignore_hosts = std::move(ignore);
  auto p = PassthroughPolicy::Create(c);
  EXPECT_TRUE(p);
  return std::move(*p);
}

TEST(PassthroughTest, AnAlertFromAClientThatNeverTrustedMitmdIsNotAPin) {
  auto p = Make();
  auto v = p->RecordRejection("10.0.0.7:5000", "app.test", Evidence::kAlert, "alert", true, 100);
  EXPECT_FALSE(v.tunnelled);
  EXPECT_NE(v.message.find("mitmd.cert"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("/ca"), std::string::npos) << v.message;
  EXPECT_FALSE(p->Reason("10.0.0.7:5001", "app.test", 443, 101));
  EXPECT_TRUE(p->List(101).empty());
}

TEST(PassthroughTest, AnAlertFromATrustingClientPinsThatHostForThatClientOnly) {
  auto p = Make();
  p->NoteAccepted("10.0.0.7:4000", 50);
  auto v = p->RecordRejection("10.0.0.7:5000", "App.Test", Evidence::kAlert, "bad_certificate",
                              true, 100);
  EXPECT_TRUE(v.tunnelled) << v.message;
  auto reason = p->Reason("10.0.0.7:6000", "app.test", 443, 101);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("auto-passthrough"), std::string::npos) << *reason;
  EXPECT_NE(reason->find("599 s"), std::string::npos) << *reason;
  // Another client, another host: intercepted.
  EXPECT_FALSE(p->Reason("10.0.0.8:6000", "app.test", 443, 101));
  EXPECT_FALSE(p->Reason("10.0.0.7:6000", "other.test", 443, 101));
  // Until the TTL ends.
  EXPECT_FALSE(p->Reason("10.0.0.7:6000", "app.test", 443, 701));
}

// A regenerated root: a client that trusts the new root refuses the old root's leaves until the
// reload, which looks like pinning. The reload forgets the pins and who trusted the old root.
TEST(PassthroughTest, ARootReloadForgetsPinsAndWhoTrustedTheOldRoot) {
  auto p = Make();
  p->NoteAccepted("10.0.0.7", 50);
  ASSERT_TRUE(p->RecordRejection("10.0.0.7", "app.test", Evidence::kAlert, "bad_certificate", true, 100)
                  .tunnelled);
  ASSERT_TRUE(p->Reason("10.0.0.7", "app.test", 443, 101));
  p->ForgetEvidence();
  EXPECT_FALSE(p->Reason("10.0.0.7", "app.test", 443, 102));
  EXPECT_TRUE(p->List(102).empty());
  // Until it completes a request under the new root, its refusals are not pins.
  EXPECT_FALSE(p->RecordRejection("10.0.0.7", "app.test", Evidence::kAlert, "bad_certificate", true, 103)
                   .tunnelled);
}

TEST(PassthroughTest, HangupsPinOnlyWhenRepeatedFromATrustingHttpClient) {
  auto p = Make();
  // Untrusted: never.
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(p->RecordRejection("10.0.0.9", "h.test", Evidence::kHangup, "hangup", true, 10 + i)
                     .tunnelled);
  }
  p->NoteAccepted("10.0.0.9", 20);
  // No HTTP ALPN offered (openssl s_client, a scanner): never.
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(p->RecordRejection("10.0.0.9", "h.test", Evidence::kHangup, "hangup", false, 30 + i)
                     .tunnelled);
  }
  // Hang-ups spread wider than the window do not add up.
  const double w = PassthroughPolicy::kEvidenceWindow;
  EXPECT_FALSE(p->RecordRejection("10.0.0.9", "h.test", Evidence::kHangup, "h", true, 100).tunnelled);
  EXPECT_FALSE(p->RecordRejection("10.0.0.9", "h.test", Evidence::kHangup, "h", true, 101).tunnelled);
  EXPECT_FALSE(p->RecordRejection("10.0.0.9", "h.test", Evidence::kHangup, "h", true, 102 + w).tunnelled);
  EXPECT_FALSE(p->Reason("10.0.0.9", "h.test", 443, 103 + w));
  EXPECT_FALSE(p->RecordRejection("10.0.0.9", "h.test", Evidence::kHangup, "h", true, 104 + w).tunnelled);
  auto third = p->RecordRejection("10.0.0.9", "h.test", Evidence::kHangup, "h", true, 105 + w);
  EXPECT_TRUE(third.tunnelled) << third.message;
  EXPECT_TRUE(p->Reason("10.0.0.9:1", "h.test", 443, 106 + w));
}

TEST(PassthroughTest, ListAndClearByClientAndHost) {
  auto p = Make();
  p->NoteAccepted("10.0.0.1:1", 0);
  p->NoteAccepted("[::1]:2", 0);
  p->RecordRejection("10.0.0.1:3", "a.test", Evidence::kAlert, "x", true, 10);
  p->RecordRejection("10.0.0.1:3", "b.test", Evidence::kAlert, "x", true, 11);
  p->RecordRejection("[::1]:4", "a.test", Evidence::kAlert, "x", true, 12);
  auto list = p->List(20);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].client, "::1");  // newest first
  EXPECT_EQ(list[0].host, "a.test");
  auto json = p->ListJson(20);
  EXPECT_EQ(json["entries"].size(), 3u);
  EXPECT_EQ(json["entries"][0]["seconds_left"], 592);
  EXPECT_EQ(p->Clear("10.0.0.1", "a.test"), 1u);
  EXPECT_EQ(p->Clear("", "a.test"), 1u);
  EXPECT_EQ(p->Clear("", ""), 1u);
  EXPECT_TRUE(p->List(20).empty());
}

TEST(PassthroughTest, OffAndIgnoreHosts) {
  auto off = Make(false);
  off->NoteAccepted("10.0.0.1", 0);
  EXPECT_FALSE(off->RecordRejection("10.0.0.1", "a.test", Evidence::kAlert, "x", true, 1).tunnelled);
  EXPECT_FALSE(off->Reason("10.0.0.1", "a.test", 443, 2));
  auto ignore = Make(true, {"^bank\\."});
  auto reason = ignore->Reason("10.0.0.1", "bank.test", 443, 0);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("--ignore-hosts"), std::string::npos);
}

TEST(AddressTest, WithoutPortAndInNetworks) {
  EXPECT_EQ(AddressWithoutPort("10.1.2.3:80"), "10.1.2.3");
  EXPECT_EQ(AddressWithoutPort("[fe80::1]:80"), "fe80::1");
  EXPECT_EQ(AddressWithoutPort("fe80::1"), "fe80::1");
  EXPECT_EQ(AddressWithoutPort("10.1.2.3"), "10.1.2.3");
  std::vector<Cidr> nets = {*Cidr::Parse("192.168.1.0/24"), *Cidr::Parse("fd00::/8")};
  EXPECT_TRUE(InNetworks(nets, "192.168.1.77:5000"));
  EXPECT_TRUE(InNetworks(nets, "[fd12::3]:5000"));
  EXPECT_FALSE(InNetworks(nets, "192.168.2.1:5000"));
  EXPECT_FALSE(InNetworks(nets, "127.0.0.1"));
  EXPECT_FALSE(InNetworks({}, "192.168.1.77"));
  EXPECT_FALSE(InNetworks(nets, "not an address"));
}

}  // namespace
}  // namespace mitmd::proxy
