#include <gtest/gtest.h>

#include <thread>

#include "ca/leaf_cache.h"

namespace mitmd::ca {
namespace {

std::shared_ptr<const Leaf> MakeLeaf(const std::string& name) {
  auto leaf = std::make_shared<Leaf>();
  leaf->dns_names.push_back(name);
  return leaf;
}

TEST(LeafCacheTest, MissThenHit) {
  LeafCache cache(4);
  LeafCache::Lookup miss = cache.Find("a");
  EXPECT_EQ(miss.leaf, nullptr);
  auto leaf = MakeLeaf("a");
  EXPECT_EQ(cache.Insert("a", leaf, miss.epoch), leaf);
  EXPECT_EQ(cache.Find("a").leaf, leaf);
  CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.size, 1u);
}

TEST(LeafCacheTest, EvictsTheLeastRecentlyUsed) {
  LeafCache cache(2);
  uint64_t epoch = cache.Find("x").epoch;
  cache.Insert("a", MakeLeaf("a"), epoch);
  cache.Insert("b", MakeLeaf("b"), epoch);
  ASSERT_NE(cache.Find("a").leaf, nullptr);  // a is now more recent than b
  cache.Insert("c", MakeLeaf("c"), epoch);
  EXPECT_NE(cache.Find("a").leaf, nullptr);
  EXPECT_EQ(cache.Find("b").leaf, nullptr);
  EXPECT_NE(cache.Find("c").leaf, nullptr);
  EXPECT_EQ(cache.stats().size, 2u);
}

TEST(LeafCacheTest, FirstInsertWins) {
  LeafCache cache(2);
  uint64_t epoch = cache.Find("a").epoch;
  auto first = MakeLeaf("first");
  cache.Insert("a", first, epoch);
  EXPECT_EQ(cache.Insert("a", MakeLeaf("second"), epoch), first);
  EXPECT_EQ(cache.Find("a").leaf, first);
}

TEST(LeafCacheTest, ClearDropsEntriesAndRejectsStaleInserts) {
  LeafCache cache(8);
  uint64_t old_epoch = cache.Find("a").epoch;
  cache.Insert("a", MakeLeaf("a"), old_epoch);
  cache.Clear();
  EXPECT_EQ(cache.stats().size, 0u);
  // A leaf minted from the old root, inserted after the clear, is returned but not kept.
  auto stale = MakeLeaf("b");
  EXPECT_EQ(cache.Insert("b", stale, old_epoch), stale);
  LeafCache::Lookup lookup = cache.Find("b");
  EXPECT_EQ(lookup.leaf, nullptr);
  EXPECT_NE(lookup.epoch, old_epoch);
  cache.Insert("b", MakeLeaf("b"), lookup.epoch);
  EXPECT_NE(cache.Find("b").leaf, nullptr);
}

TEST(LeafCacheTest, ZeroCapacityNeverKeeps) {
  LeafCache cache(0);
  cache.Insert("a", MakeLeaf("a"), cache.Find("a").epoch);
  EXPECT_EQ(cache.Find("a").leaf, nullptr);
  EXPECT_EQ(cache.stats().size, 0u);
}

TEST(LeafCacheTest, ConcurrentUseKeepsCountsAndCapacity) {
  LeafCache cache(16);
  constexpr int kThreads = 4;
  constexpr int kOps = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < kOps; ++i) {
        std::string key = std::to_string((i * 7 + t) % 40);
        LeafCache::Lookup l = cache.Find(key);
        if (!l.leaf) cache.Insert(key, MakeLeaf(key), l.epoch);
        if (i % 500 == 0) cache.Clear();
      }
    });
  }
  for (auto& th : threads) th.join();
  CacheStats s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, static_cast<uint64_t>(kThreads * kOps));
  EXPECT_LE(s.size, 16u);
}

}  // namespace
}  // namespace mitmd::ca
