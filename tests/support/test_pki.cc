#include "support/test_pki.h"

#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "core/strings.h"

namespace mitmd::testing {
namespace {

constexpr time_t kDay = 24 * 60 * 60;
constexpr size_t kSerialBytes = 16;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what + " failed");
}

bssl::UniquePtr<EVP_PKEY> NewP256Key() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  Check(ec && EC_KEY_generate_key(ec.get()), "EC key generation");
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  Check(key && EVP_PKEY_assign_EC_KEY(key.get(), ec.release()), "EVP_PKEY_assign_EC_KEY");
  return key;
}

bssl::UniquePtr<X509_NAME> MakeName(const std::string& common_name) {
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  Check(name != nullptr, "X509_NAME_new");
  Check(X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                   reinterpret_cast<const uint8_t*>("mitmd tests"), -1, -1, 0),
        "adding O");
  Check(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const uint8_t*>(common_name.c_str()), -1,
                                   -1, 0),
        "adding CN");
  return name;
}

void SetTime(X509* cert, time_t not_before, time_t not_after) {
  bssl::UniquePtr<ASN1_TIME> nb(ASN1_TIME_set(nullptr, not_before));
  bssl::UniquePtr<ASN1_TIME> na(ASN1_TIME_set(nullptr, not_after));
  Check(nb && na && X509_set1_notBefore(cert, nb.get()) && X509_set1_notAfter(cert, na.get()),
        "setting validity");
}

void SetRandomSerial(X509* cert) {
  uint8_t bytes[kSerialBytes];
  RAND_bytes(bytes, sizeof(bytes));
  bytes[0] &= 0x7f;  // a positive INTEGER
  bytes[0] |= 0x01;  // and never shorter than 16 bytes
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  Check(bn && BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)), "setting serial");
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  Check(ext && X509_add_ext(cert, ext.get(), -1), "adding an extension");
}

std::string SanValue(const LeafSpec& spec) {
  std::string out;
  for (const auto& d : spec.dns_names) out += (out.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : spec.ips) out += (out.empty() ? "" : ",") + std::string("IP:") + ip;
  return out;
}

// Everything but extensions and the signature.
bssl::UniquePtr<X509> NewCert(X509_NAME* subject, X509_NAME* issuer, EVP_PKEY* key,
                              time_t not_before, time_t not_after) {
  bssl::UniquePtr<X509> cert(X509_new());
  Check(cert && X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
  SetRandomSerial(cert.get());
  Check(X509_set_subject_name(cert.get(), subject) && X509_set_issuer_name(cert.get(), issuer),
        "setting names");
  SetTime(cert.get(), not_before, not_after);
  Check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");
  return cert;
}

time_t NotBefore(const LeafSpec& spec) {
  return spec.not_before ? spec.not_before : time(nullptr) - kDay;
}
time_t NotAfter(const LeafSpec& spec) {
  return spec.not_after ? spec.not_after : time(nullptr) + 30 * kDay;
}

std::string BioContents(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  Check(BIO_mem_contents(bio, &data, &len), "BIO_mem_contents");
  return std::string(reinterpret_cast<const char*>(data), len);
}

}  // namespace

LeafSpec LeafSpec::Localhost() {
  LeafSpec spec;
  spec.common_name = "localhost";
  spec.dns_names = {"localhost"};
  spec.ips = {"127.0.0.1", "::1"};
  return spec;
}

LeafSpec LeafSpec::ExpiredLocalhost() {
  LeafSpec spec = Localhost();
  spec.not_before = Utc(2019, 1, 1);
  spec.not_after = Utc(2020, 1, 1);
  return spec;
}

LeafSpec LeafSpec::OnlyFor(const std::string& dns_name) {
  LeafSpec spec;
  spec.common_name = dns_name;
  spec.dns_names = {dns_name};
  return spec;
}

