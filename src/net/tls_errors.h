#pragma once

#include <openssl/ssl.h>

#include <string>

namespace mitmd::net {

// Why a TLS call on |ssl| that returned |ret| failed, in words: "the peer sent the TLS alert
// 'bad certificate'", "no shared TLS version (the peer wants TLSv1 or older)", ...
// Reads and clears the thread's BoringSSL error queue.
std::string TlsErrorString(const SSL* ssl, int ret);

// "TLSv1.3" etc. for the negotiated version.
std::string TlsVersionName(const SSL* ssl);

}  // namespace mitmd::net
