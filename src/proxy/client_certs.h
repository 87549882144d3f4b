#pragma once
// Client certificates mitmd presents to upstream servers that ask for one (mutual TLS):
// --client-cert FILE for every host, or --client-cert-dir DIR with DIR/<host>.pem per host.
// Each PEM holds the certificate (then any chain) and its unencrypted private key.

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.h"
#include "core/result.h"

namespace mitmd::proxy {

struct ClientCredential {
  bssl::UniquePtr<X509> cert;
  bssl::UniquePtr<STACK_OF(X509)> chain;
  bssl::UniquePtr<EVP_PKEY> key;
  std::string source;  // the file it came from, for messages
};

// Reads a PEM certificate (+ chain) and private key from |path|.
Result<std::shared_ptr<const ClientCredential>> LoadClientCredential(const std::string& path);

class ClientCertStore {
 public:
  // Loads --client-cert now (a broken file is a start-up error); --client-cert-dir is read on
  // demand, so certificates added while mitmd runs are picked up.
  static Result<std::unique_ptr<ClientCertStore>> Create(const Config& config);

  // The credential for |host|, or nullptr when there is none. A broken per-host file is logged
  // by the caller through |error|.
  std::shared_ptr<const ClientCredential> For(std::string_view host, std::string* error) const;

  // Puts |cred| on the client-mode |ssl|; BoringSSL sends it only if the server asks.
  static bool Apply(SSL* ssl, const ClientCredential& cred);

 private:
  ClientCertStore(std::shared_ptr<const ClientCredential> all, std::string dir)
      : all_(std::move(all)), dir_(std::move(dir)) {}

  std::shared_ptr<const ClientCredential> all_;
  std::string dir_;
};

}  // namespace mitmd::proxy
