#include "ca/server_certs.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ca/x509_util.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// 0: no match; otherwise higher is more specific.
int MatchRank(const std::string& domain, std::string_view name) {
  if (domain.empty()) return 1;
  if (domain.starts_with("*.")) {
    std::string_view suffix = std::string_view(domain).substr(1);  // ".example.com"
    if (name.size() <= suffix.size() || !name.ends_with(suffix)) return 0;
    std::string_view label = name.substr(0, name.size() - suffix.size());
    return label.find('.') == std::string_view::npos ? 2 : 0;
  }
  return domain == name ? 3 : 0;
}

}  // namespace

Result<ServerCert> LoadServerCert(std::string_view spec, time_t now) {
  ServerCert out;
  // A DOMAIN never holds '/', so "dir=x/cert.pem" splits and "./a=b.pem" stays a path.
  size_t eq = spec.find('=');
  if (eq != std::string_view::npos && spec.substr(0, eq).find('/') == std::string_view::npos) {
    if (eq == 0) return Fail("give DOMAIN=PATH, *.DOMAIN=PATH or PATH");
    out.domain = Lower(spec.substr(0, eq));
    spec.remove_prefix(eq + 1);
    if (out.domain == "*") out.domain.clear();  // mitmproxy's spelling of "any name"
  }
  out.path = std::string(spec);
  if (out.path.empty()) return Fail("give [DOMAIN=]PATH, a PEM with certificate and key");
  std::ifstream in(out.path, std::ios::binary);
  if (!in) return Fail(StrCat("cannot read ", out.path, ": ", std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  std::string pem = text.str();

  auto leaf = std::make_shared<Leaf>();
  bssl::UniquePtr<X509> first;
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  // PEM_read_bio_X509 skips the key block wherever it is in the file.
  while (bssl::UniquePtr<X509> cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    auto buffer = CertToBuffer(cert.get());
    if (!buffer) return Fail(StrCat(out.path, ": ", buffer.error().message));
    leaf->chain.push_back(std::move(*buffer));
    if (!first) first = std::move(cert);
  }
  ERR_clear_error();
  if (!first) return Fail(StrCat(out.path, " holds no PEM certificate"));
  auto key = ParseKeyPem(pem);
  if (!key) {
    return Fail(StrCat(out.path, ": ", key.error().message,
                       " (the file must hold the certificate and its private key)"));
  }
  leaf->key = std::move(*key);
  if (!X509_check_private_key(first.get(), leaf->key.get())) {
    ERR_clear_error();
    return Fail(StrCat(out.path, ": the private key does not belong to the (first) certificate"));
  }
  if (X509_cmp_time(X509_get0_notAfter(first.get()), &now) <= 0) {
    return Fail(StrCat(out.path, ": the certificate has expired"));
  }
  if (X509_cmp_time(X509_get0_notBefore(first.get()), &now) > 0) {
    return Fail(StrCat(out.path, ": the certificate is not valid yet"));
  }
  out.leaf = std::move(leaf);
  return out;
}

std::shared_ptr<const Leaf> FindServerCert(const std::vector<ServerCert>& certs,
                                           std::string_view name) {
  std::string lower = Lower(name);
  const ServerCert* best = nullptr;
  int best_rank = 0;
  for (const ServerCert& c : certs) {
    int rank = MatchRank(c.domain, lower);
    if (rank > best_rank) best = &c, best_rank = rank;
  }
  return best ? best->leaf : nullptr;
}

}  // namespace mitmd::ca
