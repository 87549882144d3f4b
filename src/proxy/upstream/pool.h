#pragma once
// UpstreamPool: one worker's idle upstream connections, reused across client connections.
// A connection comes back (Return) after a kept-alive exchange and waits, idle, under its key
// (host, port, TLS, SNI, ALPN offer, insecure; the client certificate follows from the host),
// for the next Connect with the same key. While idle it is watched: the server closing it, or
// sending anything, drops it, so a request is never sent on a connection known to be dead.
// What the pool does not have it asks |dialer| for.

#include <chrono>
#include <list>
#include <memory>

#include "proxy/timers.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

struct PoolLimits {
  size_t max_idle_per_key = 8;
  std::chrono::milliseconds idle_timeout{60'000};
};

class UpstreamPool : public Upstreams {
 public:
  // |dialer| and |timers| outlive the pool.
  UpstreamPool(Upstreams& dialer, Timers& timers, PoolLimits limits = {});
  ~UpstreamPool() override;

  std::unique_ptr<Pending> Connect(const UpstreamKey& key, uint64_t client_id,
                                   Callback done) override;
  std::unique_ptr<Pending> ConnectFresh(const UpstreamKey& key, uint64_t client_id,
                                        Callback done) override;
  void Release(std::unique_ptr<UpstreamConn> conn, std::string_view reason) override;
  void Return(std::unique_ptr<UpstreamConn> conn) override;

  size_t idle_count() const { return idle_.size(); }

 private:
  class Idle;
  class Handout;
  // Removes |idle| from the pool and closes its connection.
  void Drop(Idle* idle, std::string_view reason);

  Upstreams& dialer_;
  Timers& timers_;
  const PoolLimits limits_;
  std::list<std::unique_ptr<Idle>> idle_;  // most recently returned last
};

}  // namespace mitmd::proxy
