#pragma once
// Upstream TLS policy: the trust store (the system bundle plus --upstream-ca), TLS 1.2 minimum,
// and full verification (chain and host name) done by mitmd itself so that every failure is
// recorded with the certificate it concerned and a reason a user understands.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "flow/flow.h"
#include "net/keylog.h"
#include "proxy/client_certs.h"

namespace mitmd::proxy {

// Filled in during the upstream handshake; owned by the caller of NewSsl for the SSL's lifetime.
struct UpstreamVerification {
  std::string host;       // the name (or IP literal) the certificate must match
  bool insecure = false;  // accept anything, but still describe it
  bool done = false;
  bool ok = false;
  std::optional<CertInfo> cert;
  std::string message;    // why verification failed, e.g. "upstream certificate has expired (...)"
  bool client_cert_requested = false;  // the server sent a CertificateRequest (mutual TLS)
  std::string client_cert_source;      // the file mitmd presented, empty when none
};

class UpstreamTls {
 public:
  // |keylog| (may be null) must outlive the UpstreamTls.
  static Result<std::unique_ptr<UpstreamTls>> Create(const Config& config,
                                                     net::KeyLog* keylog = nullptr);

  // A client-mode SSL: SNI |sni| (none when empty), ALPN offer |alpn|, verification of the
  // presented chain against |verification->host|, and |client_cert| (may be null) for servers
  // that ask for one. |verification| must outlive the SSL.
  bssl::UniquePtr<SSL> NewSsl(const std::string& sni, const std::vector<std::string>& alpn,
                              UpstreamVerification* verification,
                              const ClientCredential* client_cert = nullptr) const;

  X509_STORE* store() const { return SSL_CTX_get_cert_store(ctx_.get()); }

 private:
  explicit UpstreamTls(bssl::UniquePtr<SSL_CTX> ctx) : ctx_(std::move(ctx)) {}
  bssl::UniquePtr<SSL_CTX> ctx_;
};

// Verifies |chain| (leaf first, DER) for |host| against |store| at the current time.
// Sets ok, cert and message of |out|. Sockets not involved, so tests call it directly.
void VerifyServerChain(X509_STORE* store, const STACK_OF(CRYPTO_BUFFER)* chain,
                       UpstreamVerification* out);

}  // namespace mitmd::proxy
