#pragma once
// What mitmd learns from a ClientHello before answering it: the server name and the offered
// application protocols. A pure function over BoringSSL's parsed ClientHello.

#include <openssl/ssl.h>

#include <string>
#include <vector>

namespace mitmd::proxy {

struct ClientHelloInfo {
  std::string sni;                 // empty when the client sent none
  std::vector<std::string> alpn;   // in the client's order
};

ClientHelloInfo ParseClientHello(const SSL_CLIENT_HELLO* hello);

// ALPN wire format (length-prefixed strings) for SSL_set_alpn_protos.
std::string EncodeAlpn(const std::vector<std::string>& protocols);

}  // namespace mitmd::proxy
