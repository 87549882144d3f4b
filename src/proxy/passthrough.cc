#include "proxy/passthrough.h"

#include <cctype>

#include "core/strings.h"

namespace mitmd::proxy {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

constexpr size_t kMaxRemembered = 4096;

}  // namespace

Result<std::unique_ptr<PassthroughPolicy>> PassthroughPolicy::Create(const Config& config) {
  std::vector<std::pair<std::string, std::regex>> ignore;
  for (const std::string& pattern : config.ignore_hosts) {
    try {
      ignore.emplace_back(pattern, std::regex(pattern, std::regex::ECMAScript | std::regex::icase |
                                                           std::regex::optimize));
    } catch (const std::regex_error& e) {
      return Fail(StrCat("--ignore-hosts: '", pattern, "' is not a valid regular expression (",
                         e.what(), ")"));
    }
  }
  return std::unique_ptr<PassthroughPolicy>(
      new PassthroughPolicy(std::move(ignore), config.auto_passthrough, config.auto_passthrough_ttl));
}

std::optional<std::string> PassthroughPolicy::Reason(std::string_view host, uint16_t port,
                                                     double now) const {
  std::string target = StrCat(host, ":", port);
  for (const auto& [pattern, re] : ignore_) {
    if (std::regex_search(target, re)) {
      return StrCat("not intercepted: ", target, " matches --ignore-hosts '", pattern, "'");
    }
  }
  if (!auto_) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = rejected_.find(Lower(host));
  if (it == rejected_.end() || it->second.until < now) return std::nullopt;
  return StrCat("not intercepted (auto-passthrough): a client rejected mitmd's certificate for ",
                host, " (", it->second.why, "); tunnelled for ",
                static_cast<long>(it->second.until - now), " s more, --no-auto-passthrough "
                "turns this off");
}

bool PassthroughPolicy::RecordRejection(std::string_view host, std::string_view why, double now) {
  if (!auto_ || host.empty()) return false;
  std::lock_guard lock(mu_);
  if (rejected_.size() >= kMaxRemembered) {
    std::erase_if(rejected_, [now](const auto& kv) { return kv.second.until < now; });
    if (rejected_.size() >= kMaxRemembered) return false;
  }
  rejected_[Lower(host)] = Rejection{now + static_cast<double>(ttl_.count()), std::string(why)};
  return true;
}

}  // namespace mitmd::proxy
