#include "net/tls_errors.h"

#include <openssl/err.h>

#include <cctype>

#include "core/strings.h"

namespace mitmd::net {
namespace {

// "SSLV3_ALERT_BAD_CERTIFICATE" -> "bad certificate"
std::string AlertName(std::string_view reason) {
  size_t at = reason.find("ALERT_");
  std::string_view name = reason.substr(at + 6);
  std::string out;
  for (char c : name) out.push_back(c == '_' ? ' ' : static_cast<char>(std::tolower(c)));
  return out;
}

}  // namespace

std::string TlsErrorString(const SSL* ssl, int ret) {
  int ssl_err = SSL_get_error(ssl, ret);
  uint32_t packed = ERR_peek_last_error();
  ERR_clear_error();
  if (ssl_err == SSL_ERROR_SYSCALL && packed == 0) return "the connection closed during TLS";
  if (packed == 0) return StrCat("TLS error ", ssl_err);
  const char* reason = ERR_reason_error_string(packed);
  std::string_view r = reason ? reason : "unknown";
  if (r.find("ALERT_") != std::string_view::npos) {
    return StrCat("the peer sent the TLS alert '", AlertName(r), "'");
  }
  if (r == "UNSUPPORTED_PROTOCOL") return "no TLS version both sides support (mitmd requires TLS 1.2+)";
  if (r == "NO_SHARED_CIPHER") return "no cipher suite both sides support";
  if (r == "WRONG_VERSION_NUMBER" || r == "HTTP_REQUEST") return "the peer does not speak TLS";
  if (r == "CERTIFICATE_VERIFY_FAILED") return "certificate verification failed";
  std::string out;
  for (char c : r) out.push_back(c == '_' ? ' ' : static_cast<char>(std::tolower(c)));
  return StrCat("TLS error: ", out);
}

std::string TlsVersionName(const SSL* ssl) {
  switch (SSL_version(ssl)) {
    case TLS1_3_VERSION: return "TLSv1.3";
    case TLS1_2_VERSION: return "TLSv1.2";
    case TLS1_1_VERSION: return "TLSv1.1";
    case TLS1_VERSION: return "TLSv1";
    default: return SSL_get_version(ssl);
  }
}

}  // namespace mitmd::net
