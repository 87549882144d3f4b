#include "ca/export.h"

#include <openssl/mem.h>
#include <openssl/pkcs8.h>
#include <openssl/x509.h>

#include <cstdio>

#include "ca/x509_util.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr char kFriendlyName[] = "mitmd root CA";
// The certificate bag is left unencrypted: it is public, and OpenSSL 3 and current Windows no
// longer read the legacy RC2 encryption that would otherwise be used.
constexpr int kUnencrypted = -1;

Result<std::string> ToP12(X509* root) {
  bssl::UniquePtr<PKCS12> p12(
      PKCS12_create("", kFriendlyName, nullptr, root, nullptr, 0, kUnencrypted, 0, 0, 0));
  if (!p12) return Fail("cannot build the PKCS#12 file: " + SslErrors());
  uint8_t* der = nullptr;
  int len = i2d_PKCS12(p12.get(), &der);
  if (len <= 0) return Fail("cannot encode the PKCS#12 file: " + SslErrors());
  bssl::UniquePtr<uint8_t> owned(der);
  return std::string(reinterpret_cast<const char*>(der), len);
}

}  // namespace

Result<ExportFormat> ParseExportFormat(std::string_view text) {
  if (text == "pem") return ExportFormat::kPem;
  if (text == "der" || text == "cer") return ExportFormat::kDer;
  if (text == "p12" || text == "pkcs12") return ExportFormat::kP12;
  if (text == "android") return ExportFormat::kAndroid;
  return Fail(StrCat("unknown format '", text, "': use pem, der, p12 or android"));
}

std::string AndroidFileName(X509* root) {
  char name[16];
  snprintf(name, sizeof(name), "%08lx.0",
           X509_NAME_hash_old(X509_get_subject_name(root)) & 0xffffffffUL);
  return name;
}

Result<ExportedRoot> ExportRoot(X509* root, ExportFormat format) {
  ExportedRoot out;
  Result<std::string> content = Fail("unknown format");
  switch (format) {
    case ExportFormat::kPem:
      out.file_name = "mitmd-ca.pem";
      content = CertToPem(root);
      break;
    case ExportFormat::kDer:
      out.file_name = "mitmd-ca.cer";
      out.binary = true;
      content = CertToDer(root);
      break;
    case ExportFormat::kP12:
      out.file_name = "mitmd-ca.p12";
      out.binary = true;
      content = ToP12(root);
      break;
    case ExportFormat::kAndroid:
      out.file_name = AndroidFileName(root);
      content = CertToPem(root);
      break;
  }
  if (!content) return std::unexpected(content.error());
  out.content = std::move(*content);
  return out;
}

}  // namespace mitmd::ca
