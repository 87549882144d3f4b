#pragma once
// What mitmd learns from a ClientHello before answering it: the server name and the offered
// application protocols. Pure functions: over BoringSSL's parsed ClientHello, or over raw bytes.

#include <openssl/ssl.h>

#include <string>
#include <string_view>
#include <vector>

namespace mitmd::proxy {

struct ClientHelloInfo {
  std::string sni;                 // empty when the client sent none
  std::vector<std::string> alpn;   // in the client's order
};

ClientHelloInfo ParseClientHello(const SSL_CLIENT_HELLO* hello);

// The ClientHello read from raw bytes that are left unconsumed, so that the connection can still
// be tunnelled untouched (decided by SNI) or handed to the TLS library.
struct PeekedHello {
  enum class Status {
    kNeedMore,        // the bytes end before the ClientHello does
    kComplete,        // |info| holds what it offers
    kNotClientHello,  // not a TLS handshake starting with a well-formed ClientHello
  };
  Status status;
  ClientHelloInfo info;
};
// |bytes| from the first byte of the connection. The ClientHello may span several records.
PeekedHello PeekClientHello(std::string_view bytes);

// ALPN wire format (length-prefixed strings) for SSL_set_alpn_protos.
std::string EncodeAlpn(const std::vector<std::string>& protocols);

}  // namespace mitmd::proxy
