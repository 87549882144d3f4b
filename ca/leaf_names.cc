#include "ca/leaf_names.h"

#include <arpa/inet.h>

#include <algorithm>
#include <iterator>

namespace mitmd::ca {
namespace {

constexpr size_t kMaxCommonNameLength = 64;  // ub-common-name in RFC 5280
constexpr size_t kMaxDnsNameLength = 253;
constexpr size_t kMaxLabelLength = 63;

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool ValidLabels(std::string_view name) {
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    size_t end = dot == std::string_view::npos ? name.size() : dot;
    if (end == start || end - start > kMaxLabelLength) return false;
    for (size_t i = start; i < end; ++i) {
      if (!IsLabelChar(name[i])) return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

void AddUnique(std::vector<std::string>& list, std::string value) {
  if (value.empty()) return;
  if (std::find(list.begin(), list.end(), value) != list.end()) return;
  list.push_back(std::move(value));
}

std::string CommonNameFor(const std::vector<std::string>& dns) {
  if (!dns.empty() && dns.front().size() < kMaxCommonNameLength) return dns.front();
  return "";
}

}  // namespace

std::string LeafNames::Key() const {
  std::vector<std::string> d = dns, i = ips;
  std::sort(d.begin(), d.end());
  std::sort(i.begin(), i.end());
  std::string key;
  for (const auto& n : d) key.append("d:").append(n).push_back('\n');
  for (const auto& n : i) key.append("i:").append(n).push_back('\n');
  return key;
}

std::string CanonicalIp(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return "";
  std::string s(text);
  char out[INET6_ADDRSTRLEN];
  unsigned char bytes[16];
  if (inet_pton(AF_INET, s.c_str(), bytes) == 1) {
    return inet_ntop(AF_INET, bytes, out, sizeof(out)) ? out : "";
  }
  if (inet_pton(AF_INET6, s.c_str(), bytes) == 1) {
    return inet_ntop(AF_INET6, bytes, out, sizeof(out)) ? out : "";
  }
  return "";
}

std::string CanonicalDnsName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxDnsNameLength) return "";
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
  });
  std::string_view rest = out;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  if (!ValidLabels(rest)) return "";
  return out;
}

LeafNames NamesFor(const LeafSpec& spec) {
  LeafNames names;
  auto add = [&names](std::string_view candidate) {
    if (std::string ip = CanonicalIp(candidate); !ip.empty()) {
      AddUnique(names.ips, std::move(ip));
    } else {
      AddUnique(names.dns, CanonicalDnsName(candidate));
    }
  };
  add(spec.upstream_cn);
  for (const auto& n : spec.upstream_dns) add(n);
  for (const auto& n : spec.upstream_ips) add(n);
  add(spec.sni);
  add(spec.host);

  names.common_name = CommonNameFor(names.dns);
  return names;
}

LeafNames KeepOnly(const LeafNames& names, const std::function<bool(std::string_view)>& keep) {
  LeafNames out;
  std::copy_if(names.dns.begin(), names.dns.end(), std::back_inserter(out.dns), keep);
  std::copy_if(names.ips.begin(), names.ips.end(), std::back_inserter(out.ips), keep);
  out.common_name = CommonNameFor(out.dns);
  return out;
}

}  // namespace mitmd::ca
