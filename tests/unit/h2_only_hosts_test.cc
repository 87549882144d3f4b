// The learned h2-only servers: found until they expire, bounded, the oldest forgotten first.

#include "proxy/upstream/h2_only_hosts.h"

#include <gtest/gtest.h>

#include <string>

namespace mitmd::proxy {
namespace {

TEST(H2OnlyHosts, ARememberedServerIsFoundWithWhyUntilItExpires) {
  H2OnlyHosts hosts(/*capacity=*/8, /*ttl=*/60);
  EXPECT_EQ(hosts.Find("example.com", 443, 0), nullptr);
  hosts.Remember("example.com", 443, "it answered with HTTP/2 frames", 100);
  const std::string* why = hosts.Find("example.com", 443, 159);
  ASSERT_NE(why, nullptr);
  EXPECT_EQ(*why, "it answered with HTTP/2 frames");
  // Another port, another host: another server.
  EXPECT_EQ(hosts.Find("example.com", 8443, 100), nullptr);
  EXPECT_EQ(hosts.Find("example.org", 443, 100), nullptr);
  // Expired: forgotten.
  EXPECT_EQ(hosts.Find("example.com", 443, 160), nullptr);
  EXPECT_EQ(hosts.size(), 0u);
}

TEST(H2OnlyHosts, RememberingAgainRenewsTheEntry) {
  H2OnlyHosts hosts(8, 60);
  hosts.Remember("a", 443, "first", 0);
  hosts.Remember("a", 443, "second", 50);
  ASSERT_NE(hosts.Find("a", 443, 100), nullptr);
  EXPECT_EQ(*hosts.Find("a", 443, 100), "second");
  EXPECT_EQ(hosts.size(), 1u);
}

TEST(H2OnlyHosts, TheOldestEntryGoesWhenFull) {
  H2OnlyHosts hosts(/*capacity=*/3, 1000);
  for (int i = 0; i < 5; ++i) hosts.Remember("h" + std::to_string(i), 443, "why", i);
  EXPECT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts.Find("h0", 443, 10), nullptr);
  EXPECT_EQ(hosts.Find("h1", 443, 10), nullptr);
  for (int i = 2; i < 5; ++i) EXPECT_NE(hosts.Find("h" + std::to_string(i), 443, 10), nullptr);
  // A renewed entry is the newest again.
  hosts.Remember("h2", 443, "why", 20);
  hosts.Remember("h5", 443, "why", 21);
  EXPECT_NE(hosts.Find("h2", 443, 30), nullptr);
  EXPECT_EQ(hosts.Find("h3", 443, 30), nullptr);
}

TEST(H2OnlyHosts, CapacityZeroRemembersNothing) {
  H2OnlyHosts hosts(0, 1000);
  hosts.Remember("a", 443, "why", 0);
  EXPECT_EQ(hosts.Find("a", 443, 1), nullptr);
}

}  // namespace
}  // namespace mitmd::proxy
