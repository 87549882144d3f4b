#include "proxy/client_tls.h"

#include <openssl/bytestring.h>
#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "proxy/client_hello.h"

namespace mitmd::proxy {
namespace {

// The session ID context is set in two steps: NewSsl knows the proxy target, the ClientHello
// callback (which may run several times while the handshake pauses) adds the SNI once. The
// first byte says which step the context is at, so the second is applied exactly once.
constexpr uint8_t kScopeOnly = 1;
constexpr uint8_t kScopeAndSni = 2;
static_assert(SSL_MAX_SID_CTX_LENGTH - 1 <= SHA256_DIGEST_LENGTH);

using SidCtx = std::array<uint8_t, SSL_MAX_SID_CTX_LENGTH>;

SidCtx MakeSidCtx(uint8_t step, std::string_view a, std::string_view b = {}) {
  SHA256_CTX sha;
  SHA256_Init(&sha);
  SHA256_Update(&sha, a.data(), a.size());
  SHA256_Update(&sha, "\0", 1);
  SHA256_Update(&sha, b.data(), b.size());
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &sha);
  SidCtx out;
  out[0] = step;
  std::copy_n(digest, out.size() - 1, out.begin() + 1);
  return out;
}

ClientHandshakeHooks* HooksOf(const SSL* ssl) {
  return static_cast<ClientHandshakeHooks*>(SSL_get_app_data(ssl));
}

// Narrows the session context to the SNI before BoringSSL looks for a session to resume.
bool ScopeToSni(const SSL_CLIENT_HELLO* hello) {
  size_t len = 0;
  const uint8_t* current = SSL_get0_session_id_context(hello->ssl, &len);
  if (current == nullptr || len != SSL_MAX_SID_CTX_LENGTH || current[0] != kScopeOnly) return true;
  std::string scope(reinterpret_cast<const char*>(current), len);
  SidCtx ctx = MakeSidCtx(kScopeAndSni, scope, ParseClientHello(hello).sni);
  return SSL_set_session_id_context(hello->ssl, ctx.data(), ctx.size()) == 1;
}

ssl_select_cert_result_t SelectCertificate(const SSL_CLIENT_HELLO* hello) {
  if (!ScopeToSni(hello)) return ssl_select_cert_error;
  ClientHandshakeHooks* hooks = HooksOf(hello->ssl);
  return hooks ? hooks->OnClientHello(hello) : ssl_select_cert_error;  // null: session gone
}

int SelectAlpn(SSL* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
               unsigned in_len, void*) {
  std::vector<std::string> offered;
  CBS list;
  CBS_init(&list, in, in_len);
  while (CBS_len(&list) > 0) {
    CBS proto;
    if (!CBS_get_u8_length_prefixed(&list, &proto)) return SSL_TLSEXT_ERR_NOACK;
    offered.emplace_back(reinterpret_cast<const char*>(CBS_data(&proto)), CBS_len(&proto));
  }
  ClientHandshakeHooks* hooks = HooksOf(ssl);
  if (hooks == nullptr) return SSL_TLSEXT_ERR_NOACK;
  std::optional<std::string> answer = hooks->ChooseAlpn(offered);
  if (!answer) return SSL_TLSEXT_ERR_ALERT_FATAL;  // BoringSSL sends no_application_protocol
  const std::string& chosen = *answer;
  if (chosen.empty()) return SSL_TLSEXT_ERR_NOACK;
  // |out| must point into |in|, which outlives the callback.
  CBS_init(&list, in, in_len);
  while (CBS_len(&list) > 0) {
    CBS proto;
    CBS_get_u8_length_prefixed(&list, &proto);
    if (CBS_len(&proto) == chosen.size() &&
        std::equal(chosen.begin(), chosen.end(), CBS_data(&proto))) {
      *out = CBS_data(&proto);
      *out_len = static_cast<uint8_t>(CBS_len(&proto));
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// Where the SSL_CTX keeps its ClientTls (index 0, the app data, is the key log's).
int ClientTlsIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TicketKeyRing::TicketKeyRing(std::function<double()> now, double lifetime)
    : now_(std::move(now)), lifetime_(lifetime), current_(Fresh(now_())) {}

TicketKeyRing::Key TicketKeyRing::Fresh(double now) const {
  Key k;
  RAND_bytes(k.name.data(), k.name.size());
  RAND_bytes(k.aes.data(), k.aes.size());
  RAND_bytes(k.hmac.data(), k.hmac.size());
  k.created = now;
  return k;
}

void TicketKeyRing::RotateIfDue(double now) {
  if (now - current_.created < lifetime_) return;
  // After a long quiet spell the current key may be older than two lifetimes: nothing it
  // sealed may open any more.
  if (now - current_.created < 2 * lifetime_) {
    previous_ = current_;
  } else {
    previous_.reset();
  }
  current_ = Fresh(now);
}

TicketKeyRing::Key TicketKeyRing::ForSealing() {
  double now = now_();
  std::lock_guard lock(mu_);
  RotateIfDue(now);
  return current_;
}

std::optional<std::pair<TicketKeyRing::Key, bool>> TicketKeyRing::ForOpening(
    const uint8_t* name) {
  double now = now_();
  std::lock_guard lock(mu_);
  RotateIfDue(now);
  if (std::equal(current_.name.begin(), current_.name.end(), name)) {
    return std::pair(current_, true);
  }
  if (previous_ && now - previous_->created < 2 * lifetime_ &&
      std::equal(previous_->name.begin(), previous_->name.end(), name)) {
    return std::pair(*previous_, false);
  }
  return std::nullopt;
}

ClientTls::ClientTls(bssl::UniquePtr<SSL_CTX> ctx, const ClientTlsOptions& options)
    : ctx_(std::move(ctx)),
      tickets_(std::make_unique<TicketKeyRing>(options.now ? options.now : SteadySeconds,
                                               options.ticket_key_lifetime_s)) {}

int ClientTls::TicketKeyCallback(SSL* ssl, uint8_t* key_name, uint8_t* iv,
                                 EVP_CIPHER_CTX* cipher, HMAC_CTX* hmac, int encrypt) {
  auto* self = static_cast<ClientTls*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ClientTlsIndex()));
  if (self == nullptr) return encrypt ? -1 : 0;
  const EVP_CIPHER* aes = EVP_aes_256_cbc();
  if (encrypt) {
    TicketKeyRing::Key key = self->tickets_->ForSealing();
    std::copy(key.name.begin(), key.name.end(), key_name);
    if (RAND_bytes(iv, EVP_CIPHER_iv_length(aes)) != 1 ||
        !EVP_EncryptInit_ex(cipher, aes, nullptr, key.aes.data(), iv) ||
        !HMAC_Init_ex(hmac, key.hmac.data(), key.hmac.size(), EVP_sha256(), nullptr)) {
      return -1;
    }
    return 1;
  }
  auto found = self->tickets_->ForOpening(key_name);
  if (!found) return 0;  // unknown or expired: a full handshake
  const TicketKeyRing::Key& key = found->first;
  if (!HMAC_Init_ex(hmac, key.hmac.data(), key.hmac.size(), EVP_sha256(), nullptr) ||
      !EVP_DecryptInit_ex(cipher, aes, nullptr, key.aes.data(), iv)) {
    return -1;
  }
  return found->second ? 1 : 2;  // 2: sealed with the previous key, issue a fresh ticket
}

Result<std::unique_ptr<ClientTls>> ClientTls::Create(net::KeyLog* keylog,
                                                     ClientTlsOptions options) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return Fail("cannot create the client-facing TLS context");
  SSL_CTX* raw = ctx.get();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(raw, TLS1_3_VERSION);
  SSL_CTX_set_select_certificate_cb(raw, SelectCertificate);
  SSL_CTX_set_alpn_select_cb(raw, SelectAlpn, nullptr);
  // The select-certificate callback runs for resumed handshakes as well, so the upstream side
  // is still driven by every ClientHello; resumption only spares the client the certificate.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(raw, options.session_cache_size);
  auto lifetime = static_cast<uint32_t>(options.ticket_key_lifetime_s);
  SSL_CTX_set_timeout(raw, lifetime);
  SSL_CTX_set_session_psk_dhe_timeout(raw, lifetime);
  SSL_CTX_set_tlsext_ticket_key_cb(raw, TicketKeyCallback);
  if (keylog) net::KeyLog::Attach(raw, keylog);
  std::unique_ptr<ClientTls> tls(new ClientTls(std::move(ctx), options));
  SSL_CTX_set_ex_data(raw, ClientTlsIndex(), tls.get());
  return tls;
}

bssl::UniquePtr<SSL> ClientTls::NewSsl(ClientHandshakeHooks* hooks, std::string_view scope) const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (!ssl) return nullptr;
  SSL_set_accept_state(ssl.get());
  SSL_set_app_data(ssl.get(), hooks);
  SidCtx sid = MakeSidCtx(kScopeOnly, scope);
  if (!SSL_set_session_id_context(ssl.get(), sid.data(), sid.size())) return nullptr;
  return ssl;
}

}  // namespace mitmd::proxy
