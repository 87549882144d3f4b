#pragma once
// The root certificate in the formats users need to trust it. Never includes the private key.

#include <openssl/base.h>

#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::ca {

enum class ExportFormat {
  kPem,      // text; most tools, Firefox, curl --cacert
  kDer,      // binary .cer; Windows, macOS, iOS
  kP12,      // PKCS#12 with the certificate only and an empty password; Windows import wizards
  kAndroid,  // PEM named <subject_hash_old>.0, the name Android's system store expects
};

// "pem", "der" (also "cer"), "p12" (also "pkcs12"), "android".
Result<ExportFormat> ParseExportFormat(std::string_view text);

struct ExportedRoot {
  std::string file_name;  // the conventional name for this format
  std::string content;
  bool binary = false;
};

Result<ExportedRoot> ExportRoot(X509* root, ExportFormat format);

// "<subject_hash_old as 8 hex digits>.0", as `openssl x509 -subject_hash_old` prints it.
std::string AndroidFileName(X509* root);

}  // namespace mitmd::ca
