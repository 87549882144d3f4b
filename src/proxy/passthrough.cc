#include "proxy/passthrough.h"

#include <algorithm>
#include <cctype>

#include "core/address.h"
#include "core/strings.h"

namespace mitmd::proxy {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Bounds on what a stream of clients and hosts can make the policy remember.
constexpr size_t kMaxRemembered = 4096;

std::string Key(std::string_view client, std::string_view host) {
  return StrCat(client, " ", Lower(host));
}

// Makes room in |map| for one more: drops what |expired| says, then the oldest by |age|.
template <typename Map, typename Expired, typename Age>
void MakeRoom(Map& map, Expired expired, Age age) {
  if (map.size() < kMaxRemembered) return;
  std::erase_if(map, expired);
  while (map.size() >= kMaxRemembered) {
    auto oldest = std::min_element(map.begin(), map.end(),
                                   [&](const auto& a, const auto& b) { return age(a) < age(b); });
    map.erase(oldest);
  }
}

constexpr char kInstallRoot[] =
    "install mitmd's root on it: open http://mitmd.cert/ through the proxy, or the viewer's /ca "
    "page";

}  // namespace

PassthroughPolicy::PassthroughPolicy(std::vector<std::pair<std::string, std::regex>> ignore,
                                     bool auto_on, std::chrono::seconds ttl)
    : ignore_(std::move(ignore)), auto_(auto_on), ttl_(ttl) {
  for (const auto& [text, re] : ignore_) ignore_text_.push_back(text);
}

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

bool PassthroughPolicy::OffersHttp(const std::vector<std::string>& alpn) {
  return std::any_of(alpn.begin(), alpn.end(),
                     [](const std::string& p) { return p == "h2" || p == "http/1.1"; });
}

std::optional<std::string> PassthroughPolicy::Reason(std::string_view client, std::string_view host,
                                                     uint16_t port, double now) const {
  std::string target = StrCat(host, ":", port);
  for (const auto& [pattern, re] : ignore_) {
    if (std::regex_search(target, re)) {
      return StrCat("not intercepted: ", target, " matches --ignore-hosts '", pattern, "'");
    }
  }
  if (!auto_) return std::nullopt;
  std::string ip = AddressWithoutPort(client);
  std::lock_guard lock(mu_);
  auto it = pins_.find(Key(ip, host));
  if (it == pins_.end() || it->second.until < now) return std::nullopt;
  return StrCat("not intercepted (auto-passthrough): ", ip, " pins ", host, " (",
                it->second.why, "); tunnelled for this client for ",
                static_cast<long>(it->second.until - now),
                " s more. Clear it in the viewer (Passthrough) or DELETE /api/passthrough; "
                "--no-auto-passthrough turns this off");
}

void PassthroughPolicy::NoteAccepted(std::string_view client, double now) {
  if (!auto_) return;
  std::string ip = AddressWithoutPort(client);
  std::lock_guard lock(mu_);
  auto it = accepted_.find(ip);
  if (it != accepted_.end()) {
    it->second = now;
    return;
  }
  MakeRoom(accepted_, [](const auto&) { return false; }, [](const auto& kv) { return kv.second; });
  accepted_.emplace(std::move(ip), now);
}

PassthroughPolicy::Verdict PassthroughPolicy::RecordRejection(std::string_view client,
                                                              std::string_view host,
                                                              Evidence evidence,
                                                              std::string_view why,
                                                              bool offered_http_alpn, double now) {
  Verdict v;
  if (!auto_ || host.empty()) return v;
  std::string ip = AddressWithoutPort(client);
  std::lock_guard lock(mu_);
  if (!accepted_.contains(ip)) {
    v.message = StrCat(ip, " has not sent a request through mitmd's TLS yet, so it most likely does "
                       "not trust mitmd's root (rather than pinning ", host, "): ", kInstallRoot,
                       ". ", host, " stays intercepted");
    return v;
  }
  std::string key = Key(ip, host);
  if (evidence == Evidence::kHangup) {
    if (!offered_http_alpn) {
      v.message = StrCat("the client offered no HTTP protocol (ALPN h2 or http/1.1), so this is "
                         "not taken as pinning; ", host, " stays intercepted");
      return v;
    }
    MakeRoom(hangups_, [now](const auto& kv) { return now - kv.second.first > kEvidenceWindow; },
             [](const auto& kv) { return kv.second.first; });
    Hangups& h = hangups_[key];
    if (h.count == 0 || now - h.first > kEvidenceWindow) h = Hangups{now, 0};
    if (++h.count < kHangupsToPin) {
      v.message = StrCat("hang-up ", h.count, " of ", kHangupsToPin, " within ",
                         static_cast<int>(kEvidenceWindow), " s before ", host,
                         " is tunnelled for ", ip, " (auto-passthrough)");
      return v;
    }
    hangups_.erase(key);
  }
  MakeRoom(pins_, [now](const auto& kv) { return kv.second.until < now; },
           [](const auto& kv) { return kv.second.since; });
  pins_[key] = Pin{now, now + static_cast<double>(ttl_.count()), std::string(why)};
  v.tunnelled = true;
  v.message = StrCat(ip, " trusts mitmd's root elsewhere, so it pins ", host, ": tunnelled for ",
                     ip, " for ", ttl_.count(),
                     " s (auto-passthrough; the viewer's Passthrough list clears it)");
  return v;
}

std::vector<PassthroughPolicy::Entry> PassthroughPolicy::List(double now) const {
  std::vector<Entry> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, pin] : pins_) {
    if (pin.until < now) continue;
    size_t space = key.find(' ');
    out.push_back(Entry{key.substr(0, space), key.substr(space + 1), pin.why, pin.since, pin.until});
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.since > b.since; });
  return out;
}

nlohmann::json PassthroughPolicy::ListJson(double now) const {
  nlohmann::json entries = nlohmann::json::array();
  for (const Entry& e : List(now)) {
    entries.push_back({{"client", e.client}, {"host", e.host}, {"reason", e.reason},
                       {"since", e.since}, {"until", e.until},
                       {"seconds_left", static_cast<int64_t>(e.until - now)}});
  }
  return {{"auto", auto_}, {"ttl", ttl_.count()}, {"ignore", ignore_text_},
          {"entries", std::move(entries)}};
}

void PassthroughPolicy::ForgetEvidence() {
  std::lock_guard lock(mu_);
  pins_.clear();
  hangups_.clear();
  accepted_.clear();
}

size_t PassthroughPolicy::Clear(std::string_view client, std::string_view host) {
  std::string ip = client.empty() ? std::string() : AddressWithoutPort(client);
  std::string h = Lower(host);
  std::lock_guard lock(mu_);
  auto matches = [&](const std::string& key) {
    size_t space = key.find(' ');
    return (ip.empty() || (space == ip.size() && key.compare(0, space, ip) == 0)) &&
           (h.empty() || key.compare(space + 1, std::string::npos, h) == 0);
  };
  size_t n = std::erase_if(pins_, [&](const auto& kv) { return matches(kv.first); });
  std::erase_if(hangups_, [&](const auto& kv) { return matches(kv.first); });
  return n;
}

}  // namespace mitmd::proxy
