#include "proxy/hooks.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/mem.h>

#include <algorithm>

#include "core/address.h"
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

std::string AddressText(const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof(text));
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof(text));
  }
  return text;
}

}  // namespace

DefaultHooks::DefaultHooks(const ProxyContext& ctx, HookInputs inputs, uint16_t proxy_port,
                           rules::FlowControl::Post post)
    : ctx_(ctx), inputs_(std::move(inputs)), proxy_port_(proxy_port), post_(std::move(post)) {
  if (!post_) post_ = [](std::function<void()> fn) { fn(); };
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr) continue;
    std::string text = AddressText(a->ifa_addr);
    if (!text.empty()) local_addresses_.push_back(std::move(text));
  }
  freeifaddrs(list);
}

bool DefaultHooks::IsThisMachine(const std::string& host) const {
  if (EqualsIgnoreCase(host, "localhost") || host.ends_with(".localhost")) return true;
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    uint32_t ip = ntohl(a4.s_addr);
    if ((ip >> 24) == 127 || ip == 0) return true;  // 127.0.0.0/8, 0.0.0.0
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127) return true;
  } else {
    return false;  // another name: resolved by the dialer, beyond this check
  }
  for (const std::string& local : local_addresses_) {
    if (local == host) return true;
  }
  return false;
}

std::optional<HookAnswer> DefaultHooks::CheckTarget(const Target& target) {
  const Config& c = ctx_.config;
  bool proxy_port = target.port == proxy_port_;
  uint16_t viewer = inputs_.viewer_port ? inputs_.viewer_port->load(std::memory_order_relaxed)
                                        : (c.web_enabled ? c.web_listen.port : 0);
  bool viewer_port = viewer != 0 && target.port == viewer;
  if (!(proxy_port || viewer_port) || !IsThisMachine(target.host)) return std::nullopt;
  std::string message =
      StrCat(target.host, ":", target.port, " is mitmd's own ", proxy_port ? "proxy" : "viewer",
             " address: mitmd does not proxy to itself",
             viewer_port ? " (open the viewer directly, not through the proxy)" : "");
  return HookAnswer{ErrorPage(403, message), Phase::kProxyRequest, message};
}

std::optional<HookAnswer> DefaultHooks::CheckProxyAuth(const http::RequestHead& head,
                                                     std::string_view client) {
  // Clients beyond loopback must prove they know the token, unless --allow-clients vouches.
  const std::string& token = ctx_.config.proxy_token;
  if (token.empty() || HasToken(FindHeader(head.headers, "Proxy-Authorization"), token) ||
      InNetworks(ctx_.config.allow_clients, client)) {
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
  auto page = inputs_.cert_page ? inputs_.cert_page(path) : std::nullopt;
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

std::shared_ptr<const rules::RuleSet> DefaultHooks::Rules() {
  return inputs_.controls ? inputs_.controls->Current() : no_rules_;
}

void DefaultHooks::Hold(const std::string& flow_id, rules::Holdable* target,
                        rules::HeldInfo info) {
  if (inputs_.controls) inputs_.controls->flows().Hold(flow_id, target, post_, std::move(info));
}

void DefaultHooks::Unhold(const std::string& flow_id) {
  if (inputs_.controls) inputs_.controls->flows().Unhold(flow_id);
}

ReplayMark DefaultHooks::ReadReplayMark(const HeaderList& headers) {
  ReplayMark mark;
  const std::string* value = FindHeader(headers, kReplayHeader);
  if (value == nullptr) return mark;
  std::vector<std::string> words;
  for (size_t at = 0; at < value->size();) {
    size_t end = value->find(' ', at);
    if (end == std::string::npos) end = value->size();
    if (end > at) words.push_back(value->substr(at, end - at));
    at = end + 1;
  }
  // Flow ids are UUIDs: anything else a client sends is no reference to a flow.
  auto is_id = [](const std::string& w) {
    auto id_char = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == '-'; };
    return !w.empty() && w.size() <= 64 && std::all_of(w.begin(), w.end(), id_char);
  };
  if (!std::all_of(words.begin(), words.end(), is_id)) return mark;
  const std::string& token = inputs_.controls ? inputs_.controls->replay_token() : std::string();
  if (words.size() == 3 && !token.empty() && words[0].size() == token.size() &&
      CRYPTO_memcmp(words[0].data(), token.data(), token.size()) == 0) {
    mark.replay_of = words[1];
    mark.flow_id = words[2];
  } else if (words.size() == 1) {
    mark.replay_of = words[0];
  }
  return mark;
}

}  // namespace mitmd::proxy
