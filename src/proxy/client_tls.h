#pragma once
// The TLS server side that clients talk to: one SSL_CTX whose callbacks hand the ClientHello
// and the ALPN choice to the Session that owns each SSL.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "net/keylog.h"

namespace mitmd::proxy {

class ClientHandshakeHooks {
 public:
  virtual ~ClientHandshakeHooks() = default;
  // BoringSSL's select-certificate callback: return ssl_select_cert_retry to pause the handshake,
  // ssl_select_cert_success once a certificate is set on the SSL, ssl_select_cert_error to fail.
  virtual ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) = 0;
  // The protocol to answer from the client's offer, or empty for none.
  virtual std::string ChooseAlpn(const std::vector<std::string>& offered) = 0;
};

class ClientTls {
 public:
  // |keylog| (may be null) must outlive the ClientTls.
  static Result<std::unique_ptr<ClientTls>> Create(net::KeyLog* keylog = nullptr);
  // A server-mode SSL whose callbacks go to |hooks| (which must outlive it).
  bssl::UniquePtr<SSL> NewSsl(ClientHandshakeHooks* hooks) const;

 private:
  explicit ClientTls(bssl::UniquePtr<SSL_CTX> ctx) : ctx_(std::move(ctx)) {}
  bssl::UniquePtr<SSL_CTX> ctx_;
};

}  // namespace mitmd::proxy
