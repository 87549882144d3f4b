#include "proxy/client_certs.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::proxy {

Result<std::shared_ptr<const ClientCredential>> LoadClientCredential(const std::string& path) {
  bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return Fail(StrCat("cannot read client certificate ", path, ": ", std::strerror(errno)));
  }
  auto cred = std::make_shared<ClientCredential>();
  cred->source = path;
  cred->chain.reset(sk_X509_new_null());
  // The file may list key and certificates in any order.
  while (true) {
    char* name = nullptr;
    char* header = nullptr;
    uint8_t* data = nullptr;
    long len = 0;
    if (!PEM_read_bio(bio.get(), &name, &header, &data, &len)) {
      ERR_clear_error();
      break;
    }
    bssl::UniquePtr<char> n(name), h(header);
    bssl::UniquePtr<uint8_t> d(data);
    std::string_view kind(name);
    const uint8_t* p = data;
    if (kind == "CERTIFICATE") {
      X509* x = d2i_X509(nullptr, &p, len);
      if (!x) return Fail(StrCat("client certificate ", path, ": a CERTIFICATE block is corrupt"));
      if (!cred->cert) cred->cert.reset(x);
      else sk_X509_push(cred->chain.get(), x);
    } else if (kind == "PRIVATE KEY" || kind == "EC PRIVATE KEY" || kind == "RSA PRIVATE KEY") {
      EVP_PKEY* key = kind == "PRIVATE KEY" ? d2i_AutoPrivateKey(nullptr, &p, len)
                      : kind == "EC PRIVATE KEY" ? d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, len)
                                                 : d2i_PrivateKey(EVP_PKEY_RSA, nullptr, &p, len);
      if (!key) return Fail(StrCat("client certificate ", path, ": the private key is corrupt"));
      cred->key.reset(key);
    } else if (kind == "ENCRYPTED PRIVATE KEY") {
      return Fail(StrCat("client certificate ", path, ": the private key is encrypted; decrypt it "
                         "first (openssl pkey -in KEY -out plain.pem)"));
    }
  }
  if (!cred->cert) return Fail(StrCat("client certificate ", path, " has no CERTIFICATE block"));
  if (!cred->key) return Fail(StrCat("client certificate ", path, " has no private key (PEM "
                                     "with the certificate and its key, unencrypted)"));
  if (!X509_check_private_key(cred->cert.get(), cred->key.get())) {
    ERR_clear_error();
    return Fail(StrCat("client certificate ", path, ": the key does not belong to the certificate"));
  }
  return std::shared_ptr<const ClientCredential>(std::move(cred));
}

Result<std::unique_ptr<ClientCertStore>> ClientCertStore::Create(const Config& config) {
  std::shared_ptr<const ClientCredential> all;
  if (!config.client_cert.empty()) {
    auto loaded = LoadClientCredential(config.client_cert);
    if (!loaded) return Fail(StrCat("--client-cert: ", loaded.error().message));
    all = *loaded;
  }
  if (!config.client_cert_dir.empty()) {
    struct stat st;
    if (::stat(config.client_cert_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Fail(StrCat("--client-cert-dir: ", config.client_cert_dir, " is not a directory"));
    }
  }
  return std::unique_ptr<ClientCertStore>(new ClientCertStore(all, config.client_cert_dir));
}

std::shared_ptr<const ClientCredential> ClientCertStore::For(std::string_view host,
                                                             std::string* error) const {
  if (!dir_.empty() && !host.empty() && host.find('/') == std::string_view::npos &&
      host.find("..") == std::string_view::npos) {
    std::string path = StrCat(dir_, "/", host, ".pem");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      auto loaded = LoadClientCredential(path);
      if (loaded) return *loaded;
      if (error) *error = loaded.error().message;
    }
  }
  return all_;
}

bool ClientCertStore::Apply(SSL* ssl, const ClientCredential& cred) {
  if (!SSL_use_certificate(ssl, cred.cert.get()) || !SSL_use_PrivateKey(ssl, cred.key.get())) {
    ERR_clear_error();
    return false;
  }
  for (size_t i = 0; i < sk_X509_num(cred.chain.get()); ++i) {
    SSL_add1_chain_cert(ssl, sk_X509_value(cred.chain.get(), i));
  }
  return true;
}

}  // namespace mitmd::proxy
