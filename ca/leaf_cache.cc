#include "ca/leaf_cache.h"

namespace mitmd::ca {

LeafCache::LeafCache(size_t capacity) : capacity_(capacity) {}

LeafCache::Lookup LeafCache::Find(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return Lookup{nullptr, epoch_};
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return Lookup{it->second->second, epoch_};
}

std::shared_ptr<const Leaf> LeafCache::Insert(const std::string& key,
                                              std::shared_ptr<const Leaf> leaf, uint64_t epoch) {
  std::lock_guard lock(mu_);
  if (epoch != epoch_ || capacity_ == 0) return leaf;
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  lru_.emplace_front(key, leaf);
  index_.emplace(key, lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return leaf;
}

void LeafCache::Clear() {
  std::lock_guard lock(mu_);
  ++epoch_;
  index_.clear();
  lru_.clear();
}

CacheStats LeafCache::stats() const {
  std::lock_guard lock(mu_);
  return CacheStats{hits_, misses_, lru_.size()};
}

}  // namespace mitmd::ca
