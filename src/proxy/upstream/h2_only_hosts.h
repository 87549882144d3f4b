#pragma once
// The servers one worker has learned speak only HTTP/2 (alpn_policy.h): an HTTP/1 client's
// connections to them offer h2 at once instead of failing first. Bounded (the least recently
// learned entry goes first) and expiring, as a cache: a server that later speaks HTTP/1.1 again
// is mirrored again once its entry expires.

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mitmd::proxy {

class H2OnlyHosts {
 public:
  static constexpr size_t kDefaultCapacity = 1024;
  static constexpr double kDefaultTtl = 3600;  // seconds

  explicit H2OnlyHosts(size_t capacity = kDefaultCapacity, double ttl = kDefaultTtl)
      : capacity_(capacity), ttl_(ttl) {}

  // Why |host|:|port| is known to speak only HTTP/2 ("it answered HTTP/1.1 with HTTP/2
  // frames"), or null when it is not known to, or its entry expired before |now| (seconds).
  const std::string* Find(std::string_view host, uint16_t port, double now);
  // Remembers |host|:|port| as h2-only from |now| on, for |why|.
  void Remember(std::string_view host, uint16_t port, std::string why, double now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string why;
    double expires = 0;
    std::list<std::string>::iterator order;
  };
  static std::string Key(std::string_view host, uint16_t port);
  void Erase(std::unordered_map<std::string, Entry>::iterator it);

  const size_t capacity_;
  const double ttl_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // keys, least recently learned first
};

}  // namespace mitmd::proxy
