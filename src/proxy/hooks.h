#pragma once
// Hooks: the seam where policy meets the exchange, away from the protocol code: the
// proxy-authentication check, the pages mitmd serves itself (http://mitmd.cert/), the rules and
// hold filters in force (src/rules), the registry of held flows, and replay marks.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/message.h"
#include "http/static_response.h"
#include "proxy/error_page.h"
#include "proxy/phase.h"
#include "proxy/proxy_context.h"
#include "proxy/request_target.h"
#include "rules/controls.h"
#include "rules/replay.h"
#include "rules/rule_set.h"

namespace mitmd::proxy {

// What mitmd's replay header said about a request (empty when it had none).
struct ReplayMark {
  std::string replay_of;  // the flow this request replays
  std::string flow_id;    // the id its flow must have (set by the viewer's replay), or empty
};

using rules::kReplayHeader;

// A response mitmd gives instead of forwarding, and what the flow says about it.
struct HookAnswer {
  LocalResponse response;
  std::optional<Phase> error_phase;  // set: the flow failed with |message|
  std::string message;               // the error, or the flow's note
};

class Hooks {
 public:
  virtual ~Hooks() = default;
  // Every request addressed to the proxy itself (CONNECT or absolute-form) from |client| (its
  // address and port): nullopt lets it through, else the refusal (407).
  virtual std::optional<HookAnswer> CheckProxyAuth(const http::RequestHead& head,
                                                   std::string_view client) = 0;
  // A plain-HTTP request for |target|: what mitmd answers itself, or nullopt to forward it.
  virtual std::optional<HookAnswer> ServeLocally(const http::RequestHead& head,
                                                 const Target& target) = 0;
  // Where a CONNECT or a plain-HTTP request points: nullopt lets it through; a refusal (403)
  // for mitmd's own listening addresses, so that no proxy client reaches the loopback-only
  // viewer, nor loops mitmd into itself.
  virtual std::optional<HookAnswer> CheckTarget(const Target& target) = 0;
  // The rules and hold filters in force: an exchange takes them once, when it starts.
  virtual std::shared_ptr<const rules::RuleSet> Rules() = 0;
  // A flow now waits for the user (|target| lives on this worker until Unhold); and no longer.
  virtual void Hold(const std::string& flow_id, rules::Holdable* target,
                    rules::HeldInfo info) = 0;
  virtual void Unhold(const std::string& flow_id) = 0;
  // What kReplayHeader in |headers| says (the exchange strips it with the proxy's headers).
  virtual ReplayMark ReadReplayMark(const HeaderList& headers) = 0;
};

// What the default hooks read besides the shared context, all optional.
struct HookInputs {
  // Answers http://mitmd.cert/<path> through the proxy (the root's page and downloads, like
  // mitmproxy's mitm.it); nullopt for an unknown path. Empty: nothing is served.
  std::function<std::optional<http::StaticResponse>(std::string_view path)> cert_page;
  // The port the viewer is bound to once it listens (0 until then, or without a viewer), for
  // refusing requests to it through the proxy; null: the configured --web port.
  const std::atomic<uint16_t>* viewer_port = nullptr;
  // The rules and hold filters the user sets at runtime, and the held flows (src/rules). Null:
  // no rules, nothing held.
  rules::Controls* controls = nullptr;
};

class DefaultHooks : public Hooks {
 public:
  // Learns the machine's addresses once (getifaddrs). |proxy_port| is the port the proxy is
  // bound to (the configured one may be 0). |post| runs a function on this worker's loop (the
  // web thread's commands to held flows arrive through it); empty runs it at once, for tests
  // that drive the worker from their own thread.
  DefaultHooks(const ProxyContext& ctx, HookInputs inputs, uint16_t proxy_port,
               rules::FlowControl::Post post = {});
  std::optional<HookAnswer> CheckProxyAuth(const http::RequestHead& head,
                                           std::string_view client) override;
  std::optional<HookAnswer> ServeLocally(const http::RequestHead& head,
                                         const Target& target) override;
  std::optional<HookAnswer> CheckTarget(const Target& target) override;
  std::shared_ptr<const rules::RuleSet> Rules() override;
  void Hold(const std::string& flow_id, rules::Holdable* target, rules::HeldInfo info) override;
  void Unhold(const std::string& flow_id) override;
  ReplayMark ReadReplayMark(const HeaderList& headers) override;

 private:
  // |host| names this machine: a loopback or unspecified address, "localhost", or one of the
  // addresses of its interfaces.
  bool IsThisMachine(const std::string& host) const;

  const ProxyContext& ctx_;
  const HookInputs inputs_;
  const uint16_t proxy_port_;
  rules::FlowControl::Post post_;
  const std::shared_ptr<const rules::RuleSet> no_rules_ = rules::RuleSet::Empty();
  std::vector<std::string> local_addresses_;  // textual, as inet_ntop writes them
};

// The host mitmd answers itself through the proxy (like mitmproxy's mitm.it).
inline constexpr std::string_view kCertHost = "mitmd.cert";

}  // namespace mitmd::proxy
