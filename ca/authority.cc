#include "ca/authority.h"

#include <unistd.h>

#include <openssl/x509.h>

#include <ctime>
#include <mutex>
#include <utility>

#include "ca/keys.h"
#include "ca/leaf_cache.h"
#include "ca/leaf_minter.h"
#include "ca/leaf_names.h"
#include "ca/root_store.h"
#include "core/strings.h"

namespace mitmd::ca {

struct Authority::Impl {
  RootPaths paths;
  bssl::UniquePtr<EVP_PKEY> leaf_key;
  LeafCache cache;

  mutable std::mutex mu;
  std::shared_ptr<const Root> root;  // guarded by mu

  Impl(RootPaths p, bssl::UniquePtr<EVP_PKEY> k, size_t capacity, Root r)
      : paths(std::move(p)), leaf_key(std::move(k)), cache(capacity),
        root(std::make_shared<const Root>(std::move(r))) {}

  std::shared_ptr<const Root> current() const {
    std::lock_guard lock(mu);
    return root;
  }
};

Authority::Authority(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Authority::~Authority() = default;

Result<std::unique_ptr<Authority>> Authority::LoadOrCreate(const std::string& confdir) {
  if (auto st = EnsurePrivateDir(confdir); !st) return std::unexpected(st.error());
  RootPaths paths = DefaultRootPaths(confdir);
  bool have_cert = access(paths.cert.c_str(), F_OK) == 0;
  bool have_key = access(paths.key.c_str(), F_OK) == 0;
  Result<Root> root = Fail("");
  if (have_cert && have_key) {
    root = LoadRoot(paths);
  } else if (!have_cert && !have_key) {
    root = CreateRoot(paths, KeyType::kEcdsaP256, nullptr);
  } else {
    const std::string& present = have_cert ? paths.cert : paths.key;
    const std::string& missing = have_cert ? paths.key : paths.cert;
    return Fail(StrCat(present, " exists but ", missing,
                       " does not: restore the missing file, or move both away to create a new root"));
  }
  if (!root) return std::unexpected(root.error());

  auto leaf_key = GenerateKey(KeyType::kEcdsaP256);
  if (!leaf_key) return std::unexpected(leaf_key.error());
  auto impl = std::make_unique<Impl>(std::move(paths), std::move(*leaf_key),
                                     kDefaultLeafCacheCapacity, std::move(*root));
  return std::unique_ptr<Authority>(new Authority(std::move(impl)));
}

Result<std::shared_ptr<const Leaf>> Authority::LeafFor(const LeafSpec& spec) {
  LeafNames names = NamesFor(spec);
  if (names.empty()) {
    return Fail("no usable host name or IP address for the certificate (SNI, host and upstream names are empty or invalid)");
  }
  std::string key = names.Key();
  LeafCache::Lookup found = impl_->cache.Find(key);
  if (found.leaf) return found.leaf;
  // Read the root after Find(): a root replaced since then also cleared the cache, so this leaf
  // is either from the new root or dropped by Insert() as stale.
  std::shared_ptr<const Root> root = impl_->current();
  auto leaf = MintLeaf(*root, impl_->leaf_key.get(), names, time(nullptr));
  if (!leaf) return std::unexpected(leaf.error());
  return impl_->cache.Insert(key, std::make_shared<const Leaf>(std::move(*leaf)), found.epoch);
}

std::string Authority::root_cert_path() const { return impl_->paths.cert; }
std::string Authority::root_key_path() const { return impl_->paths.key; }
std::string Authority::root_fingerprint_sha256() const { return impl_->current()->fingerprint_sha256; }
std::string Authority::root_pem() const { return impl_->current()->pem; }
X509* Authority::root() const { return impl_->current()->cert.get(); }
CacheStats Authority::cache_stats() const { return impl_->cache.stats(); }

}  // namespace mitmd::ca
