#include "ca/authority.h"

#include <openssl/x509.h>
#include <unistd.h>

#include <ctime>
#include <mutex>
#include <utility>

#include "ca/file_watcher.h"
#include "ca/leaf_cache.h"
#include "ca/leaf_minter.h"
#include "ca/leaf_names.h"
#include "ca/root_store.h"
#include "core/log.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

bool IsRsa(KeyType type) { return type != KeyType::kEcdsaP256; }

Result<Root> LoadOrCreateRoot(const AuthorityOptions& options, const RootPaths& paths) {
  if (!options.ca_cert.empty()) return LoadRoot(paths);
  if (auto st = EnsurePrivateDir(options.confdir); !st) return std::unexpected(st.error());
  bool have_cert = access(paths.cert.c_str(), F_OK) == 0;
  bool have_key = access(paths.key.c_str(), F_OK) == 0;
  if (have_cert && have_key) return LoadRoot(paths);
  if (!have_cert && !have_key) return CreateRoot(paths, options.root_key_type, Scope());
  const std::string& present = have_cert ? paths.cert : paths.key;
  const std::string& missing = have_cert ? paths.key : paths.cert;
  return Fail(
      StrCat(present, " exists but ", missing,
             " does not: restore the missing file, or move both away to create a new root"));
}

}  // namespace

struct Authority::Impl {
  RootPaths paths;
  bssl::UniquePtr<EVP_PKEY> leaf_key;
  LeafCache cache;
  Logger* logger;
  std::function<void(const ReloadEvent&)> on_reload;

  std::mutex reload_mu;  // one reload at a time

  mutable std::mutex mu;
  std::shared_ptr<const Root> root;                  // guarded by mu
  std::vector<std::shared_ptr<const Root>> retired;  // guarded by mu; keeps root() valid
  uint64_t generation = 1;                           // guarded by mu

  std::unique_ptr<FileWatcher> watcher;  // last member: stopped before the others go

  Impl(RootPaths p, bssl::UniquePtr<EVP_PKEY> k, const AuthorityOptions& options, Root r)
      : paths(std::move(p)),
        leaf_key(std::move(k)),
        cache(options.cache_capacity),
        logger(options.logger),
        on_reload(options.on_reload),
        root(std::make_shared<const Root>(std::move(r))) {}

  std::shared_ptr<const Root> current() const {
    std::lock_guard lock(mu);
    return root;
  }

  Result<ReloadEvent> Reload() {
    std::lock_guard reload_lock(reload_mu);
    ReloadEvent event;
    auto loaded = LoadRoot(paths);
    if (!loaded) {
      event.rejected = true;
      event.message = loaded.error().message;
      event.fingerprint_sha256 = current()->fingerprint_sha256;
      if (logger) {
        logger->Warn("CA root files changed but cannot be used; keeping the current root",
                     {{"error", event.message}, {"fingerprint_sha256", event.fingerprint_sha256}});
      }
      if (on_reload) on_reload(event);
      return Fail(event.message);
    }
    event.fingerprint_sha256 = loaded->fingerprint_sha256;
    if (event.fingerprint_sha256 != current()->fingerprint_sha256) {
      event.changed = true;
      std::string scope = loaded->scope.ToString();
      {
        std::lock_guard lock(mu);
        retired.push_back(std::move(root));
        root = std::make_shared<const Root>(std::move(*loaded));
        ++generation;
      }
      // After the swap: a mint that read the old root found its entry before this Clear(),
      // so its Insert() carries the old epoch and is dropped.
      cache.Clear();
      if (logger) {
        logger->Info("CA root reloaded", {{"cert", paths.cert},
                                          {"fingerprint_sha256", event.fingerprint_sha256},
                                          {"scope", scope}});
      }
    }
    if (on_reload) on_reload(event);
    return event;
  }
};

