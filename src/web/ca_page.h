#pragma once
// The root-certificate page: how to trust mitmd's root on each platform, with the root in the
// formats those platforms take. Served by the viewer at /ca and, through the proxy, at
// http://mitmd.cert/ (the proxy hands such requests to CaDownloads::Serve). Sans-I/O.

#include <openssl/base.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "http/static_response.h"

namespace mitmd::web {

using http::StaticResponse;

// What the page says about this mitmd. Empty fields fall back to the defaults' wording.
struct CaPageInfo {
  std::string proxy;      // "192.168.1.5:8080": where this client reaches the proxy
  std::string confdir;    // where the root's private key lives, e.g. "/home/me/.mitmd"
  std::string setup_url;  // drawn as a QR code for a phone to open this page; empty: none
  std::string pac_url;    // the viewer's /proxy.pac as this client reaches it; empty: none
};

class CaDownloads {
 public:
  // |root| is borrowed for the call only. |fingerprint| is shown for users to compare.
  static Result<CaDownloads> Create(X509* root, std::string pem, std::string fingerprint);

  // The response for |path| (query string removed): "/", "/ca" and "/ca/" give the page;
  // "/ca/mitmd-ca.pem", "/ca/mitmd-ca.cer" (DER) and "/ca/<subject_hash_old>.0" (Android) the
  // files. nullopt for any other path.
  std::optional<StaticResponse> Serve(std::string_view path, const CaPageInfo& info = {}) const;

  // "<subject_hash_old>.0", the name Android's system store expects.
  const std::string& android_name() const { return android_name_; }
  const std::string& der() const { return der_; }
  const std::string& pem() const { return pem_; }
  std::string PageHtml(const CaPageInfo& info = {}) const;

 private:
  std::string pem_;
  std::string der_;
  std::string android_name_;
  std::string fingerprint_;
  std::string subject_;
  std::string not_after_;
};

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string HtmlEscape(std::string_view text);

}  // namespace mitmd::web
