#pragma once
// Which names a leaf carries: a pure function of the LeafSpec, tested on its own.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ca/authority.h"

namespace mitmd::ca {

struct LeafNames {
  std::vector<std::string> dns;  // lower-case, no trailing dot, in first-seen order
  std::vector<std::string> ips;  // canonical text (inet_ntop), in first-seen order
  // The subject CN: the first DNS name when shorter than 64 characters, else empty. Never an IP:
  // verifiers that fall back to the CN would then match the IP as a host name.
  std::string common_name;

  bool empty() const { return dns.empty() && ips.empty(); }
  // Identifies the name set regardless of order; the cache key.
  std::string Key() const;
};

// The canonical text of an IPv4 or IPv6 literal ("[::1]" and "0:0::1" give "::1"), or "" when
// |text| is not one.
std::string CanonicalIp(std::string_view text);

// A DNS name fit for a SAN: lower-cased, trailing dot removed; "" when |name| is not a
// host name (letters, digits, '-', '_', dots, and an optional leading "*." wildcard label).
std::string CanonicalDnsName(std::string_view name);

// Upstream CN, upstream DNS SANs, upstream IP SANs, SNI, host; IP literals become IPs,
// duplicates (DNS case-insensitively) and names that are neither are dropped.
LeafNames NamesFor(const LeafSpec& spec);

// |names| without the DNS names and IPs for which |keep| is false; the CN is chosen again.
LeafNames KeepOnly(const LeafNames& names, const std::function<bool(std::string_view)>& keep);

}  // namespace mitmd::ca
