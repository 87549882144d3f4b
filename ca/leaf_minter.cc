#include "ca/leaf_minter.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/digest.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "ca/x509_util.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr time_t kDaySeconds = 86400;

Status AddDnsName(GENERAL_NAMES* sans, const std::string& name) {
  bssl::UniquePtr<GENERAL_NAME> gn(GENERAL_NAME_new());
  bssl::UniquePtr<ASN1_IA5STRING> ia5(ASN1_IA5STRING_new());
  if (!gn || !ia5 || !ASN1_STRING_set(ia5.get(), name.data(), name.size()))
    return Fail("out of memory");
  GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5.release());
  if (!sk_GENERAL_NAME_push(sans, gn.get())) return Fail("out of memory");
  gn.release();
  return {};
}

Status AddIpName(GENERAL_NAMES* sans, const std::string& ip) {
  unsigned char bytes[16];
  int len = 0;
  if (inet_pton(AF_INET, ip.c_str(), bytes) == 1) {
    len = 4;
  } else if (inet_pton(AF_INET6, ip.c_str(), bytes) == 1) {
    len = 16;
  } else {
    return Fail(StrCat("not an IP address: ", ip));
  }
  bssl::UniquePtr<GENERAL_NAME> gn(GENERAL_NAME_new());
  bssl::UniquePtr<ASN1_OCTET_STRING> octets(ASN1_OCTET_STRING_new());
  if (!gn || !octets || !ASN1_OCTET_STRING_set(octets.get(), bytes, len))
    return Fail("out of memory");
  GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, octets.release());
  if (!sk_GENERAL_NAME_push(sans, gn.get())) return Fail("out of memory");
  gn.release();
  return {};
}

Status AddSubject(X509* cert, const LeafNames& names) {
  X509_NAME* subject = X509_get_subject_name(cert);
  static constexpr char kOrganization[] = "mitmd";
  if (!X509_NAME_add_entry_by_NID(subject, NID_organizationName, MBSTRING_UTF8,
                                  reinterpret_cast<const uint8_t*>(kOrganization),
                                  sizeof(kOrganization) - 1, -1, 0)) {
    return Fail("cannot build the leaf subject: " + SslErrors());
  }
  if (!names.common_name.empty() &&
      !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                  reinterpret_cast<const uint8_t*>(names.common_name.data()),
                                  names.common_name.size(), -1, 0)) {
    return Fail("cannot build the leaf subject: " + SslErrors());
  }
  return {};
}

Status AddLeafExtensions(X509* cert, const Root& root, EVP_PKEY* leaf_key, const LeafNames& names) {
  bssl::UniquePtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  if (!bc) return Fail("out of memory");
  bc->ca = 0;
  if (auto st = AddExtension(cert, NID_basic_constraints, bc.get(), false); !st) return st;

  bssl::UniquePtr<ASN1_BIT_STRING> usage(ASN1_BIT_STRING_new());
  if (!usage || !ASN1_BIT_STRING_set_bit(usage.get(), 0, 1))
    return Fail("out of memory");  // digitalSignature
  if (EVP_PKEY_id(leaf_key) == EVP_PKEY_RSA && !ASN1_BIT_STRING_set_bit(usage.get(), 2, 1)) {
    return Fail("out of memory");  // keyEncipherment, for TLS 1.2 RSA key exchange
  }
  if (auto st = AddExtension(cert, NID_key_usage, usage.get(), true); !st) return st;

  bssl::UniquePtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
  if (!eku || !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth)))
    return Fail("out of memory");
  if (auto st = AddExtension(cert, NID_ext_key_usage, eku.get(), false); !st) return st;

  bssl::UniquePtr<GENERAL_NAMES> sans(sk_GENERAL_NAME_new_null());
  if (!sans) return Fail("out of memory");
  for (const auto& name : names.dns) {
    if (auto st = AddDnsName(sans.get(), name); !st) return st;
  }
  for (const auto& ip : names.ips) {
    if (auto st = AddIpName(sans.get(), ip); !st) return st;
  }
  if (auto st = AddExtension(cert, NID_subject_alt_name, sans.get(), false); !st) return st;

  bssl::UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
  bssl::UniquePtr<ASN1_OCTET_STRING> akid_bytes(ASN1_OCTET_STRING_new());
  if (!akid || !akid_bytes ||
      !ASN1_OCTET_STRING_set(akid_bytes.get(), root.key_id.data(), root.key_id.size())) {
    return Fail("out of memory");
  }
  akid->keyid = akid_bytes.release();
  if (auto st = AddExtension(cert, NID_authority_key_identifier, akid.get(), false); !st) return st;

  auto key_id = KeyIdOf(cert);
  if (!key_id) return std::unexpected(key_id.error());
  bssl::UniquePtr<ASN1_OCTET_STRING> skid(ASN1_OCTET_STRING_new());
  if (!skid || !ASN1_OCTET_STRING_set(skid.get(), key_id->data(), key_id->size())) {
    return Fail("out of memory");
  }
  return AddExtension(cert, NID_subject_key_identifier, skid.get(), false);
}

}  // namespace

Result<Leaf> MintLeaf(const Root& root, EVP_PKEY* leaf_key, const LeafNames& names, time_t now) {
  if (names.empty()) return Fail("no host name or IP address to put in the certificate");
  bssl::UniquePtr<X509> cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3) ||
      !X509_set_pubkey(cert.get(), leaf_key) ||
      !X509_set_issuer_name(cert.get(), X509_get_subject_name(root.cert.get()))) {
    return Fail("cannot start the leaf certificate: " + SslErrors());
  }
  if (auto st = SetRandomSerial(cert.get()); !st) return std::unexpected(st.error());
  time_t not_after = std::min(now + kLeafValidityDays * kDaySeconds, root.not_after);
  if (auto st = SetValidity(cert.get(), now - kLeafBackdateDays * kDaySeconds, not_after); !st) {
    return std::unexpected(st.error());
  }
  if (auto st = AddSubject(cert.get(), names); !st) return std::unexpected(st.error());
  if (auto st = AddLeafExtensions(cert.get(), root, leaf_key, names); !st) {
    return std::unexpected(st.error());
  }
  if (!X509_sign(cert.get(), root.key.get(), EVP_sha256())) {
    return Fail("cannot sign the leaf certificate: " + SslErrors());
  }

  auto buffer = CertToBuffer(cert.get());
  if (!buffer) return std::unexpected(buffer.error());
  Leaf leaf;
  leaf.chain.push_back(std::move(*buffer));
  leaf.chain.push_back(bssl::UpRef(root.der));
  leaf.key = bssl::UpRef(leaf_key);
  leaf.dns_names = names.dns;
  leaf.ip_names = names.ips;
  return leaf;
}

}  // namespace mitmd::ca
