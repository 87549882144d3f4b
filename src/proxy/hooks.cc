#include "proxy/hooks.h"

#include <openssl/mem.h>

#include "core/strings.h"

namespace mitmd::proxy {
namespace {

// Whether a "Basic" Proxy-Authorization value carries |token| as its password.
bool HasToken(const std::string* auth, const std::string& token) {
  if (!auth || auth->size() <= 6 || !EqualsIgnoreCase(auth->substr(0, 6), "Basic ")) return false;
  std::optional<std::string> decoded_or = Base64Decode(std::string_view(*auth).substr(6));
  if (!decoded_or) return false;
  const std::string& decoded = *decoded_or;
  size_t colon = decoded.find(':');
  std::string_view password = colon == std::string::npos
                                  ? std::string_view(decoded)
                                  : std::string_view(decoded).substr(colon + 1);
  return password.size() == token.size() &&
         CRYPTO_memcmp(password.data(), token.data(), password.size()) == 0;
}

}  // namespace

std::optional<HookAnswer> DefaultHooks::CheckProxyAuth(const http::RequestHead& head) {
  // Clients beyond loopback must prove they know the token.
  const std::string& token = ctx_.config.proxy_token;
  if (token.empty() || HasToken(FindHeader(head.headers, "Proxy-Authorization"), token)) {
    return std::nullopt;
  }
  std::string message = "this mitmd listens beyond loopback and requires its proxy token";
  return HookAnswer{ErrorPage(407, message,
                              "Send it as the proxy password, e.g. curl --proxy-user mitmd:TOKEN",
                              {{"Proxy-Authenticate", "Basic realm=\"mitmd\""}}),
                    Phase::kProxyRequest, message};
}

std::optional<HookAnswer> DefaultHooks::ServeLocally(const http::RequestHead&,
                                                     const Target& target) {
  if (target.scheme != "http" || !EqualsIgnoreCase(target.host, kCertHost)) return std::nullopt;
  std::string path = target.path.substr(0, target.path.find('?'));
  auto page = ctx_.cert_page ? ctx_.cert_page(path) : std::nullopt;
  if (!page) {
    std::string message = StrCat("http://", kCertHost, " has nothing at ", path, " (try http://",
                                 kCertHost, "/)");
    return HookAnswer{ErrorPage(404, message), Phase::kProxyRequest, message};
  }
  LocalResponse r;
  r.status = page->status;
  r.headers = {{"Content-Type", page->content_type},
               {"Content-Length", StrCat(page->body.size())},
               {"Cache-Control", "no-store"},
               {"Connection", "close"}};
  if (!page->filename.empty()) {
    r.headers.emplace_back("Content-Disposition",
                           StrCat("attachment; filename=\"", page->filename, "\""));
  }
  r.body = std::move(page->body);
  return HookAnswer{std::move(r), std::nullopt, "served by mitmd itself"};
}

}  // namespace mitmd::proxy
