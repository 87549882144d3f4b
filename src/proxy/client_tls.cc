#include "proxy/client_tls.h"

#include <openssl/bytestring.h>

namespace mitmd::proxy {
namespace {

ClientHandshakeHooks* HooksOf(const SSL* ssl) {
  return static_cast<ClientHandshakeHooks*>(SSL_get_app_data(ssl));
}

ssl_select_cert_result_t SelectCertificate(const SSL_CLIENT_HELLO* hello) {
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
  std::string chosen = hooks->ChooseAlpn(offered);
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

}  // namespace

Result<std::unique_ptr<ClientTls>> ClientTls::Create(net::KeyLog* keylog) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return Fail("cannot create the client-facing TLS context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_select_certificate_cb(ctx.get(), SelectCertificate);
  SSL_CTX_set_alpn_select_cb(ctx.get(), SelectAlpn, nullptr);
  // Each intercepted connection is a fresh handshake: session resumption would skip the
  // select-certificate callback that drives the upstream connection.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  if (keylog) net::KeyLog::Attach(ctx.get(), keylog);
  return std::unique_ptr<ClientTls>(new ClientTls(std::move(ctx)));
}

bssl::UniquePtr<SSL> ClientTls::NewSsl(ClientHandshakeHooks* hooks) const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (!ssl) return nullptr;
  SSL_set_accept_state(ssl.get());
  SSL_set_app_data(ssl.get(), hooks);
  return ssl;
}

}  // namespace mitmd::proxy
