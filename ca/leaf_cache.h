#pragma once
// A thread-safe LRU cache of minted leaves, keyed by LeafNames::Key().
//
// Minting happens outside the cache's lock. To keep a leaf minted from a replaced root out of
// the cache, Find() returns the cache's epoch and Insert() drops leaves from an older epoch;
// Clear() starts a new epoch.

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "ca/authority.h"

namespace mitmd::ca {

class LeafCache {
 public:
  // |capacity| 0 disables caching (every lookup misses).
  explicit LeafCache(size_t capacity = kDefaultLeafCacheCapacity);

  struct Lookup {
    std::shared_ptr<const Leaf> leaf;  // null on a miss
    uint64_t epoch = 0;                // pass to Insert()
  };

  // Counts a hit or a miss; a hit becomes the most recently used entry.
  Lookup Find(const std::string& key);
  // Adds |leaf| unless |epoch| is older than the current one, evicting the least recently used
  // entry beyond capacity. An existing entry for |key| is kept (the first mint wins).
  // Returns the cached leaf for |key| (|leaf| itself when the epoch is stale).
  std::shared_ptr<const Leaf> Insert(const std::string& key, std::shared_ptr<const Leaf> leaf,
                                     uint64_t epoch);
  // Drops every entry and starts a new epoch. Counters are kept.
  void Clear();

  CacheStats stats() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const Leaf>>;

  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  uint64_t epoch_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace mitmd::ca
