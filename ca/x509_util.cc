#include "ca/x509_util.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr size_t kSerialBytes = 16;

std::string BioContents(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

// Never prompt: a key that needs a password is an error the caller reports.
int NoPassword(char*, int, int, void*) { return 0; }

bool LooksEncrypted(std::string_view pem) {
  return pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
         pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
}

}  // namespace

std::string SslErrors() {
  std::string out;
  while (uint32_t err = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status SetRandomSerial(X509* cert) {
  uint8_t bytes[kSerialBytes];
  bssl::UniquePtr<BIGNUM> bn;
  do {
    RAND_bytes(bytes, sizeof(bytes));
    bytes[0] &= 0x7f;  // DER INTEGERs are signed; serials must be positive
    bn.reset(BN_bin2bn(bytes, sizeof(bytes), nullptr));
    if (!bn) return Fail("cannot allocate a serial number");
  } while (BN_is_zero(bn.get()));
  bssl::UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial || !X509_set_serialNumber(cert, serial.get())) {
    return Fail("cannot set the serial number: " + SslErrors());
  }
  return {};
}

Status AddExtension(X509* cert, int nid, void* value, bool critical) {
  if (!X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_REPLACE)) {
    return Fail(StrCat("cannot add extension ", OBJ_nid2sn(nid), ": ", SslErrors()));
  }
  return {};
}

Result<std::vector<uint8_t>> KeyIdOf(const X509* cert) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!X509_pubkey_digest(cert, EVP_sha1(), md, &len)) {
    return Fail("cannot hash the public key: " + SslErrors());
  }
  return std::vector<uint8_t>(md, md + len);
}

Result<std::vector<uint8_t>> SubjectKeyIdOf(X509* cert) {
  if (const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(cert)) {
    const uint8_t* data = ASN1_STRING_get0_data(skid);
    return std::vector<uint8_t>(data, data + ASN1_STRING_length(skid));
  }
  return KeyIdOf(cert);
}

Status SetValidity(X509* cert, time_t from, time_t to) {
  bssl::UniquePtr<ASN1_TIME> not_before(ASN1_TIME_set(nullptr, from));
  bssl::UniquePtr<ASN1_TIME> not_after(ASN1_TIME_set(nullptr, to));
  if (!not_before || !not_after || !X509_set1_notBefore(cert, not_before.get()) ||
      !X509_set1_notAfter(cert, not_after.get())) {
    return Fail("cannot set the validity period: " + SslErrors());
  }
  return {};
}

Result<time_t> NotAfterOf(const X509* cert) {
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  // ASN1_TIME_diff from the epoch avoids time zone conversions of mktime().
  bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0, secs = 0;
  if (!not_after || !epoch || !ASN1_TIME_diff(&days, &secs, epoch.get(), not_after)) {
    return Fail("cannot read the certificate's notAfter");
  }
  return static_cast<time_t>(days) * 86400 + secs;
}

Result<std::string> CertToDer(X509* cert) {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return Fail("cannot encode the certificate: " + SslErrors());
  bssl::UniquePtr<uint8_t> owned(der);
  return std::string(reinterpret_cast<const char*>(der), len);
}

Result<std::string> CertToPem(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) {
    return Fail("cannot encode the certificate as PEM: " + SslErrors());
  }
  return BioContents(bio.get());
}

Result<bssl::UniquePtr<CRYPTO_BUFFER>> CertToBuffer(X509* cert) {
  auto der = CertToDer(cert);
  if (!der) return std::unexpected(der.error());
  bssl::UniquePtr<CRYPTO_BUFFER> buf(
      CRYPTO_BUFFER_new(reinterpret_cast<const uint8_t*>(der->data()), der->size(), nullptr));
  if (!buf) return Fail("out of memory");
  return buf;
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      !PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return Fail("cannot encode the private key: " + SslErrors());
  }
  return BioContents(bio.get());
}

Result<bssl::UniquePtr<X509>> ParseCertPem(std::string_view pem) {
  ERR_clear_error();
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
  if (!cert) {
    std::string why = SslErrors();
    return Fail(why.empty() ? "no PEM certificate found"
                            : "not a valid PEM certificate (" + why + ")");
  }
  return cert;
}

Result<bssl::UniquePtr<EVP_PKEY>> ParseKeyPem(std::string_view pem) {
  if (LooksEncrypted(pem)) {
    return Fail(
        "the private key is encrypted; decrypt it first, e.g. `openssl pkey -in KEY -out "
        "KEY.dec` (then chmod 600 KEY.dec)");
  }
  ERR_clear_error();
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (!key) {
    std::string why = SslErrors();
    return Fail(why.empty() ? "no PEM private key found"
                            : "not a valid PEM private key (" + why + ")");
  }
  return key;
}

std::string Fingerprint(std::string_view der, const EVP_MD* md) {
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(der.data(), der.size(), digest, &len, md, nullptr);
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(len * 3);
  for (unsigned i = 0; i < len; ++i) {
    if (i) out.push_back(':');
    out.push_back(kDigits[digest[i] >> 4]);
    out.push_back(kDigits[digest[i] & 0xf]);
  }
  return out;
}

std::string NameToString(X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  return BioContents(bio.get());
}

}  // namespace mitmd::ca
