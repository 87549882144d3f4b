#include "ca/root_cert.h"

#include <openssl/asn1.h>
#include <openssl/digest.h>
#include <openssl/nid.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/x509_util.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr int kInstallIdBytes = 4;
constexpr time_t kBackdateSeconds = 2 * 86400;
constexpr time_t kDaySeconds = 86400;

Status AddNameEntry(X509_NAME* name, int nid, const std::string& value) {
  if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                  reinterpret_cast<const uint8_t*>(value.data()), value.size(), -1,
                                  0)) {
    return Fail("cannot build the subject name: " + SslErrors());
  }
  return {};
}

}  // namespace

std::string NewInstallId() {
  uint8_t bytes[kInstallIdBytes];
  RAND_bytes(bytes, sizeof(bytes));
  return HexEncode(bytes, sizeof(bytes));
}

Result<bssl::UniquePtr<X509>> MintRoot(EVP_PKEY* key, const RootSpec& spec, time_t now) {
  bssl::UniquePtr<X509> cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3) || !X509_set_pubkey(cert.get(), key)) {
    return Fail("cannot start the root certificate: " + SslErrors());
  }
  if (auto st = SetRandomSerial(cert.get()); !st) return std::unexpected(st.error());
  if (auto st =
          SetValidity(cert.get(), now - kBackdateSeconds, now + kRootValidityDays * kDaySeconds);
      !st) {
    return std::unexpected(st.error());
  }

  X509_NAME* name = X509_get_subject_name(cert.get());
  if (auto st = AddNameEntry(name, NID_organizationName, "mitmd"); !st)
    return std::unexpected(st.error());
  if (auto st = AddNameEntry(name, NID_commonName, "mitmd root CA " + spec.install_id); !st) {
    return std::unexpected(st.error());
  }
  if (!X509_set_issuer_name(cert.get(), name)) return Fail("cannot set the issuer: " + SslErrors());

  bssl::UniquePtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  bssl::UniquePtr<ASN1_INTEGER> pathlen(ASN1_INTEGER_new());
  if (!bc || !pathlen || !ASN1_INTEGER_set(pathlen.get(), 0)) return Fail("out of memory");
  bc->ca = 0xff;
  bc->pathlen = pathlen.release();
  if (auto st = AddExtension(cert.get(), NID_basic_constraints, bc.get(), true); !st) {
    return std::unexpected(st.error());
  }

  bssl::UniquePtr<ASN1_BIT_STRING> usage(ASN1_BIT_STRING_new());
  if (!usage || !ASN1_BIT_STRING_set_bit(usage.get(), 5, 1) ||  // keyCertSign
      !ASN1_BIT_STRING_set_bit(usage.get(), 6, 1)) {            // cRLSign
    return Fail("out of memory");
  }
  if (auto st = AddExtension(cert.get(), NID_key_usage, usage.get(), true); !st) {
    return std::unexpected(st.error());
  }

  auto key_id = KeyIdOf(cert.get());
  if (!key_id) return std::unexpected(key_id.error());
  bssl::UniquePtr<ASN1_OCTET_STRING> skid(ASN1_OCTET_STRING_new());
  if (!skid || !ASN1_OCTET_STRING_set(skid.get(), key_id->data(), key_id->size())) {
    return Fail("out of memory");
  }
  if (auto st = AddExtension(cert.get(), NID_subject_key_identifier, skid.get(), false); !st) {
    return std::unexpected(st.error());
  }

  if (spec.name_constraints != nullptr) {
    if (auto st = AddExtension(cert.get(), NID_name_constraints, spec.name_constraints, true);
        !st) {
      return std::unexpected(st.error());
    }
  }

  if (!X509_sign(cert.get(), key, EVP_sha256())) {
    return Fail("cannot sign the root certificate: " + SslErrors());
  }
  return cert;
}

}  // namespace mitmd::ca
