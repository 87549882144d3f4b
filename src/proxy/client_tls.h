#pragma once
// The TLS server side that clients talk to: one SSL_CTX whose callbacks hand the ClientHello
// and the ALPN choice to the layer that owns each SSL, and which lets clients resume sessions.
//
// Resumption: TLS 1.3 session tickets are sent right after the handshake (a client that leaves
// Nagle on waits for the ACK of its Finished; the ticket carries it at once instead of a 40 ms
// delayed ACK), TLS 1.2 clients resume with tickets or session IDs. A session resumes only
// into the same scope (the proxy target the client asked for and its SNI), so a session whose
// certificate was minted for host A never resumes into host B. Ticket keys are random per run,
// rotated, and never leave the process.

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "net/keylog.h"

namespace mitmd::proxy {

class ClientHandshakeHooks {
 public:
  virtual ~ClientHandshakeHooks() = default;
  // BoringSSL's select-certificate callback: return ssl_select_cert_retry to pause the handshake,
  // ssl_select_cert_success once a certificate is set on the SSL, ssl_select_cert_error to fail.
  // Called for resumed handshakes too (the certificate set is then not sent).
  virtual ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) = 0;
  // The protocol to answer from the client's offer: empty for none (no ALPN extension),
  // nullopt to fail the handshake with a no_application_protocol alert.
  virtual std::optional<std::string> ChooseAlpn(const std::vector<std::string>& offered) = 0;
};

// Session-ticket keys: random per process, kept only in memory. The current key seals new
// tickets; after |lifetime| seconds it is replaced and kept one more lifetime to open the
// tickets it sealed, so every ticket stays usable for at least |lifetime| seconds.
class TicketKeyRing {
 public:
  static constexpr size_t kNameSize = 16;
  struct Key {
    std::array<uint8_t, kNameSize> name;
    std::array<uint8_t, 32> aes;   // AES-256-CBC
    std::array<uint8_t, 32> hmac;  // HMAC-SHA256
    double created = 0;
  };

  // |now| is a clock in seconds.
  TicketKeyRing(std::function<double()> now, double lifetime);
  // The key to seal a new ticket with (rotating first when the current one is too old).
  Key ForSealing();
  // The key named |name|, and whether it is the current one; nullopt when it is unknown or
  // too old.
  std::optional<std::pair<Key, bool>> ForOpening(const uint8_t* name);

 private:
  Key Fresh(double now) const;
  void RotateIfDue(double now);  // with mu_ held

  std::function<double()> now_;
  double lifetime_;
  std::mutex mu_;  // workers share the ring; held only to copy a key
  Key current_;
  std::optional<Key> previous_;
};

struct ClientTlsOptions {
  // Seconds; the ticket key ring's clock (a steady clock when empty).
  std::function<double()> now;
  // How long a key seals tickets (and the ticket and session lifetime clients are told).
  double ticket_key_lifetime_s = 3600;
  // TLS 1.2 session-ID cache entries kept in memory.
  size_t session_cache_size = 10000;
};

class ClientTls {
 public:
  // |keylog| (may be null) must outlive the ClientTls.
  static Result<std::unique_ptr<ClientTls>> Create(net::KeyLog* keylog = nullptr,
                                                   ClientTlsOptions options = {});
  ClientTls(const ClientTls&) = delete;
  ClientTls& operator=(const ClientTls&) = delete;

  // A server-mode SSL whose callbacks go to |hooks| (which must outlive it). |scope| is what
  // the client asked the proxy to reach (the CONNECT authority, e.g. "example.com:443"):
  // sessions resume only within the same scope and SNI.
  bssl::UniquePtr<SSL> NewSsl(ClientHandshakeHooks* hooks, std::string_view scope) const;

 private:
  ClientTls(bssl::UniquePtr<SSL_CTX> ctx, const ClientTlsOptions& options);
  static int TicketKeyCallback(SSL* ssl, uint8_t* key_name, uint8_t* iv, EVP_CIPHER_CTX* cipher,
                               HMAC_CTX* hmac, int encrypt);

  bssl::UniquePtr<SSL_CTX> ctx_;
  std::unique_ptr<TicketKeyRing> tickets_;
};

}  // namespace mitmd::proxy
