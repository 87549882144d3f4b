#pragma once
// Scoped roots: X.509 name constraints that limit which hosts a root may vouch for, so a leaked
// key cannot impersonate any site outside them.

#include <openssl/base.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mitmd::ca {

// An IPv4 or IPv6 network as it appears in a name constraint: address and mask.
struct IpRange {
  std::vector<uint8_t> address;  // 4 or 16 bytes
  std::vector<uint8_t> mask;     // same length

  bool Contains(const std::vector<uint8_t>& ip) const;
  std::string ToString() const;  // "10.0.0.0/8", "::1/128"
};

// The DNS and IP name constraints of a root, with RFC 5280 / OpenSSL matching: "example.com"
// covers example.com and every name below it, ".test" only names below test, and "" every name.
// Other name types are ignored: leaves carry only DNS and IP names.
class Scope {
 public:
  // An unconstrained scope: every host is in it.
  Scope() = default;

  // A comma-separated list of domains ("example.com", ".test") and networks ("10.0.0.0/8",
  // "::1", "127.0.0.1/32"). Hosts of a kind (names or addresses) the list does not mention are
  // all out of scope.
  static Result<Scope> Parse(std::string_view list);

  // The name constraints of |cert|; unconstrained when it has none.
  static Result<Scope> Of(X509* cert);

  bool constrained() const { return constrained_; }

  // Whether a leaf for |host| (a DNS name, possibly "*.x", or an IP literal) would satisfy the
  // constraints. Always true when unconstrained.
  bool Permits(std::string_view host) const;

  // The nameConstraints extension value (critical when added to the root). Null when unconstrained.
  Result<bssl::UniquePtr<NAME_CONSTRAINTS>> ToNameConstraints() const;

  // Human-readable: "permitted: example.com, .test; excluded: 0.0.0.0/0, ::/0" or "unconstrained".
  std::string ToString() const;

  const std::vector<std::string>& permitted_dns() const { return permitted_dns_; }
  const std::vector<IpRange>& permitted_ips() const { return permitted_ips_; }

 private:
  bool constrained_ = false;
  std::vector<std::string> permitted_dns_, excluded_dns_;
  std::vector<IpRange> permitted_ips_, excluded_ips_;
};

}  // namespace mitmd::ca
