#include "bench_pki.h"

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>

namespace mitmd::bench {
namespace {

constexpr time_t kDay = 24 * 60 * 60;
constexpr int kValidityDays = 30;
constexpr size_t kSerialBytes = 16;

bssl::UniquePtr<EVP_PKEY> NewP256Key() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (!ec || !EC_KEY_generate_key(ec.get())) return nullptr;
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!key || !EVP_PKEY_assign_EC_KEY(key.get(), ec.release())) return nullptr;
  return key;
}

bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1);
}

// A version 3 certificate with a random serial, valid from a day ago, not yet signed.
bssl::UniquePtr<X509> NewCert(const char* common_name, X509_NAME* issuer, EVP_PKEY* key) {
  bssl::UniquePtr<X509> cert(X509_new());
  bssl::UniquePtr<X509_NAME> subject(X509_NAME_new());
  if (!cert || !subject) return nullptr;
  uint8_t serial[kSerialBytes];
  RAND_bytes(serial, sizeof(serial));
  serial[0] = (serial[0] & 0x7f) | 0x01;
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  time_t now = time(nullptr);
  bssl::UniquePtr<ASN1_TIME> not_before(ASN1_TIME_set(nullptr, now - kDay));
  bssl::UniquePtr<ASN1_TIME> not_after(ASN1_TIME_set(nullptr, now + kValidityDays * kDay));
  bool ok = bn && not_before && not_after && X509_set_version(cert.get(), X509_VERSION_3) &&
            BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) &&
            X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const uint8_t*>(common_name), -1, -1,
                                       0) &&
            X509_set_subject_name(cert.get(), subject.get()) &&
            X509_set_issuer_name(cert.get(), issuer ? issuer : subject.get()) &&
            X509_set1_notBefore(cert.get(), not_before.get()) &&
            X509_set1_notAfter(cert.get(), not_after.get()) && X509_set_pubkey(cert.get(), key);
  return ok ? std::move(cert) : nullptr;
}

Status WritePem(X509* cert, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Fail("cannot write " + path);
  bool ok = PEM_write_X509(f, cert);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Fail("cannot write " + path);
  return {};
}

}  // namespace

Result<BenchPki> MakeBenchPki(const std::string& ca_pem_path) {
  BenchPki pki;
  pki.ca_key = NewP256Key();
  pki.leaf_key = NewP256Key();
  if (!pki.ca_key || !pki.leaf_key) return Fail("generating the benchmark's P-256 keys failed");

  pki.ca_cert = NewCert("mitmd bench upstream CA", nullptr, pki.ca_key.get());
  X509* ca = pki.ca_cert.get();
  if (!ca || !AddExtension(ca, ca, NID_basic_constraints, "critical,CA:TRUE") ||
      !AddExtension(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(ca, ca, NID_subject_key_identifier, "hash") ||
      !X509_sign(ca, pki.ca_key.get(), EVP_sha256())) {
    return Fail("making the benchmark's upstream CA failed");
  }

  pki.leaf_cert = NewCert("localhost", X509_get_subject_name(ca), pki.leaf_key.get());
  X509* leaf = pki.leaf_cert.get();
  if (!leaf || !AddExtension(leaf, ca, NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(leaf, ca, NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(leaf, ca, NID_ext_key_usage, "serverAuth") ||
      !AddExtension(leaf, ca, NID_authority_key_identifier, "keyid:always") ||
      !AddExtension(leaf, ca, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") ||
      !X509_sign(leaf, pki.ca_key.get(), EVP_sha256())) {
    return Fail("making the benchmark's upstream leaf failed");
  }

  if (auto st = WritePem(ca, ca_pem_path); !st) return std::unexpected(st.error());
  pki.ca_pem_path = ca_pem_path;
  return pki;
}

}  // namespace mitmd::bench