Authority::Authority(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Authority::~Authority() = default;

Result<std::unique_ptr<Authority>> Authority::LoadOrCreate(const std::string& confdir) {
  AuthorityOptions options;
  options.confdir = confdir;
  return Open(options);
}

Result<std::unique_ptr<Authority>> Authority::Open(const AuthorityOptions& options) {
  if (options.ca_cert.empty() != options.ca_key.empty()) {
    return Fail("--ca-cert and --ca-key go together: give both files or neither");
  }
  RootPaths paths = options.ca_cert.empty() ? DefaultRootPaths(options.confdir)
                                            : RootPaths{options.ca_cert, options.ca_key};
  auto root = LoadOrCreateRoot(options, paths);
  if (!root) return std::unexpected(root.error());
  if (IsRsa(options.leaf_key_type) && EVP_PKEY_id(root->key.get()) != EVP_PKEY_RSA) {
    return Fail(
        StrCat("--leaf-key-type ", ToString(options.leaf_key_type),
               " needs an RSA root: create one with `mitmd ca regenerate --ca-key-type rsa2048`, "
               "or use --ca-cert/--ca-key"));
  }
  auto leaf_key = GenerateKey(options.leaf_key_type);
  if (!leaf_key) return std::unexpected(leaf_key.error());

  auto impl =
      std::make_unique<Impl>(std::move(paths), std::move(*leaf_key), options, std::move(*root));
  if (options.watch) {
    Impl* raw = impl.get();
    auto watcher = FileWatcher::Start({raw->paths.cert, raw->paths.key}, options.watch_settle,
                                      [raw] { (void)raw->Reload(); });
    if (!watcher) return std::unexpected(watcher.error());
    impl->watcher = std::move(*watcher);
  }
  return std::unique_ptr<Authority>(new Authority(std::move(impl)));
}

Result<std::shared_ptr<const Leaf>> Authority::LeafFor(const LeafSpec& spec) {
  LeafNames names = NamesFor(spec);
  if (names.empty()) {
    return Fail(
        "no usable host name or IP address for the certificate (SNI, host and upstream names are "
        "empty or invalid)");
  }
  std::string key = names.Key();
  LeafCache::Lookup found = impl_->cache.Find(key);
  if (found.leaf) return found.leaf;
  // Read the root after Find(): a root replaced since then also cleared the cache, so this leaf
  // is either from the new root or dropped by Insert() as stale.
  std::shared_ptr<const Root> root = impl_->current();
  if (root->scope.constrained()) {
    names = KeepOnly(names, [&root](std::string_view name) { return root->scope.Permits(name); });
    if (names.empty()) {
      return Fail(StrCat("'", spec.sni.empty() ? spec.host : spec.sni,
                         "' is outside the CA's scope (", root->scope.ToString(), ")"));
    }
  }
  auto leaf = MintLeaf(*root, impl_->leaf_key.get(), names, time(nullptr));
  if (!leaf) return std::unexpected(leaf.error());
  return impl_->cache.Insert(key, std::make_shared<const Leaf>(std::move(*leaf)), found.epoch);
}

bool Authority::InScope(std::string_view host) const {
  return impl_->current()->scope.Permits(host);
}
std::string Authority::scope_description() const { return impl_->current()->scope.ToString(); }

Result<ReloadEvent> Authority::Reload() { return impl_->Reload(); }

uint64_t Authority::root_generation() const {
  std::lock_guard lock(impl_->mu);
  return impl_->generation;
}

std::string Authority::root_cert_path() const { return impl_->paths.cert; }
std::string Authority::root_key_path() const { return impl_->paths.key; }
std::string Authority::root_fingerprint_sha256() const {
  return impl_->current()->fingerprint_sha256;
}
std::string Authority::root_pem() const { return impl_->current()->pem; }
X509* Authority::root() const { return impl_->current()->cert.get(); }
CacheStats Authority::cache_stats() const { return impl_->cache.stats(); }

}  // namespace mitmd::ca
