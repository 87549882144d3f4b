// Micro-benchmarks of the certificate authority: how fast leaves are minted (a cache miss: one
// ECDSA or RSA signature plus certificate assembly) and what a cache hit costs, alone and from
// several threads at once.
//
//   build-*/tools/ca_bench [--benchmark_filter=...]
// Reports leaves/s (items_per_second) and the per-call time of each case.

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "ca/authority.h"

namespace mitmd::ca {
namespace {

// A confdir under /tmp, removed at exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = "/tmp/mitmd-ca-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<Authority> OpenAuthority(const std::string& dir, KeyType root, KeyType leaf,
                                         size_t capacity) {
  AuthorityOptions options;
  options.confdir = dir;
  options.root_key_type = root;
  options.leaf_key_type = leaf;
  options.cache_capacity = capacity;
  auto ca = Authority::Open(options);
  if (!ca) {
    std::fprintf(stderr, "ca_bench: %s\n", ca.error().message.c_str());
    std::exit(1);
  }
  return std::move(*ca);
}

LeafSpec TypicalSpec(uint64_t n) {
  // Shaped like a real site: SNI, CONNECT host, an upstream CN and a few SANs.
  std::string host = "host" + std::to_string(n) + ".example.com";
  return LeafSpec{
      .sni = host,
      .host = host,
      .upstream_cn = host,
      .upstream_dns = {host, "*.cdn" + std::to_string(n) + ".example.com", "example.com"},
      .upstream_ips = {}};
}

// Every call a miss: a cache of capacity 0 keeps nothing.
void MintLeaves(benchmark::State& state, KeyType root, KeyType leaf) {
  ScratchDir dir;
  auto ca = OpenAuthority(dir.path() + "/conf", root, leaf, 0);
  uint64_t n = 0;
  for (auto _ : state) {
    auto minted = ca->LeafFor(TypicalSpec(n++));
    if (!minted) state.SkipWithError(minted.error().message.c_str());
    benchmark::DoNotOptimize(minted);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("leaves/s = items_per_second");
}

void BM_MintLeaf_EcRoot_EcLeaf(benchmark::State& state) {
  MintLeaves(state, KeyType::kEcdsaP256, KeyType::kEcdsaP256);
}
void BM_MintLeaf_Rsa2048Root_EcLeaf(benchmark::State& state) {
  MintLeaves(state, KeyType::kRsa2048, KeyType::kEcdsaP256);
}
void BM_MintLeaf_Rsa3072Root_Rsa2048Leaf(benchmark::State& state) {
  MintLeaves(state, KeyType::kRsa3072, KeyType::kRsa2048);
}

// One Authority shared by all benchmark threads, like the proxy's workers share one.
struct Shared {
  ScratchDir dir;
  std::unique_ptr<Authority> ca;
  std::atomic<uint64_t> next{0};
};
Shared* shared = nullptr;

void BM_MintLeaf_Threads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared = new Shared;
    shared->ca =
        OpenAuthority(shared->dir.path() + "/conf", KeyType::kEcdsaP256, KeyType::kEcdsaP256, 0);
  }
  // Google Benchmark starts timing only after every thread has passed setup.
  for (auto _ : state) {
    auto minted = shared->ca->LeafFor(TypicalSpec(shared->next.fetch_add(1)));
    benchmark::DoNotOptimize(minted);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete shared;
    shared = nullptr;
  }
}

// A hit: name normalisation, key building, one locked map lookup and LRU splice.
void BM_CacheHit(benchmark::State& state) {
  ScratchDir dir;
  auto ca = OpenAuthority(dir.path() + "/conf", KeyType::kEcdsaP256, KeyType::kEcdsaP256,
                          kDefaultLeafCacheCapacity);
  const int64_t hosts = state.range(0);
  for (int64_t i = 0; i < hosts; ++i) (void)ca->LeafFor(TypicalSpec(i));
  uint64_t n = 0;
  for (auto _ : state) {
    auto hit = ca->LeafFor(TypicalSpec(n++ % hosts));
    benchmark::DoNotOptimize(hit);
  }
  state.SetItemsProcessed(state.iterations());
  CacheStats stats = ca->cache_stats();
  state.counters["hit_ratio"] =
      static_cast<double>(stats.hits) / static_cast<double>(stats.hits + stats.misses);
}

void BM_CacheHit_Threads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared = new Shared;
    shared->ca = OpenAuthority(shared->dir.path() + "/conf", KeyType::kEcdsaP256,
                               KeyType::kEcdsaP256, kDefaultLeafCacheCapacity);
    for (int i = 0; i < 100; ++i) (void)shared->ca->LeafFor(TypicalSpec(i));
  }
  uint64_t n = state.thread_index();
  for (auto _ : state) {
    auto hit = shared->ca->LeafFor(TypicalSpec(n++ % 100));
    benchmark::DoNotOptimize(hit);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete shared;
    shared = nullptr;
  }
}

BENCHMARK(BM_MintLeaf_EcRoot_EcLeaf)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MintLeaf_Rsa2048Root_EcLeaf)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MintLeaf_Rsa3072Root_Rsa2048Leaf)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MintLeaf_Threads)
    ->Threads(1)
    ->Threads(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_CacheHit)->Arg(1)->Arg(100)->Arg(10'000)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_CacheHit_Threads)->Threads(1)->Threads(2)->Unit(benchmark::kNanosecond)->UseRealTime();

}  // namespace
}  // namespace mitmd::ca

BENCHMARK_MAIN();
