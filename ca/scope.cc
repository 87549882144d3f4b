#include "ca/scope.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <charconv>

#include "ca/leaf_names.h"
#include "ca/x509_util.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr size_t kV4Bytes = 4;
constexpr size_t kV6Bytes = 16;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<uint8_t> IpBytes(std::string_view text) {
  std::string canonical = CanonicalIp(text);
  if (canonical.empty()) return {};
  uint8_t bytes[kV6Bytes];
  if (inet_pton(AF_INET, canonical.c_str(), bytes) == 1) return {bytes, bytes + kV4Bytes};
  if (inet_pton(AF_INET6, canonical.c_str(), bytes) == 1) return {bytes, bytes + kV6Bytes};
  return {};
}

IpRange MakeRange(std::vector<uint8_t> address, int prefix) {
  IpRange range;
  range.mask.assign(address.size(), 0);
  for (size_t i = 0; i < address.size(); ++i) {
    int bits = std::clamp(prefix - static_cast<int>(i) * 8, 0, 8);
    range.mask[i] = static_cast<uint8_t>(0xff00 >> bits);
    address[i] &= range.mask[i];
  }
  range.address = std::move(address);
  return range;
}

Result<IpRange> ParseNetwork(std::string_view text) {
  size_t slash = text.find('/');
  std::vector<uint8_t> address = IpBytes(text.substr(0, slash));
  if (address.empty()) return Fail(StrCat("'", text, "' is not an IP address or network"));
  int max_prefix = static_cast<int>(address.size() * 8);
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
        prefix > max_prefix) {
      return Fail(StrCat("'", text, "': the prefix length must be 0 to ", max_prefix));
    }
  }
  return MakeRange(std::move(address), prefix);
}

bool DnsMatches(std::string_view name, std::string_view base) {
  if (base.empty()) return true;
  if (name.size() < base.size()) return false;
  if (name.size() > base.size() && base.front() != '.' &&
      name[name.size() - base.size() - 1] != '.') {
    return false;
  }
  return name.substr(name.size() - base.size()) == base;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Status AddSubtree(STACK_OF(GENERAL_SUBTREE) * *stack, bssl::UniquePtr<GENERAL_NAME> name) {
  if (*stack == nullptr) *stack = sk_GENERAL_SUBTREE_new_null();
  bssl::UniquePtr<GENERAL_SUBTREE> subtree(GENERAL_SUBTREE_new());
  if (*stack == nullptr || !subtree) return Fail("out of memory");
  GENERAL_NAME_free(subtree->base);
  subtree->base = name.release();
  if (!sk_GENERAL_SUBTREE_push(*stack, subtree.get())) return Fail("out of memory");
  subtree.release();
  return {};
}

bssl::UniquePtr<GENERAL_NAME> DnsName(const std::string& name) {
  bssl::UniquePtr<GENERAL_NAME> gn(GENERAL_NAME_new());
  bssl::UniquePtr<ASN1_IA5STRING> ia5(ASN1_IA5STRING_new());
  if (!gn || !ia5 || !ASN1_STRING_set(ia5.get(), name.data(), name.size())) return nullptr;
  GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5.release());
  return gn;
}

bssl::UniquePtr<GENERAL_NAME> IpName(const IpRange& range) {
  std::vector<uint8_t> bytes = range.address;
  bytes.insert(bytes.end(), range.mask.begin(), range.mask.end());
  bssl::UniquePtr<GENERAL_NAME> gn(GENERAL_NAME_new());
  bssl::UniquePtr<ASN1_OCTET_STRING> octets(ASN1_OCTET_STRING_new());
  if (!gn || !octets || !ASN1_OCTET_STRING_set(octets.get(), bytes.data(), bytes.size()))
    return nullptr;
  GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, octets.release());
  return gn;
}

// Reads the DNS and IP subtrees of |stack| into |dns| and |ips|.
void ReadSubtrees(const STACK_OF(GENERAL_SUBTREE) * stack, std::vector<std::string>& dns,
                  std::vector<IpRange>& ips) {
  for (size_t i = 0; i < sk_GENERAL_SUBTREE_num(stack); ++i) {
    const GENERAL_NAME* base = sk_GENERAL_SUBTREE_value(stack, i)->base;
    if (base->type == GEN_DNS) {
      const ASN1_IA5STRING* s = base->d.dNSName;
      dns.push_back(Lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                           ASN1_STRING_length(s))));
    } else if (base->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = base->d.iPAddress;
      const uint8_t* data = ASN1_STRING_get0_data(s);
      size_t len = ASN1_STRING_length(s);
      if (len != 2 * kV4Bytes && len != 2 * kV6Bytes) continue;
      ips.push_back(IpRange{{data, data + len / 2}, {data + len / 2, data + len}});
    }
  }
}

std::string Join(const std::vector<std::string>& dns, const std::vector<IpRange>& ips) {
  std::string out;
  for (const auto& d : dns)
    out += (out.empty() ? "" : ", ") + (d.empty() ? std::string("(all names)") : d);
  for (const auto& r : ips) out += (out.empty() ? "" : ", ") + r.ToString();
  return out;
}

}  // namespace

bool IpRange::Contains(const std::vector<uint8_t>& ip) const {
  if (ip.size() != address.size()) return false;
  for (size_t i = 0; i < ip.size(); ++i) {
    if ((ip[i] & mask[i]) != address[i]) return false;
  }
  return true;
}

