#pragma once
// The certificate authority: the root users trust, and the leaves minted from it per host.
// A library with no sockets. Thread-safe: LeafFor() is called from every worker thread while
// the root may be reloaded from disk on the watcher's thread.

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/pool.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ca/keys.h"
#include "core/result.h"

namespace mitmd {
class Logger;
}

namespace mitmd::ca {

// What a leaf must name. Built by the proxy from the ClientHello and the upstream certificate.
struct LeafSpec {
  std::string sni;                        // server name the client sent (may be empty)
  std::string host;                       // CONNECT host (a name or an IP literal)
  std::string upstream_cn;                // upstream certificate's subject CN (may be empty)
  std::vector<std::string> upstream_dns;  // upstream DNS SANs
  std::vector<std::string> upstream_ips;  // upstream IP SANs, textual
};

// A minted leaf. Hand |chain| (leaf first, then the root) and |key| to SSL_set_chain_and_key.
struct Leaf {
  std::vector<bssl::UniquePtr<CRYPTO_BUFFER>> chain;
  bssl::UniquePtr<EVP_PKEY> key;       // the run's shared leaf key (up-ref'd)
  std::vector<std::string> dns_names;  // as put in the certificate
  std::vector<std::string> ip_names;
};

inline constexpr size_t kDefaultLeafCacheCapacity = 10'000;

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  size_t size = 0;
};

// What a reload attempt did; passed to AuthorityOptions::on_reload.
struct ReloadEvent {
  bool changed = false;            // a new root is in use
  bool rejected = false;           // the files on disk were unusable; the previous root stays
  std::string message;             // why it was rejected
  std::string fingerprint_sha256;  // of the root in use after the attempt
};

struct AuthorityOptions {
  // Where mitmd-ca.pem and mitmd-ca-key.pem live (created, mode 0700, with a new root when
  // neither file exists). Ignored when ca_cert/ca_key are set.
  std::string confdir;
  // A user-supplied root (PEM; RSA or EC; unencrypted key). Both or neither. Never created.
  std::string ca_cert;
  std::string ca_key;
  KeyType root_key_type = KeyType::kEcdsaP256;  // for a new root only
  // The run's leaf key. RSA only with an RSA root.
  KeyType leaf_key_type = KeyType::kEcdsaP256;
  size_t cache_capacity = kDefaultLeafCacheCapacity;
  // Reload the root when its files change on disk (inotify).
  bool watch = false;
  // How long file events must be quiet before a reload: a pair of files written one after the
  // other is loaded once, as a pair.
  std::chrono::milliseconds watch_settle{250};
  // Receives one line per reload (info) or rejected reload (warn). Not owned; may be null.
  Logger* logger = nullptr;
  // Called on the watcher's thread after each reload attempt. May be empty.
  std::function<void(const ReloadEvent&)> on_reload;
};

class Authority {
 public:
  // Loads <confdir>/mitmd-ca.pem and <confdir>/mitmd-ca-key.pem, creating the directory (0700)
  // and a new ECDSA P-256 root (key 0600) when they do not exist. Fails with an actionable
  // message when the files are unreadable, malformed, or do not belong together.
  static Result<std::unique_ptr<Authority>> LoadOrCreate(const std::string& confdir);
  // The same with every option; also fails when the key file is accessible by group or others
  // (naming the file and the chmod that fixes it) or is encrypted.
  static Result<std::unique_ptr<Authority>> Open(const AuthorityOptions& options);
  ~Authority();

  // The leaf for |spec|, from the cache or freshly minted. Names: upstream CN and SANs, plus the
  // SNI, plus the host; IP literals become IP SANs; de-duplicated. With a scoped root, names
  // outside the scope are left out, and a spec with no name inside it fails.
  Result<std::shared_ptr<const Leaf>> LeafFor(const LeafSpec& spec);

  // Whether the current root may vouch for |host| (a name or an IP literal): always true for
  // an unscoped root. The proxy tunnels hosts outside the scope without intercepting them.
  bool InScope(std::string_view host) const;
  // The current root's name constraints in words ("unconstrained" for most roots).
  std::string scope_description() const;

  // Reads the root files again now. On success with a different root, leaves minted from the
  // old root are dropped from the cache; connections holding them are unaffected. On failure
  // the current root stays and the error is returned (and logged, and sent to on_reload).
  Result<ReloadEvent> Reload();
  // Increases by one each time a new root is taken into use (starts at 1). Lets callers that
  // derived something from the root (a download page) notice a reload cheaply.
  uint64_t root_generation() const;

  std::string root_cert_path() const;
  std::string root_key_path() const;
  // SHA-256 of the root's DER, as colon-separated upper-case hex (the form browsers show).
  std::string root_fingerprint_sha256() const;
  // The root certificate in PEM.
  std::string root_pem() const;
  // Borrowed; valid for the Authority's lifetime (a reload keeps earlier roots alive).
  X509* root() const;
  CacheStats cache_stats() const;

  struct Impl;

 private:
  explicit Authority(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mitmd::ca
