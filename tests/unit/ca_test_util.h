#pragma once
// Helpers for the ca_* tests: parse minted certificates, verify them with BoringSSL, and run
// Debian's openssl CLI as an independent checker.

#include <openssl/bytestring.h>
#include <openssl/pool.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "ca/authority.h"
#include "ca/x509_util.h"

namespace mitmd::ca::testing {

inline bssl::UniquePtr<X509> ParseBuffer(const CRYPTO_BUFFER* buf) {
  const uint8_t* der = CRYPTO_BUFFER_data(buf);
  return bssl::UniquePtr<X509>(d2i_X509(nullptr, &der, CRYPTO_BUFFER_len(buf)));
}

inline std::string ToPem(const CRYPTO_BUFFER* buf) {
  auto cert = ParseBuffer(buf);
  auto pem = CertToPem(cert.get());
  return pem ? *pem : "";
}

struct VerifyTarget {
  std::string host;  // checked with X509_VERIFY_PARAM_set1_host when set
  std::string ip;    // checked with X509_VERIFY_PARAM_set1_ip_asc when set
};

// X509_V_OK when |leaf| chains to |root| for TLS server use and matches |target|.
inline int VerifyWithBoringSsl(X509* root, X509* leaf, const VerifyTarget& target) {
  bssl::UniquePtr<X509_STORE> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root);
  bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (!target.host.empty())
    X509_VERIFY_PARAM_set1_host(param, target.host.data(), target.host.size());
  if (!target.ip.empty()) X509_VERIFY_PARAM_set1_ip_asc(param, target.ip.c_str());
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  int err = X509_STORE_CTX_get_error(ctx.get());
  return err == X509_V_OK ? X509_V_ERR_UNSPECIFIED : err;
}

inline int VerifyLeaf(const Authority& ca, const Leaf& leaf, const VerifyTarget& target) {
  auto cert = ParseBuffer(leaf.chain.at(0).get());
  return VerifyWithBoringSsl(ca.root(), cert.get(), target);
}

constexpr char kOpenSsl[] = "/usr/bin/openssl";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  // The test's environment may point OpenSSL at other trust stores; the checks must not see them.
  std::string full = "env -u SSL_CERT_FILE -u SSL_CERT_DIR " + command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace mitmd::ca::testing
