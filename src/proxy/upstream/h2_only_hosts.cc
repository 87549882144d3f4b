#include "proxy/upstream/h2_only_hosts.h"

#include "core/strings.h"

namespace mitmd::proxy {

std::string H2OnlyHosts::Key(std::string_view host, uint16_t port) {
  return StrCat(host, ":", port);
}

const std::string* H2OnlyHosts::Find(std::string_view host, uint16_t port, double now) {
  if (entries_.empty()) return nullptr;  // the usual case: no key built
  auto it = entries_.find(Key(host, port));
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= now) {
    Erase(it);
    return nullptr;
  }
  return &it->second.why;
}

void H2OnlyHosts::Remember(std::string_view host, uint16_t port, std::string why, double now) {
  if (capacity_ == 0) return;
  std::string key = Key(host, port);
  if (auto it = entries_.find(key); it != entries_.end()) Erase(it);
  while (entries_.size() >= capacity_) Erase(entries_.find(order_.front()));
  order_.push_back(key);
  entries_.emplace(std::move(key),
                   Entry{.why = std::move(why), .expires = now + ttl_,
                         .order = std::prev(order_.end())});
}

void H2OnlyHosts::Erase(std::unordered_map<std::string, Entry>::iterator it) {
  order_.erase(it->second.order);
  entries_.erase(it);
}

}  // namespace mitmd::proxy
