#pragma once
// Hooks: the seam where policy meets the exchange, away from the protocol code. Today: the
// proxy-authentication check and the pages mitmd serves itself (http://mitmd.cert/); hold,
// rules and replay come in through here too.

#include <optional>
#include <string>
#include <vector>

#include "http/message.h"
#include "proxy/error_page.h"
#include "proxy/phase.h"
#include "proxy/proxy_context.h"
#include "proxy/request_target.h"

namespace mitmd::proxy {

// A response mitmd gives instead of forwarding, and what the flow says about it.
struct HookAnswer {
  LocalResponse response;
  std::optional<Phase> error_phase;  // set: the flow failed with |message|
  std::string message;               // the error, or the flow's note
};

class Hooks {
 public:
  virtual ~Hooks() = default;
  // Every request addressed to the proxy itself (CONNECT or absolute-form): nullopt lets it
  // through, else the refusal (407).
  virtual std::optional<HookAnswer> CheckProxyAuth(const http::RequestHead& head) = 0;
  // A plain-HTTP request for |target|: what mitmd answers itself, or nullopt to forward it.
  virtual std::optional<HookAnswer> ServeLocally(const http::RequestHead& head,
                                                 const Target& target) = 0;
  // Where a CONNECT or a plain-HTTP request points: nullopt lets it through; a refusal (403)
  // for mitmd's own listening addresses, so that no proxy client reaches the loopback-only
  // viewer, nor loops mitmd into itself.
  virtual std::optional<HookAnswer> CheckTarget(const Target& target) = 0;
};

class DefaultHooks : public Hooks {
 public:
  // Learns the machine's addresses once (getifaddrs). |proxy_port| is the port the proxy is
  // bound to (the configured one may be 0).
  DefaultHooks(const ProxyContext& ctx, uint16_t proxy_port);
  std::optional<HookAnswer> CheckProxyAuth(const http::RequestHead& head) override;
  std::optional<HookAnswer> ServeLocally(const http::RequestHead& head,
                                         const Target& target) override;
  std::optional<HookAnswer> CheckTarget(const Target& target) override;

 private:
  // |host| names this machine: a loopback or unspecified address, "localhost", or one of the
  // addresses of its interfaces.
  bool IsThisMachine(const std::string& host) const;

  const ProxyContext& ctx_;
  const uint16_t proxy_port_;
  std::vector<std::string> local_addresses_;  // textual, as inet_ntop writes them
};

// The host mitmd answers itself through the proxy (like mitmproxy's mitm.it).
inline constexpr std::string_view kCertHost = "mitmd.cert";

}  // namespace mitmd::proxy