std::string IpRange::ToString() const {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(address.size() == kV4Bytes ? AF_INET : AF_INET6, address.data(), text, sizeof(text));
  int prefix = 0;
  for (uint8_t b : mask) prefix += __builtin_popcount(b);
  return StrCat(text, "/", prefix);
}

Result<Scope> Scope::Parse(std::string_view list) {
  Scope scope;
  scope.constrained_ = true;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view entry = Trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (entry.empty()) continue;
    if (entry.find('/') != std::string_view::npos || !CanonicalIp(entry).empty()) {
      auto range = ParseNetwork(entry);
      if (!range) return Fail("--scope: " + range.error().message);
      scope.permitted_ips_.push_back(std::move(*range));
      continue;
    }
    bool subdomains_only = entry.front() == '.';
    std::string name = CanonicalDnsName(subdomains_only ? entry.substr(1) : entry);
    if (name.empty() || name.starts_with("*")) {
      return Fail(StrCat("--scope: '", entry,
                         "' is not a domain (use example.com, .example.com or a network)"));
    }
    scope.permitted_dns_.push_back(subdomains_only ? "." + name : name);
  }
  if (scope.permitted_dns_.empty() && scope.permitted_ips_.empty()) {
    return Fail("--scope: give at least one domain or network, e.g. --scope example.com,.test");
  }
  // A kind of name the list does not mention is excluded entirely: without this, a scope of
  // domains would leave every IP address unconstrained, and the other way round.
  if (scope.permitted_ips_.empty()) {
    scope.excluded_ips_.push_back(MakeRange(std::vector<uint8_t>(kV4Bytes, 0), 0));
    scope.excluded_ips_.push_back(MakeRange(std::vector<uint8_t>(kV6Bytes, 0), 0));
  }
  if (scope.permitted_dns_.empty()) scope.excluded_dns_.push_back("");
  return scope;
}

Result<Scope> Scope::Of(X509* cert) {
  int critical = -1;
  bssl::UniquePtr<NAME_CONSTRAINTS> nc(static_cast<NAME_CONSTRAINTS*>(
      X509_get_ext_d2i(cert, NID_name_constraints, &critical, nullptr)));
  Scope scope;
  if (!nc) {
    if (critical == -1) return scope;
    return Fail("the name constraints extension is malformed: " + SslErrors());
  }
  scope.constrained_ = true;
  ReadSubtrees(nc->permittedSubtrees, scope.permitted_dns_, scope.permitted_ips_);
  ReadSubtrees(nc->excludedSubtrees, scope.excluded_dns_, scope.excluded_ips_);
  return scope;
}

bool Scope::Permits(std::string_view host) const {
  if (!constrained_) return true;
  if (std::vector<uint8_t> ip = IpBytes(host); !ip.empty()) {
    auto contains = [&ip](const IpRange& r) { return r.Contains(ip); };
    if (!permitted_ips_.empty() &&
        std::none_of(permitted_ips_.begin(), permitted_ips_.end(), contains)) {
      return false;
    }
    return std::none_of(excluded_ips_.begin(), excluded_ips_.end(), contains);
  }
  std::string name = CanonicalDnsName(host);
  if (name.empty()) return false;
  auto matches = [&name](const std::string& base) { return DnsMatches(name, base); };
  if (!permitted_dns_.empty() &&
      std::none_of(permitted_dns_.begin(), permitted_dns_.end(), matches)) {
    return false;
  }
  return std::none_of(excluded_dns_.begin(), excluded_dns_.end(), matches);
}

Result<bssl::UniquePtr<NAME_CONSTRAINTS>> Scope::ToNameConstraints() const {
  if (!constrained_) return bssl::UniquePtr<NAME_CONSTRAINTS>();
  bssl::UniquePtr<NAME_CONSTRAINTS> nc(NAME_CONSTRAINTS_new());
  if (!nc) return Fail("out of memory");
  auto add_all = [](STACK_OF(GENERAL_SUBTREE) * *stack, const std::vector<std::string>& dns,
                    const std::vector<IpRange>& ips) -> Status {
    for (const auto& d : dns) {
      auto gn = DnsName(d);
      if (!gn) return Fail("out of memory");
      if (auto st = AddSubtree(stack, std::move(gn)); !st) return st;
    }
    for (const auto& r : ips) {
      auto gn = IpName(r);
      if (!gn) return Fail("out of memory");
      if (auto st = AddSubtree(stack, std::move(gn)); !st) return st;
    }
    return {};
  };
  if (auto st = add_all(&nc->permittedSubtrees, permitted_dns_, permitted_ips_); !st) {
    return std::unexpected(st.error());
  }
  if (auto st = add_all(&nc->excludedSubtrees, excluded_dns_, excluded_ips_); !st) {
    return std::unexpected(st.error());
  }
  return nc;
}

std::string Scope::ToString() const {
  if (!constrained_) return "unconstrained";
  std::string permitted = Join(permitted_dns_, permitted_ips_);
  std::string excluded = Join(excluded_dns_, excluded_ips_);
  std::string out = "permitted: " + (permitted.empty() ? std::string("(any)") : permitted);
  if (!excluded.empty()) out += "; excluded: " + excluded;
  return out;
}

}  // namespace mitmd::ca
