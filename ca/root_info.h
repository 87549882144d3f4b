#pragma once
// What `mitmd ca info` shows about a root certificate.

#include <openssl/base.h>

#include <string>

#include "core/result.h"

namespace mitmd::ca {

struct RootInfo {
  std::string subject;             // "CN=mitmd root CA 1a2b3c4d,O=mitmd"
  std::string key_type;            // "ECDSA P-256", "RSA 3072"
  std::string fingerprint_sha256;  // "AB:CD:..."
  std::string fingerprint_sha1;
  std::string not_before;  // "Nov 19 19:40:00 2025 GMT"
  std::string not_after;
  long days_left = 0;
  std::string scope;         // Scope::ToString()
  std::string android_name;  // "<subject_hash_old>.0"
};

Result<RootInfo> DescribeRoot(X509* root);

}  // namespace mitmd::ca
