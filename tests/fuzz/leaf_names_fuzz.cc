// Fuzzes certificate-name handling: the names a leaf gets from the client's SNI, the CONNECT
// host and the upstream certificate. The input is split at NUL bytes into SNI, host, CN, then
// alternating upstream DNS and IP SANs. Aborts when a name that reaches a certificate is not
// canonical (CanonicalDnsName / CanonicalIp of itself) or the CN is not one of the DNS names.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ca/authority.h"
#include "ca/leaf_names.h"

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "leaf_names_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= in.size(); ++i) {
    if (i == in.size() || in[i] == '\0') {
      parts.emplace_back(in.substr(start, i - start));
      start = i + 1;
    }
  }
  mitmd::ca::LeafSpec spec;
  if (parts.size() > 0) spec.sni = parts[0];
  if (parts.size() > 1) spec.host = parts[1];
  if (parts.size() > 2) spec.upstream_cn = parts[2];
  for (size_t i = 3; i < parts.size(); ++i) {
    (i % 2 ? spec.upstream_dns : spec.upstream_ips).push_back(parts[i]);
  }
  mitmd::ca::LeafNames names = mitmd::ca::NamesFor(spec);
  for (const auto& d : names.dns) {
    if (d.empty() || mitmd::ca::CanonicalDnsName(d) != d) Die("a DNS name is not canonical");
  }
  for (const auto& ip : names.ips) {
    if (ip.empty() || mitmd::ca::CanonicalIp(ip) != ip) Die("an IP is not canonical");
  }
  if (!names.common_name.empty() &&
      std::find(names.dns.begin(), names.dns.end(), names.common_name) == names.dns.end()) {
    Die("the CN is not one of the DNS names");
  }
  (void)mitmd::ca::KeepOnly(names, [](std::string_view n) { return n.size() % 2 == 0; });
  (void)names.Key();
  return 0;
}
