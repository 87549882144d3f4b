#pragma once
// The live registry of client and upstream connections, for the viewer's Connections view:
// what is open, how much each carried, whether an upstream connection was reused, and, once
// closed, which side closed first (that side's socket sits in TIME_WAIT).
//
// Called from every worker thread; updates take one small per-shard lock, so connections on
// different threads rarely contend. Ids are unique across both kinds and are the ids flows carry
// (Flow::client_conn_id, Flow::upstream_conn_id).

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "flow/flow.h"

namespace mitmd {

enum class ConnSide { kClient, kUpstream };
// Who closed first. kMitmd: mitmd's socket goes to TIME_WAIT; kPeer: the client's or server's.
enum class ClosedBy { kNotClosed, kPeer, kMitmd };

struct ConnectionInfo {
  static constexpr size_t kMaxClientsListed = 32;

  uint64_t id = 0;
  ConnSide side = ConnSide::kClient;
  std::string peer_addr;   // the other end: the client, or the server we dialed
  std::string local_addr;  // our end
  std::string host;        // upstream: the host dialed; client: the CONNECT target once known
  uint16_t port = 0;
  uint64_t client_id = 0;  // upstream: the client connection it was opened for
  // Upstream: the client connections it carried requests for (a pooled connection serves
  // several), in the order they first used it, at most kMaxClientsListed of them.
  std::vector<uint64_t> clients;
  bool more_clients = false;  // ... and others past the list
  double opened = 0;       // epoch seconds
  double last_active = 0;
  double closed = 0;       // 0 while open
  uint64_t bytes_in = 0;   // received from the peer
  uint64_t bytes_out = 0;  // sent to the peer
  uint64_t requests = 0;   // requests carried
  std::optional<TlsInfo> tls;
  ClosedBy closed_by = ClosedBy::kNotClosed;
  std::string close_reason;

  // An upstream connection carried more than one request.
  bool reused() const { return side == ConnSide::kUpstream && requests > 1; }
};

std::string_view ToString(ConnSide side);
std::string_view ToString(ClosedBy who);
nlohmann::json ConnectionToJson(const ConnectionInfo& c, double now);

class ConnectionRegistry {
 public:
  using Clock = std::function<double()>;  // epoch seconds

  // Remembers the last |closed_history| closed connections. |clock| defaults to the wall clock.
  explicit ConnectionRegistry(size_t closed_history = 2000, Clock clock = {});
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  // A client connection was accepted. Returns its id.
  uint64_t OpenClient(std::string peer_addr, std::string local_addr);
  // An upstream connection is being dialed for |client_id|. Returns its id.
  uint64_t OpenUpstream(uint64_t client_id, std::string host, uint16_t port);

  // Facts learned after opening; unknown ids (already closed) are ignored by all of these.
  void SetTarget(uint64_t id, std::string host, uint16_t port);
  void SetAddresses(uint64_t id, std::string peer_addr, std::string local_addr);
  void SetTls(uint64_t id, TlsInfo tls);
  void AddBytes(uint64_t id, uint64_t bytes_in, uint64_t bytes_out);
  // A request went over |id|; for an upstream connection, on behalf of client connection
  // |client_id|.
  void AddRequest(uint64_t id, uint64_t client_id = 0);

  // Moves |id| to the closed history. The first call wins; later ones are ignored.
  void Close(uint64_t id, ClosedBy who, std::string reason);

  // Open connections by id, then closed ones, most recently closed first.
  std::vector<ConnectionInfo> Snapshot() const;
  std::optional<ConnectionInfo> Find(uint64_t id) const;
  size_t open_count() const;
  // Bumped by every change, including byte counts: a poller can skip unchanged snapshots.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  double Now() const;

  // |listener| runs on the calling thread after an open, close, target or TLS change (not after
  // byte counts). It must be quick and must not call back into the registry.
  uint64_t Subscribe(std::function<void()> listener);
  void Unsubscribe(uint64_t token);

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, ConnectionInfo> open;
  };

  Shard& ShardFor(uint64_t id) { return shards_[id % kShards]; }
  const Shard& ShardFor(uint64_t id) const { return shards_[id % kShards]; }
  uint64_t Insert(ConnectionInfo info);
  template <typename Fn>
  bool Update(uint64_t id, bool notify, Fn&& fn);
  void Notify();

  Clock clock_;
  size_t closed_history_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> version_{0};
  Shard shards_[kShards];
  mutable std::mutex closed_mu_;
  std::deque<ConnectionInfo> closed_;  // newest at the front
  mutable std::mutex listeners_mu_;
  uint64_t next_token_ = 1;
  std::vector<std::pair<uint64_t, std::function<void()>>> listeners_;
};

}  // namespace mitmd
