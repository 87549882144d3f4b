#pragma once
// UpstreamPool: one worker's idle upstream connections, reused across client connections.
// A connection comes back (Return) after a kept-alive exchange and waits, idle, under its key
// (host, port, TLS, SNI, ALPN offer, insecure; the client certificate follows from the host),
// for the next Connect with the same key. While idle it is watched: the server closing it, or
// sending anything, drops it, so a request is never sent on a connection known to be dead.
// What the pool does not have it asks |dialer| for.
//
// An HTTP/2 connection is shared instead (shared_h2.h): every Connect with its key gets a lease
// of it, one stream each, up to the server's limit of concurrent streams, from any client
// connection of the worker; then another one is dialed. While a dial that may turn out HTTP/2
// is under way, later Connects with the same key wait for it rather than dial too (30 streams
// of one page make one connection, not 30).

#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <vector>

#include "proxy/timers.h"
#include "proxy/upstream/h2_only_hosts.h"
#include "proxy/upstream/shared_h2.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

struct PoolLimits {
  size_t max_idle_per_key = 8;
  std::chrono::milliseconds idle_timeout{60'000};
};

class UpstreamPool : public Upstreams {
 public:
  // |dialer|, |timers| and |registry| (may be null: shared connections then report their byte
  // counts only when they close) outlive the pool.
  UpstreamPool(Upstreams& dialer, Timers& timers, PoolLimits limits = {},
               ConnectionRegistry* registry = nullptr);
  ~UpstreamPool() override;

  std::unique_ptr<Pending> Connect(const UpstreamKey& key, uint64_t client_id,
                                   Callback done) override;
  std::unique_ptr<Pending> ConnectFresh(const UpstreamKey& key, uint64_t client_id,
                                        Callback done) override;
  // An idle HTTP/1 connection (HTTP/2 leases go through Connect's handout).
  std::unique_ptr<UpstreamConn> TakeIdle(const UpstreamKey& key) override;
  void Release(std::unique_ptr<UpstreamConn> conn, std::string_view reason) override;
  void Return(std::unique_ptr<UpstreamConn> conn) override;
  H2OnlyHosts* h2_only_hosts() override { return &h2_only_; }

  size_t idle_count() const { return idle_.size(); }
  size_t shared_count() const { return shared_.size(); }

 private:
  class Idle;
  class Handout;
  class Dial;
  class Waiter;
  // Removes |idle| from the pool and closes its connection.
  void Drop(Idle* idle, std::string_view reason);
  // Dials for |key| and shares the connection if it is HTTP/2; |joinable|: later Connects with
  // the key wait for this dial.
  std::unique_ptr<Pending> DialShared(const UpstreamKey& key, uint64_t client_id, Callback done,
                                      bool joinable);
  void OnDialed(Dial* dial, Outcome outcome);
  void CancelDial(Dial* dial);
  // Makes |conn| (HTTP/2) a shared connection.
  SharedH2Conn& Share(std::unique_ptr<UpstreamConn> conn);
  // A shared connection is done: closed once the current callbacks have returned.
  void Retire(SharedH2Conn& shared, std::string_view reason);
  // Keys whose server answered an h2 offer with HTTP/1: their Connects dial at once, in
  // parallel, instead of waiting for one dial (the most recent kHttp1KeysKept are known).
  bool KnownHttp1(const UpstreamKey& key) const;
  void RememberHttp1(const UpstreamKey& key);
  static constexpr size_t kHttp1KeysKept = 256;

  Upstreams& dialer_;
  Timers& timers_;
  const PoolLimits limits_;
  ConnectionRegistry* const registry_;
  std::vector<std::unique_ptr<Idle>> idle_;  // most recently returned last
  // Holders of connections taken out, for the next ones returned (at most kSpareIdle).
  std::vector<std::unique_ptr<Idle>> spare_;
  static constexpr size_t kSpareIdle = 8;
  std::list<std::unique_ptr<SharedH2Conn>> shared_;  // newest last
  std::list<std::unique_ptr<Dial>> dials_;
  std::deque<UpstreamKey> http1_keys_;
  H2OnlyHosts h2_only_;
  std::vector<std::pair<std::unique_ptr<SharedH2Conn>, std::string>> retired_;
  std::unique_ptr<Timer> retire_timer_;
};

}  // namespace mitmd::proxy
