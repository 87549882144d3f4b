#include "core/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "core/strings.h"

namespace mitmd {
namespace {

Result<uint64_t> ParsePort(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Fail(StrCat("'", text, "' is not a whole number"));
  }
  return value;
}

}  // namespace

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return StrCat("[", host, "]:", port);
  return StrCat(host, ":", port);
}

Result<HostPort> ParseHostPort(std::string_view text, std::string_view default_host) {
  HostPort hp;
  std::string_view port_text;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Fail(StrCat("'", text, "' is not [IPv6]:PORT"));
    }
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Fail(StrCat("'", text, "' is not HOST:PORT"));
    hp.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) {
      return Fail(StrCat("'", text, "': put IPv6 addresses in brackets, e.g. [::1]:8080"));
    }
  }
  if (hp.host.empty()) hp.host = std::string(default_host);
  auto port = ParsePort(port_text);
  if (!port || *port > 65535) return Fail(StrCat("'", text, "' has no valid port (0-65535)"));
  hp.port = static_cast<uint16_t>(*port);
  return hp;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a4;
  std::string h(host);
  if (h.starts_with("::ffff:")) h = h.substr(7);
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return false;
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  Cidr c;
  std::string addr(text.substr(0, text.find('/')));
  if (inet_pton(AF_INET, addr.c_str(), c.bytes_) == 1) {
    c.family_ = AF_INET;
    c.prefix_ = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.bytes_) == 1) {
    c.family_ = AF_INET6;
    c.prefix_ = 128;
  } else {
    return Fail(StrCat("'", text, "' is not an IP network (e.g. 127.0.0.0/8 or ::1/128)"));
  }
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    auto prefix = ParsePort(text.substr(slash + 1));
    if (!prefix || *prefix > static_cast<uint64_t>(c.prefix_)) {
      return Fail(StrCat("'", text, "' has an invalid prefix length"));
    }
    c.prefix_ = static_cast<int>(*prefix);
  }
  return c;
}

bool Cidr::Contains(const sockaddr* addr) const {
  const uint8_t* bytes = nullptr;
  uint8_t mapped[4];
  if (addr->sa_family == AF_INET && family_ == AF_INET) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(addr)->sin_addr);
  } else if (addr->sa_family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
    if (family_ == AF_INET6) {
      bytes = a6->s6_addr;
    } else if (IN6_IS_ADDR_V4MAPPED(a6)) {
      std::memcpy(mapped, a6->s6_addr + 12, 4);
      bytes = mapped;
    }
  }
  if (bytes == nullptr) return false;
  int full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(bytes, bytes_, full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (bytes_[full] & mask);
}

bool Cidr::ContainsIp(std::string_view ip) const {
  std::string text(ip);
  sockaddr_storage ss{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, text.c_str(), &sin->sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), &sin6->sin6_addr) == 1) {
    ss.ss_family = AF_INET6;
  } else {
    return false;
  }
  return Contains(reinterpret_cast<const sockaddr*>(&ss));
}

std::string AddressWithoutPort(std::string_view address) {
  if (address.starts_with('[')) {
    size_t close = address.find(']');
    return std::string(address.substr(1, close == std::string_view::npos ? close : close - 1));
  }
  size_t colon = address.find(':');
  // One colon: IPv4 with a port. None, or several (a bare IPv6 address): as it is.
  if (colon != std::string_view::npos && address.find(':', colon + 1) == std::string_view::npos) {
    return std::string(address.substr(0, colon));
  }
  return std::string(address);
}

bool InNetworks(const std::vector<Cidr>& nets, std::string_view address) {
  if (nets.empty()) return false;
  std::string ip = AddressWithoutPort(address);
  for (const Cidr& net : nets) {
    if (net.ContainsIp(ip)) return true;
  }
  return false;
}

std::string Cidr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_, bytes_, buf, sizeof(buf));
  return StrCat(buf, "/", prefix_);
}

}  // namespace mitmd
