#pragma once
// Which CONNECT targets mitmd tunnels untouched instead of intercepting: the user's
// --ignore-hosts patterns, and (auto-passthrough) hosts a given client pins, so pinned apps keep
// working while the user sees why. Thread-safe.
//
// Auto-passthrough decides per client address and host, never for everyone, and only when it is
// sure the client pins rather than distrusts mitmd's root:
//   evidence                         client never sent a request     client did (trusts the root)
//                                    over intercepted TLS
//   TLS alert on mitmd's leaf        intercepted; the flow says to    tunnelled for the TTL
//                                    install the root (/ca)
//   handshake done, closed without   intercepted                      tunnelled after kHangupsToPin
//   a request                                                         within kEvidenceWindow, if
//                                                                     it offered h2 or http/1.1
// (A client that offered no HTTP ALPN, like openssl s_client or a scanner, never counts.)

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "core/result.h"

namespace mitmd::proxy {

class PassthroughPolicy {
 public:
  // Hang-ups without a request that make a pin, and the window they must fall in.
  static constexpr int kHangupsToPin = 3;
  static constexpr double kEvidenceWindow = 120;

  static Result<std::unique_ptr<PassthroughPolicy>> Create(const Config& config);

  // Why |host|:|port| must be tunnelled for |client| (an address, with or without its port), in
  // words for the flow's note, or nullopt to intercept.
  std::optional<std::string> Reason(std::string_view client, std::string_view host, uint16_t port,
                                    double now) const;

  // |client| completed a request over TLS intercepted with mitmd's certificate: it trusts the
  // root, so its later rejections can mean pinning.
  void NoteAccepted(std::string_view client, double now);

  enum class Evidence {
    kAlert,   // the client refused mitmd's certificate during the handshake
    kHangup,  // the handshake completed, then the client closed without a request
  };
  struct Verdict {
    bool tunnelled = false;  // the host is tunnelled for this client from now on
    std::string message;     // for the flow's error: what happened to interception, and why
  };
  // |offered_http_alpn|: the ClientHello offered h2 or http/1.1.
  Verdict RecordRejection(std::string_view client, std::string_view host, Evidence evidence,
                          std::string_view why, bool offered_http_alpn, double now);

  struct Entry {
    std::string client;  // address, without its port
    std::string host;
    std::string reason;
    double since = 0;
    double until = 0;
  };
  // The hosts tunnelled now, for the viewer (GET /api/passthrough): the pins, not --ignore-hosts.
  std::vector<Entry> List(double now) const;
  // List() for the viewer, with the settings: {"auto", "ttl", "ignore", "entries": [{client,
  // host, reason, since, until, seconds_left}]}.
  nlohmann::json ListJson(double now) const;
  // Removes the pins matching |client| and |host| (empty matches any). Returns how many.
  size_t Clear(std::string_view client, std::string_view host);
  // The root changed (regenerated, replaced, reloaded): what clients showed about trusting the
  // old one says nothing about the new one, and a client that trusts the new root refused the
  // old root's leaves until the reload. Drops every pin, hang-up count and acceptance.
  void ForgetEvidence();

  const std::vector<std::string>& ignore_patterns() const { return ignore_text_; }
  bool auto_enabled() const { return auto_; }

  // Whether a ClientHello's ALPN list names an HTTP protocol mitmd serves (h2, http/1.1).
  static bool OffersHttp(const std::vector<std::string>& alpn);

 private:
  struct Pin {
    double since = 0;
    double until = 0;
    std::string why;
  };
  struct Hangups {
    double first = 0;
    int count = 0;
  };
  PassthroughPolicy(std::vector<std::pair<std::string, std::regex>> ignore, bool auto_on,
                    std::chrono::seconds ttl);

  const std::vector<std::pair<std::string, std::regex>> ignore_;
  std::vector<std::string> ignore_text_;
  const bool auto_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Pin> pins_;          // key: client + ' ' + host
  std::unordered_map<std::string, Hangups> hangups_;   // same key
  std::unordered_map<std::string, double> accepted_;   // client -> last request over mitmd's TLS
};

}  // namespace mitmd::proxy
