// Fuzzes the ClientHello peek (the bytes a client sends first through a CONNECT tunnel, read
// before the proxy decides to intercept or tunnel), then feeds the same bytes to a BoringSSL
// server handshake whose early callback runs ParseClientHello, as the proxy does. Aborts when a
// complete peek reports an empty ALPN protocol (the wire format cannot carry one).

#include <openssl/ssl.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "proxy/client_hello.h"

namespace {

enum ssl_select_cert_result_t OnHello(const SSL_CLIENT_HELLO* hello) {
  mitmd::proxy::ClientHelloInfo info = mitmd::proxy::ParseClientHello(hello);
  for (const auto& p : info.alpn) {
    if (p.empty()) {
      std::fprintf(stderr, "client_hello_fuzz: an empty ALPN protocol reported\n");
      std::abort();
    }
  }
  // Stop here: the fuzzer has no certificate to answer with, and the proxy pauses here too.
  return ssl_select_cert_error;
}

SSL_CTX* ServerContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  SSL_CTX_set_select_certificate_cb(ctx, OnHello);
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  mitmd::proxy::PeekedHello peeked = mitmd::proxy::PeekClientHello(bytes);
  if (peeked.status == mitmd::proxy::PeekedHello::Status::kComplete) {
    for (const auto& p : peeked.info.alpn) {
      if (p.empty()) {
        std::fprintf(stderr, "client_hello_fuzz: the peek reported an empty ALPN protocol\n");
        std::abort();
      }
    }
  }
  static SSL_CTX* ctx = ServerContext();
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx));
  BIO* in = BIO_new_mem_buf(data, static_cast<int>(size));
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);
  SSL_set_accept_state(ssl.get());
  (void)SSL_do_handshake(ssl.get());
  return 0;
}