time_t Utc(int year, int month, int day) {
  struct tm tm = {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  return timegm(&tm);
}

TestCert::TestCert(bssl::UniquePtr<X509> cert, bssl::UniquePtr<EVP_PKEY> key)
    : cert_(std::move(cert)), key_(std::move(key)) {}

std::string TestCert::CertPem() const {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  Check(bio && PEM_write_bio_X509(bio.get(), cert_.get()), "PEM_write_bio_X509");
  return BioContents(bio.get());
}

std::string TestCert::KeyPem() const {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  Check(bio && PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr,
                                        nullptr),
        "PEM_write_bio_PrivateKey");
  return BioContents(bio.get());
}

CertFiles TestCert::Write(const TempDir& dir, const std::string& name) const {
  CertFiles files{dir.File(name + ".pem"), dir.File(name + "-key.pem")};
  WriteFile(files.cert, CertPem());
  WriteFile(files.key, KeyPem());
  return files;
}

std::string TestCert::Sha256Hex() const {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert_.get(), &der);
  Check(len > 0, "i2d_X509");
  bssl::UniquePtr<uint8_t> owned(der);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  return HexEncode(digest, sizeof(digest));
}

TestCa::TestCa(const std::string& common_name)
    : root_([&] {
        bssl::UniquePtr<EVP_PKEY> key = NewP256Key();
        bssl::UniquePtr<X509_NAME> name = MakeName(common_name);
        time_t now = time(nullptr);
        bssl::UniquePtr<X509> cert =
            NewCert(name.get(), name.get(), key.get(), now - 2 * kDay, now + 365 * kDay);
        AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
        AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
        AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
        Check(X509_sign(cert.get(), key.get(), EVP_sha256()), "signing the CA");
        return TestCert(std::move(cert), std::move(key));
      }()) {}

TestCert TestCa::Issue(const LeafSpec& spec) const {
  bssl::UniquePtr<EVP_PKEY> key = NewP256Key();
  bssl::UniquePtr<X509_NAME> name = MakeName(spec.common_name);
  bssl::UniquePtr<X509> cert = NewCert(name.get(), X509_get_subject_name(root_.cert()), key.get(),
                                       NotBefore(spec), NotAfter(spec));
  AddExtension(cert.get(), root_.cert(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), root_.cert(), NID_key_usage, "critical,digitalSignature");
  AddExtension(cert.get(), root_.cert(), NID_ext_key_usage,
               spec.client_auth ? "serverAuth,clientAuth" : "serverAuth");
  AddExtension(cert.get(), root_.cert(), NID_subject_key_identifier, "hash");
  AddExtension(cert.get(), root_.cert(), NID_authority_key_identifier, "keyid:always");
  std::string san = SanValue(spec);
  if (!san.empty()) AddExtension(cert.get(), root_.cert(), NID_subject_alt_name, san);
  Check(X509_sign(cert.get(), root_.key(), EVP_sha256()), "signing a leaf");
  return TestCert(std::move(cert), std::move(key));
}

TestCert MakeSelfSigned(const LeafSpec& spec) {
  bssl::UniquePtr<EVP_PKEY> key = NewP256Key();
  bssl::UniquePtr<X509_NAME> name = MakeName(spec.common_name);
  bssl::UniquePtr<X509> cert =
      NewCert(name.get(), name.get(), key.get(), NotBefore(spec), NotAfter(spec));
  // No keyUsage: a key usage without keyCertSign would stop verifiers from recognising the
  // certificate as self-issued, and they would report a missing issuer instead.
  AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), cert.get(), NID_ext_key_usage, "serverAuth");
  std::string san = SanValue(spec);
  if (!san.empty()) AddExtension(cert.get(), cert.get(), NID_subject_alt_name, san);
  Check(X509_sign(cert.get(), key.get(), EVP_sha256()), "self-signing a leaf");
  return TestCert(std::move(cert), std::move(key));
}

}  // namespace mitmd::testing
