#include "flow/connection_registry.h"

#include <algorithm>
#include <chrono>

namespace mitmd {
namespace {

double WallClock() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string_view ToString(ConnSide side) {
  return side == ConnSide::kClient ? "client" : "upstream";
}

std::string_view ToString(ClosedBy who) {
  switch (who) {
    case ClosedBy::kNotClosed: return "";
    case ClosedBy::kPeer: return "peer";
    case ClosedBy::kMitmd: return "mitmd";
  }
  return "";
}

nlohmann::json ConnectionToJson(const ConnectionInfo& c, double now) {
  nlohmann::json j = {{"id", c.id},
                      {"side", ToString(c.side)},
                      {"peer", c.peer_addr},
                      {"local", c.local_addr},
                      {"host", c.host},
                      {"port", c.port},
                      {"opened", c.opened},
                      {"last_active", c.last_active},
                      {"idle", std::max(0.0, (c.closed > 0 ? c.closed : now) - c.last_active)},
                      {"bytes_in", c.bytes_in},
                      {"bytes_out", c.bytes_out},
                      {"requests", c.requests},
                      {"open", c.closed == 0}};
  if (c.side == ConnSide::kUpstream) {
    j["client"] = c.client_id;
    j["clients"] = c.clients;
    if (c.more_clients) j["more_clients"] = true;
    j["reused"] = c.reused();
  }
  if (c.tls) {
    j["tls"] = {{"version", c.tls->version}, {"cipher", c.tls->cipher}, {"alpn", c.tls->alpn},
                {"sni", c.tls->sni}};
  }
  if (c.closed > 0) {
    j["closed"] = c.closed;
    j["closed_by"] = ToString(c.closed_by);
    j["close_reason"] = c.close_reason;
  }
  return j;
}

ConnectionRegistry::ConnectionRegistry(size_t closed_history, Clock clock)
    : clock_(clock ? std::move(clock) : Clock(WallClock)), closed_history_(closed_history) {}

double ConnectionRegistry::Now() const { return clock_(); }

uint64_t ConnectionRegistry::Insert(ConnectionInfo info) {
  info.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  info.opened = info.last_active = clock_();
  uint64_t id = info.id;
  {
    Shard& s = ShardFor(id);
    std::lock_guard lock(s.mu);
    s.open.emplace(id, std::move(info));
  }
  version_.fetch_add(1, std::memory_order_relaxed);
  Notify();
  return id;
}

uint64_t ConnectionRegistry::OpenClient(std::string peer_addr, std::string local_addr) {
  ConnectionInfo c;
  c.side = ConnSide::kClient;
  c.peer_addr = std::move(peer_addr);
  c.local_addr = std::move(local_addr);
  return Insert(std::move(c));
}

uint64_t ConnectionRegistry::OpenUpstream(uint64_t client_id, std::string host, uint16_t port) {
  ConnectionInfo c;
  c.side = ConnSide::kUpstream;
  c.client_id = client_id;
  c.host = std::move(host);
  c.port = port;
  return Insert(std::move(c));
}

template <typename Fn>
bool ConnectionRegistry::Update(uint64_t id, bool notify, Fn&& fn) {
  {
    Shard& s = ShardFor(id);
    std::lock_guard lock(s.mu);
    auto it = s.open.find(id);
    if (it == s.open.end()) return false;
    fn(it->second);
  }
  version_.fetch_add(1, std::memory_order_relaxed);
  if (notify) Notify();
  return true;
}

void ConnectionRegistry::SetTarget(uint64_t id, std::string host, uint16_t port) {
  Update(id, true, [&](ConnectionInfo& c) {
    c.host = std::move(host);
    c.port = port;
  });
}

void ConnectionRegistry::SetAddresses(uint64_t id, std::string peer_addr, std::string local_addr) {
  Update(id, true, [&](ConnectionInfo& c) {
    c.peer_addr = std::move(peer_addr);
    c.local_addr = std::move(local_addr);
  });
}

void ConnectionRegistry::SetTls(uint64_t id, TlsInfo tls) {
  Update(id, true, [&](ConnectionInfo& c) { c.tls = std::move(tls); });
}

void ConnectionRegistry::AddBytes(uint64_t id, uint64_t bytes_in, uint64_t bytes_out) {
  double now = clock_();
  Update(id, false, [&](ConnectionInfo& c) {
    c.bytes_in += bytes_in;
    c.bytes_out += bytes_out;
    c.last_active = now;
  });
}

void ConnectionRegistry::AddRequest(uint64_t id, uint64_t client_id) {
  double now = clock_();
  bool changed = false;  // reused for the first time, or by another client connection
  Update(id, false, [&](ConnectionInfo& c) {
    ++c.requests;
    c.last_active = now;
    changed = c.side == ConnSide::kUpstream && c.requests == 2;
    if (c.side != ConnSide::kUpstream || client_id == 0 ||
        std::find(c.clients.begin(), c.clients.end(), client_id) != c.clients.end()) {
      return;
    }
    if (c.clients.size() < ConnectionInfo::kMaxClientsListed) {
      c.clients.push_back(client_id);
      changed = true;
    } else {
      c.more_clients = true;
    }
  });
  if (changed) Notify();
}

void ConnectionRegistry::Close(uint64_t id, ClosedBy who, std::string reason) {
  ConnectionInfo info;
  {
    Shard& s = ShardFor(id);
    std::lock_guard lock(s.mu);
    auto it = s.open.find(id);
    if (it == s.open.end()) return;
    info = std::move(it->second);
    s.open.erase(it);
  }
  info.closed = clock_();
  info.closed_by = who;
  info.close_reason = std::move(reason);
  {
    std::lock_guard lock(closed_mu_);
    closed_.push_front(std::move(info));
    while (closed_.size() > closed_history_) closed_.pop_back();
  }
  version_.fetch_add(1, std::memory_order_relaxed);
  Notify();
}

std::vector<ConnectionInfo> ConnectionRegistry::Snapshot() const {
  std::vector<ConnectionInfo> out;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [id, info] : s.open) out.push_back(info);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::lock_guard lock(closed_mu_);
  out.insert(out.end(), closed_.begin(), closed_.end());
  return out;
}

std::optional<ConnectionInfo> ConnectionRegistry::Find(uint64_t id) const {
  {
    const Shard& s = ShardFor(id);
    std::lock_guard lock(s.mu);
    if (auto it = s.open.find(id); it != s.open.end()) return it->second;
  }
  std::lock_guard lock(closed_mu_);
  for (const auto& c : closed_) {
    if (c.id == id) return c;
  }
  return std::nullopt;
}

size_t ConnectionRegistry::open_count() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.open.size();
  }
  return n;
}

uint64_t ConnectionRegistry::Subscribe(std::function<void()> listener) {
  std::lock_guard lock(listeners_mu_);
  uint64_t token = next_token_++;
  listeners_.emplace_back(token, std::move(listener));
  return token;
}

void ConnectionRegistry::Unsubscribe(uint64_t token) {
  std::lock_guard lock(listeners_mu_);
  std::erase_if(listeners_, [token](const auto& p) { return p.first == token; });
}

void ConnectionRegistry::Notify() {
  std::vector<std::function<void()>> copy;
  {
    std::lock_guard lock(listeners_mu_);
    if (listeners_.empty()) return;
    for (const auto& [token, fn] : listeners_) copy.push_back(fn);
  }
  for (auto& fn : copy) fn();
}

}  // namespace mitmd
