#pragma once
// Small X.509 building blocks shared by the root and leaf code: serials, extensions, key ids,
// encodings, fingerprints. Every function either succeeds or reports BoringSSL's reason.

#include <openssl/base.h>
#include <openssl/pool.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mitmd::ca {

// BoringSSL's queued error reasons, joined with "; " (the queue is cleared). "" when empty.
std::string SslErrors();

// A random positive 128-bit serial number.
Status SetRandomSerial(X509* cert);

// Appends extension |nid| built from |value| (the extension's C struct), marked critical or not.
Status AddExtension(X509* cert, int nid, void* value, bool critical);

// RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey bits of |cert|.
Result<std::vector<uint8_t>> KeyIdOf(const X509* cert);

// The subject key identifier of |cert|, computed when the extension is absent.
Result<std::vector<uint8_t>> SubjectKeyIdOf(X509* cert);

// Sets notBefore = |from| and notAfter = |to|.
Status SetValidity(X509* cert, time_t from, time_t to);

// The certificate's notAfter as seconds since the epoch.
Result<time_t> NotAfterOf(const X509* cert);

// Encodings.
Result<std::string> CertToDer(X509* cert);
Result<std::string> CertToPem(X509* cert);
Result<bssl::UniquePtr<CRYPTO_BUFFER>> CertToBuffer(X509* cert);
// Unencrypted PKCS#8 PEM.
Result<std::string> KeyToPem(EVP_PKEY* key);

// The first certificate in |pem|.
Result<bssl::UniquePtr<X509>> ParseCertPem(std::string_view pem);
// The private key in |pem| (PKCS#8, PKCS#1 RSA or SEC1 EC). Encrypted keys fail with a message
// saying to decrypt them first; nothing ever prompts for a password.
Result<bssl::UniquePtr<EVP_PKEY>> ParseKeyPem(std::string_view pem);

// |md| digest of |der| as colon-separated upper-case hex ("AB:CD:...").
std::string Fingerprint(std::string_view der, const EVP_MD* md);

// A one-line, RFC 2253-ish rendering of |name| ("CN=..., O=...").
std::string NameToString(X509_NAME* name);

}  // namespace mitmd::ca
