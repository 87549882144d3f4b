#pragma once
// The benchmark's own upstream PKI, made in memory with BoringSSL: a CA and one leaf it issues
// for localhost, 127.0.0.1 and ::1. Only the CA certificate is written to disk, for mitmd's
// --upstream-ca (and mitmdump's ssl_verify_upstream_trusted_ca).

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>

#include "core/result.h"

namespace mitmd::bench {

struct BenchPki {
  bssl::UniquePtr<X509> ca_cert;
  bssl::UniquePtr<EVP_PKEY> ca_key;
  bssl::UniquePtr<X509> leaf_cert;
  bssl::UniquePtr<EVP_PKEY> leaf_key;
  std::string ca_pem_path;  // the CA certificate as PEM
};

// Makes the CA and the leaf (ECDSA P-256), and writes the CA certificate to |ca_pem_path|.
Result<BenchPki> MakeBenchPki(const std::string& ca_pem_path);

}  // namespace mitmd::bench
