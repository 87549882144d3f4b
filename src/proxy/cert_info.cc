#include "proxy/cert_info.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "core/strings.h"

namespace mitmd::proxy {

std::string NameToString(const X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  const uint8_t* data;
  size_t len;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string AsnTimeToIso(const ASN1_TIME* t) {
  bssl::UniquePtr<ASN1_GENERALIZEDTIME> g(ASN1_TIME_to_generalizedtime(t, nullptr));
  if (!g) return "";
  std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g.get())),
                ASN1_STRING_length(g.get()));
  if (s.size() < 14) return s;  // YYYYMMDDHHMMSSZ
  return StrCat(s.substr(0, 4), "-", s.substr(4, 2), "-", s.substr(6, 2), "T", s.substr(8, 2), ":",
                s.substr(10, 2), ":", s.substr(12, 2), "Z");
}

CertInfo DescribeCert(X509* cert) {
  CertInfo info;
  info.subject = NameToString(X509_get_subject_name(cert));
  info.issuer = NameToString(X509_get_issuer_name(cert));
  info.not_before = AsnTimeToIso(X509_get0_notBefore(cert));
  info.not_after = AsnTimeToIso(X509_get0_notAfter(cert));
  uint8_t* der = nullptr;
  int der_len = i2d_X509(cert, &der);
  if (der_len > 0) {
    uint8_t digest[32];
    SHA256(der, static_cast<size_t>(der_len), digest);
    info.sha256 = HexEncode(digest, sizeof(digest));
    OPENSSL_free(der);
  }
  bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
      if (gn->type == GEN_DNS) {
        const ASN1_STRING* s = gn->d.dNSName;
        info.sans.push_back(StrCat("DNS:", std::string_view(
            reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s))));
      } else if (gn->type == GEN_IPADD) {
        const ASN1_STRING* s = gn->d.iPAddress;
        char buf[INET6_ADDRSTRLEN] = "";
        int len = ASN1_STRING_length(s);
        if (len == 4 || len == 16) {
          inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), buf, sizeof(buf));
          info.sans.push_back(StrCat("IP:", buf));
        }
      }
    }
  }
  return info;
}

}  // namespace mitmd::proxy
