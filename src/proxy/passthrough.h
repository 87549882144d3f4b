#pragma once
// Which CONNECT targets mitmd tunnels untouched instead of intercepting: the user's
// --ignore-hosts patterns, and hosts whose clients recently rejected mitmd's certificate
// (auto-passthrough, so pinned apps keep working while the user sees why). Thread-safe.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace mitmd::proxy {

class PassthroughPolicy {
 public:
  static Result<std::unique_ptr<PassthroughPolicy>> Create(const Config& config);

  // Why |host|:|port| must be tunnelled, in words for the flow, or nullopt to intercept.
  std::optional<std::string> Reason(std::string_view host, uint16_t port, double now) const;

  // A client refused mitmd's certificate for |host| (|why| quotes how). With auto-passthrough
  // on, the host is tunnelled until now + ttl. Returns whether it was added.
  bool RecordRejection(std::string_view host, std::string_view why, double now);

 private:
  struct Rejection {
    double until;
    std::string why;
  };
  PassthroughPolicy(std::vector<std::pair<std::string, std::regex>> ignore, bool auto_on,
                    std::chrono::seconds ttl)
      : ignore_(std::move(ignore)), auto_(auto_on), ttl_(ttl) {}

  const std::vector<std::pair<std::string, std::regex>> ignore_;
  const bool auto_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Rejection> rejected_;
};

}  // namespace mitmd::proxy
