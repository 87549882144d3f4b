#include "flow/connection_registry.h"

#include <gtest/gtest.h>

#include <thread>

namespace mitmd {
namespace {

struct FakeClock {
  double now = 1000;
  ConnectionRegistry::Clock fn() {
    return [this] { return now; };
  }
};

TEST(WebConnectionRegistryTest, TracksAConnectionFromOpenToClose) {
  FakeClock clock;
  ConnectionRegistry reg(10, clock.fn());
  uint64_t client = reg.OpenClient("127.0.0.1:5000", "127.0.0.1:8080");
  uint64_t up = reg.OpenUpstream(client, "example.com", 443);
  EXPECT_NE(client, up);
  reg.SetTarget(client, "example.com", 443);
  reg.SetAddresses(up, "93.184.216.34:443", "10.0.0.2:40000");
  reg.SetTls(up, TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "h2", "example.com", {}});
  clock.now = 1002;
  reg.AddRequest(up);
  reg.AddBytes(up, 1000, 200);
  reg.AddBytes(up, 24, 0);
  EXPECT_EQ(reg.open_count(), 2u);
  auto info = reg.Find(up);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->bytes_in, 1024u);
  EXPECT_EQ(info->bytes_out, 200u);
  EXPECT_FALSE(info->reused());
  EXPECT_EQ(info->tls->alpn, "h2");
  EXPECT_EQ(info->last_active, 1002);
  EXPECT_EQ(info->peer_addr, "93.184.216.34:443");

  reg.AddRequest(up);
  EXPECT_TRUE(reg.Find(up)->reused());

  clock.now = 1010;
  reg.Close(up, ClosedBy::kPeer, "server closed the connection");
  reg.Close(up, ClosedBy::kMitmd, "ignored: already closed");
  reg.AddBytes(up, 5, 5);  // after close: ignored
  info = reg.Find(up);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->closed, 1010);
  EXPECT_EQ(info->closed_by, ClosedBy::kPeer);
  EXPECT_EQ(info->close_reason, "server closed the connection");
  EXPECT_EQ(info->bytes_in, 1024u);
  EXPECT_EQ(reg.open_count(), 1u);

  nlohmann::json j = ConnectionToJson(*info, 1020);
  EXPECT_EQ(j["side"], "upstream");
  EXPECT_EQ(j["closed_by"], "peer");
  EXPECT_EQ(j["reused"], true);
  EXPECT_EQ(j["open"], false);
  EXPECT_EQ(j["idle"], 8);  // idle until it closed, not until now
  EXPECT_EQ(j["client"], client);
}

TEST(WebConnectionRegistryTest, SnapshotListsOpenThenRecentlyClosedAndBoundsHistory) {
  FakeClock clock;
  ConnectionRegistry reg(3, clock.fn());
  std::vector<uint64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(reg.OpenClient("c" + std::to_string(i), ""));
  for (int i = 0; i < 5; ++i) {
    clock.now += 1;
    reg.Close(ids[i], ClosedBy::kMitmd, "idle timeout");
  }
  auto snap = reg.Snapshot();
  ASSERT_EQ(snap.size(), 4u);  // 1 open + the 3 most recently closed
  EXPECT_EQ(snap[0].id, ids[5]);
  EXPECT_EQ(snap[1].id, ids[4]);
  EXPECT_EQ(snap[3].id, ids[2]);
  EXPECT_FALSE(reg.Find(ids[0]));
}

TEST(WebConnectionRegistryTest, ListenersHearStructuralChangesNotByteCounts) {
  ConnectionRegistry reg;
  int calls = 0;
  uint64_t token = reg.Subscribe([&] { ++calls; });
  uint64_t id = reg.OpenClient("a", "b");
  EXPECT_EQ(calls, 1);
  uint64_t v = reg.version();
  reg.AddBytes(id, 1, 1);
  EXPECT_EQ(calls, 1);
  EXPECT_GT(reg.version(), v);
  reg.Close(id, ClosedBy::kPeer, "");
  EXPECT_EQ(calls, 2);
  reg.Unsubscribe(token);
  reg.OpenClient("c", "d");
  EXPECT_EQ(calls, 2);
}

TEST(WebConnectionRegistryTest, ConcurrentUpdatesFromManyThreads) {
  ConnectionRegistry reg(100000);
  constexpr int kThreads = 4, kConns = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kConns; ++i) {
        uint64_t c = reg.OpenClient("x", "y");
        uint64_t u = reg.OpenUpstream(c, "h", 1);
        for (int k = 0; k < 10; ++k) reg.AddBytes(u, 10, 1);
        reg.AddRequest(u);
        reg.Close(u, ClosedBy::kMitmd, "");
        reg.Close(c, ClosedBy::kPeer, "");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(reg.open_count(), 0u);
  auto snap = reg.Snapshot();
  ASSERT_EQ(snap.size(), static_cast<size_t>(2 * kThreads * kConns));
  uint64_t total = 0;
  for (const auto& c : snap) total += c.bytes_in;
  EXPECT_EQ(total, static_cast<uint64_t>(kThreads * kConns * 100));
}

TEST(WebConnectionRegistryTest, AnUpstreamConnectionListsTheClientConnectionsItServed) {
  ConnectionRegistry reg;
  uint64_t a = reg.OpenClient("127.0.0.1:5000", "127.0.0.1:8080");
  uint64_t b = reg.OpenClient("127.0.0.1:5001", "127.0.0.1:8080");
  uint64_t up = reg.OpenUpstream(a, "example.com", 443);
  reg.AddRequest(up, a);
  reg.AddRequest(up, a);
  reg.AddRequest(up, b);  // pooled, then taken by another client connection
  nlohmann::json j = ConnectionToJson(*reg.Find(up), reg.Now());
  EXPECT_EQ(j["clients"], nlohmann::json::array({a, b}));
  EXPECT_FALSE(j.contains("more_clients"));
  for (size_t i = 0; i < ConnectionInfo::kMaxClientsListed; ++i) reg.AddRequest(up, 1000 + i);
  auto info = reg.Find(up);
  EXPECT_EQ(info->clients.size(), ConnectionInfo::kMaxClientsListed);  // bounded
  EXPECT_TRUE(info->more_clients);
  EXPECT_EQ(info->requests, 3 + ConnectionInfo::kMaxClientsListed);
}

}  // namespace
}  // namespace mitmd
