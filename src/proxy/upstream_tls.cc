#include "proxy/upstream_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pool.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include "core/strings.h"
#include "proxy/cert_info.h"
#include "proxy/client_hello.h"

namespace mitmd::proxy {
namespace {

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

std::string DateOnly(const std::string& iso) { return iso.substr(0, 10); }

std::string JoinSans(const std::vector<std::string>& sans) {
  std::string out;
  for (const std::string& s : sans) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "no names" : out;
}

std::string ExplainError(int err, int depth, X509* cert, const UpstreamVerification& v,
                         const CertInfo& leaf) {
  CertInfo at = cert ? DescribeCert(cert) : leaf;
  std::string which = depth == 0 ? "upstream certificate"
                                 : StrCat("upstream chain certificate '", at.subject, "'");
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return StrCat(which, " has expired (notAfter ", DateOnly(at.not_after), ")");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return StrCat(which, " is not valid yet (notBefore ", DateOnly(at.not_before), ")");
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return StrCat("upstream certificate does not match host '", v.host,
                    "' (hostname mismatch: it names ", JoinSans(leaf.sans), ")");
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return StrCat("upstream certificate is self-signed and not trusted (subject ", leaf.subject,
                    "); pass --upstream-ca FILE to trust it");
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return StrCat("upstream certificate chains to a self-signed root that is not trusted (",
                    at.subject, "); pass --upstream-ca FILE to trust it");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return StrCat("upstream certificate was issued by an unknown authority (issuer ", at.issuer,
                    "; unable to get local issuer certificate); pass --upstream-ca FILE to trust it");
    default:
      return StrCat(which, " is not trusted: ", X509_verify_cert_error_string(err));
  }
}

enum ssl_verify_result_t VerifyCallback(SSL* ssl, uint8_t* out_alert) {
  auto* v = static_cast<UpstreamVerification*>(SSL_get_app_data(ssl));
  if (v == nullptr) return ssl_verify_invalid;  // its session is gone
  X509_STORE* store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
  VerifyServerChain(store, SSL_get0_peer_certificates(ssl), v);
  if (v->ok || v->insecure) return ssl_verify_ok;
  *out_alert = SSL_AD_BAD_CERTIFICATE;
  return ssl_verify_invalid;
}

// Called on a client when the server sends a CertificateRequest.
int CertRequestedCallback(SSL* ssl, void*) {
  if (auto* v = static_cast<UpstreamVerification*>(SSL_get_app_data(ssl))) {
    v->client_cert_requested = true;
  }
  return 1;
}

}  // namespace

void VerifyServerChain(X509_STORE* store, const STACK_OF(CRYPTO_BUFFER)* chain,
                       UpstreamVerification* out) {
  out->done = true;
  out->ok = false;
  if (chain == nullptr || sk_CRYPTO_BUFFER_num(chain) == 0) {
    out->message = "the upstream server sent no certificate";
    return;
  }
  bssl::UniquePtr<X509> leaf(X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(chain, 0)));
  bssl::UniquePtr<STACK_OF(X509)> intermediates(sk_X509_new_null());
  for (size_t i = 1; i < sk_CRYPTO_BUFFER_num(chain); ++i) {
    X509* x = X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(chain, i));
    if (x) sk_X509_push(intermediates.get(), x);
  }
  if (!leaf) {
    out->message = "the upstream certificate cannot be parsed";
    return;
  }
  out->cert = DescribeCert(leaf.get());
  bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!X509_STORE_CTX_init(ctx.get(), store, leaf.get(), intermediates.get())) {
    out->message = "internal error: cannot set up certificate verification";
    return;
  }
  X509_STORE_CTX_set_default(ctx.get(), "ssl_server");
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (IsIpLiteral(out->host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, out->host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, out->host.data(), out->host.size());
  }
  ERR_clear_error();
  if (X509_verify_cert(ctx.get()) == 1) {
    out->ok = true;
    out->cert->verified = true;
    return;
  }
  int err = X509_STORE_CTX_get_error(ctx.get());
  out->message = ExplainError(err, X509_STORE_CTX_get_error_depth(ctx.get()),
                              X509_STORE_CTX_get_current_cert(ctx.get()), *out, *out->cert);
  out->cert->verify_error = out->message;
  ERR_clear_error();
}

Result<std::unique_ptr<UpstreamTls>> UpstreamTls::Create(const Config& config,
                                                         net::KeyLog* keylog) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return Fail("cannot create the upstream TLS context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  struct stat st;
  if (!config.system_ca_file.empty() && ::stat(config.system_ca_file.c_str(), &st) == 0) {
    if (!X509_STORE_load_locations(store, config.system_ca_file.c_str(), nullptr)) {
      ERR_clear_error();
      return Fail(StrCat("cannot load the system trust store ", config.system_ca_file));
    }
  }
  for (const std::string& file : config.upstream_ca_files) {
    if (!X509_STORE_load_locations(store, file.c_str(), nullptr)) {
      ERR_clear_error();
      return Fail(StrCat("--upstream-ca ", file, ": cannot read PEM certificates from it"));
    }
  }
  // The store sorts its certificates by subject at its first lookup: sort them here, at start-up,
  // instead of in the first connection's handshake (82,000 instructions fewer there, callgrind,
  // with Debian's system roots).
  bssl::UniquePtr<X509_NAME> nobody(X509_NAME_new());
  if (nobody) {
    X509_OBJECT_retrieve_by_subject(X509_STORE_get0_objects(store), X509_LU_X509, nobody.get());
  }
  SSL_CTX_set_custom_verify(ctx.get(), SSL_VERIFY_PEER, VerifyCallback);
  SSL_CTX_set_cert_cb(ctx.get(), CertRequestedCallback, nullptr);
  if (keylog) net::KeyLog::Attach(ctx.get(), keylog);
  return std::unique_ptr<UpstreamTls>(new UpstreamTls(std::move(ctx)));
}

bssl::UniquePtr<SSL> UpstreamTls::NewSsl(const std::string& sni,
                                         const std::vector<std::string>& alpn,
                                         UpstreamVerification* verification,
                                         const ClientCredential* client_cert) const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (!ssl) return nullptr;
  SSL_set_connect_state(ssl.get());
  SSL_set_app_data(ssl.get(), verification);
  if (client_cert && ClientCertStore::Apply(ssl.get(), *client_cert)) {
    verification->client_cert_source = client_cert->source;
  }
  if (!sni.empty() && !IsIpLiteral(sni)) SSL_set_tlsext_host_name(ssl.get(), sni.c_str());
  if (!alpn.empty()) {
    std::string wire = EncodeAlpn(alpn);
    SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
  }
  return ssl;
}

}  // namespace mitmd::proxy
