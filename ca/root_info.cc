#include "ca/root_info.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/digest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctime>

#include "ca/export.h"
#include "ca/keys.h"
#include "ca/scope.h"
#include "ca/x509_util.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr long kDaySeconds = 86400;

std::string TimeText(const ASN1_TIME* t) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !ASN1_TIME_print(bio.get(), t)) return "?";
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string KeyTypeText(X509* cert) {
  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(cert));
  if (!key) return "unknown";
  switch (EVP_PKEY_id(key.get())) {
    case EVP_PKEY_EC:
      return CheckSigningKey(key.get()) ? "ECDSA P-256"
                                        : StrCat("EC ", EVP_PKEY_bits(key.get()), " bits");
    case EVP_PKEY_RSA:
      return StrCat("RSA ", EVP_PKEY_bits(key.get()));
    default:
      return "unknown";
  }
}

}  // namespace

Result<RootInfo> DescribeRoot(X509* root) {
  auto der = CertToDer(root);
  if (!der) return std::unexpected(der.error());
  auto scope = Scope::Of(root);
  if (!scope) return std::unexpected(scope.error());
  auto not_after = NotAfterOf(root);
  if (!not_after) return std::unexpected(not_after.error());

  RootInfo info;
  info.subject = NameToString(X509_get_subject_name(root));
  info.key_type = KeyTypeText(root);
  info.fingerprint_sha256 = Fingerprint(*der, EVP_sha256());
  info.fingerprint_sha1 = Fingerprint(*der, EVP_sha1());
  info.not_before = TimeText(X509_get0_notBefore(root));
  info.not_after = TimeText(X509_get0_notAfter(root));
  info.days_left = static_cast<long>((*not_after - time(nullptr)) / kDaySeconds);
  info.scope = scope->ToString();
  info.android_name = AndroidFileName(root);
  return info;
}

}  // namespace mitmd::ca
