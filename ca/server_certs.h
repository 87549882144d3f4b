#pragma once
// Certificates the user supplies for the client side (--cert [DOMAIN=]PATH, mitmproxy's
// --certs): presented as they are instead of a leaf minted from mitmd's root, e.g. a reverse
// proxy in front of a site whose clients already trust its real certificate. Loaded and checked
// once at start-up; read-only afterwards, so workers share them without locks.

#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ca/authority.h"
#include "core/result.h"

namespace mitmd::ca {

struct ServerCert {
  // "example.com", "*.example.com" (one label under it), or "" for any name.
  std::string domain;
  std::string path;  // the file it came from, for messages
  // The PEM's certificates in file order (the first is the server's) and its key.
  std::shared_ptr<const Leaf> leaf;
};

// Parses "[DOMAIN=]PATH" and loads PATH: one PEM file with the certificate, any chain after it,
// and the unencrypted private key. Fails, naming the file, when it cannot be read, holds no
// certificate or no key, the key is not the certificate's, or the certificate is not valid at
// |now| (expired or not yet valid).
Result<ServerCert> LoadServerCert(std::string_view spec, time_t now);

// The certificate for |name| (the client's SNI, else the host it asked for), or null: an exact
// domain first, then a wildcard, then one given without a domain; among equals, the first given.
std::shared_ptr<const Leaf> FindServerCert(const std::vector<ServerCert>& certs,
                                           std::string_view name);

}  // namespace mitmd::ca
