#pragma once
// The certificate authority: the root users trust, and the leaves minted from it per host.
// A library with no sockets. Thread-safe: LeafFor() is called from every worker thread.

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/pool.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace mitmd::ca {

// What a leaf must name. Built by the proxy from the ClientHello and the upstream certificate.
struct LeafSpec {
  std::string sni;                      // server name the client sent (may be empty)
  std::string host;                     // CONNECT host (a name or an IP literal)
  std::string upstream_cn;              // upstream certificate's subject CN (may be empty)
  std::vector<std::string> upstream_dns;  // upstream DNS SANs
  std::vector<std::string> upstream_ips;  // upstream IP SANs, textual
};

// A minted leaf. Hand |chain| (leaf first, then the root) and |key| to SSL_set_chain_and_key.
struct Leaf {
  std::vector<bssl::UniquePtr<CRYPTO_BUFFER>> chain;
  bssl::UniquePtr<EVP_PKEY> key;  // the run's shared leaf key (up-ref'd)
  std::vector<std::string> dns_names;  // as put in the certificate
  std::vector<std::string> ip_names;
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  size_t size = 0;
};

class Authority {
 public:
  // Loads <confdir>/mitmd-ca.pem and <confdir>/mitmd-ca-key.pem, creating the directory (0700)
  // and a new ECDSA P-256 root (key 0600) when they do not exist. Fails with an actionable
  // message when the files are unreadable, malformed, or do not belong together.
  static Result<std::unique_ptr<Authority>> LoadOrCreate(const std::string& confdir);
  ~Authority();

  // The leaf for |spec|, from the cache or freshly minted. Names: upstream CN and SANs, plus the
  // SNI, plus the host; IP literals become IP SANs; de-duplicated.
  Result<std::shared_ptr<const Leaf>> LeafFor(const LeafSpec& spec);

  std::string root_cert_path() const;
  std::string root_key_path() const;
  // SHA-256 of the root's DER, as colon-separated upper-case hex (the form browsers show).
  std::string root_fingerprint_sha256() const;
  // The root certificate in PEM.
  std::string root_pem() const;
  // Borrowed; valid for the Authority's lifetime.
  X509* root() const;
  CacheStats cache_stats() const;

  struct Impl;

 private:
  explicit Authority(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mitmd::ca
