#include "proxy/upstream/pool.h"

#include <algorithm>

namespace mitmd::proxy {
namespace {

// The offer may end in HTTP/2, whose connection is shared (every one of them: an exchange
// gives a stream's window back only through a lease): worth waiting for one dial.
bool MayShare(const UpstreamKey& key) {
  return key.tls && std::any_of(key.alpn.begin(), key.alpn.end(), [](const std::string& p) {
           return p == "h2" || p == "grpc-exp";
         });
}

bool IsHttp2(const UpstreamConn& conn) {
  return conn.codec && conn.codec->protocol() == http::Protocol::kHttp2 && !AsLease(conn);
}

}  // namespace

// An idle connection: watched for the server closing it, and for its idle timeout. Taken out,
// the holder and its timer wait in spare_ for the next connection returned (a keep-alive client
// returns and takes its upstream connection once per request).
class UpstreamPool::Idle : public WireObserver {
 public:
  explicit Idle(UpstreamPool& pool) : pool_(pool) {
    timer_ = pool_.timers_.New("pool_idle", [this] { pool_.Drop(this, "idle in the pool too long"); });
  }
  void Hold(std::unique_ptr<UpstreamConn> conn) {
    conn_ = std::move(conn);
    conn_->wire->set_observer(this);
    timer_->Arm(pool_.limits_.idle_timeout);
  }
  ~Idle() override {
    if (conn_) conn_->wire->set_observer(nullptr);
  }

  void OnWireEvent(Wire&, WireEvent event) override {
    switch (event) {
      case WireEvent::kEof:
        conn_->peer_closed = true;
        pool_.Drop(this, "the server closed the idle connection");
        return;
      case WireEvent::kError:
        pool_.Drop(this, "the idle connection failed");
        return;
      case WireEvent::kReadable:
        // Nothing can frame bytes sent with no request in flight.
        pool_.Drop(this, "the server sent bytes with no request in flight");
        return;
      default:
        return;
    }
  }

  std::unique_ptr<UpstreamConn> Take() {
    timer_->Cancel();
    conn_->wire->set_observer(nullptr);
    return std::move(conn_);
  }
  const UpstreamConn& conn() const { return *conn_; }

 private:
  UpstreamPool& pool_;
  std::unique_ptr<UpstreamConn> conn_;
  std::unique_ptr<Timer> timer_;
};

// A pooled connection on its way to the caller: delivered on the next loop turn (callbacks
// never run inside Connect); back to the pool if the caller gives up first.
class UpstreamPool::Handout : public Upstreams::Pending {
 public:
  Handout(UpstreamPool& pool, std::unique_ptr<UpstreamConn> conn, Callback done)
      : pool_(pool), conn_(std::move(conn)), done_(std::move(done)) {
    timer_ = pool_.timers_.New("pool_handout", [this] {
      Callback done = std::move(done_);
      done(std::move(conn_));  // may destroy this handout: nothing after
    });
    timer_->Arm(std::chrono::milliseconds(0));
  }
  ~Handout() override {
    if (conn_) pool_.Return(std::move(conn_));
  }

 private:
  UpstreamPool& pool_;
  std::unique_ptr<UpstreamConn> conn_;
  Callback done_;
  std::unique_ptr<Timer> timer_;
};

// A dial whose connection may be shared, and the Connects waiting for it.
class UpstreamPool::Dial {
 public:
  Dial(UpstreamKey key, bool joinable) : key(std::move(key)), joinable(joinable) {}
  const UpstreamKey key;
  const bool joinable;
  std::list<Waiter*> waiters;  // first come first
  std::unique_ptr<Pending> pending;
};

// One Connect waiting for a Dial; later, maybe, for another Connect (Redo).
class UpstreamPool::Waiter : public Upstreams::Pending {
 public:
  Waiter(UpstreamPool& pool, Dial* dial, uint64_t client_id, Callback done)
      : pool_(pool), dial_(dial), client_id_(client_id), done_(std::move(done)) {
    dial_->waiters.push_back(this);
  }
  ~Waiter() override {
    if (!dial_) return;
    dial_->waiters.remove(this);
    if (dial_->waiters.empty()) pool_.CancelDial(dial_);
  }
  // Out of its dial's list: the dial is ending.
  void Unlink() { dial_ = nullptr; }
  // May destroy this waiter.
  void Deliver(Outcome outcome) { std::move(done_)(std::move(outcome)); }
  // Asks again: the pool (another shared connection), or a dial of its own.
  void Redo(const UpstreamKey& key, bool own) {
    inner_ = own ? pool_.DialShared(key, client_id_, std::move(done_), /*joinable=*/false)
                 : pool_.Connect(key, client_id_, std::move(done_));
  }

 private:
  UpstreamPool& pool_;
  Dial* dial_;
  uint64_t client_id_;
  Callback done_;
  std::unique_ptr<Pending> inner_;
};

UpstreamPool::UpstreamPool(Upstreams& dialer, Timers& timers, PoolLimits limits,
                           ConnectionRegistry* registry)
    : dialer_(dialer), timers_(timers), limits_(limits), registry_(registry) {
  retire_timer_ = timers_.New("pool_retire", [this] {
    auto retired = std::move(retired_);
    retired_.clear();
    for (auto& [shared, reason] : retired) {
      if (auto conn = shared->TakeConn()) dialer_.Release(std::move(conn), reason);
    }
  });
}

UpstreamPool::~UpstreamPool() {
  while (!idle_.empty()) Drop(idle_.front().get(), "mitmd is stopping");
  for (auto& dial : dials_) {
    for (Waiter* waiter : dial->waiters) waiter->Unlink();
  }
  dials_.clear();
  for (auto& shared : shared_) {
    if (auto conn = shared->TakeConn()) dialer_.Release(std::move(conn), "mitmd is stopping");
  }
  for (auto& [shared, reason] : retired_) {
    if (auto conn = shared->TakeConn()) dialer_.Release(std::move(conn), reason);
  }
}

std::unique_ptr<Upstreams::Pending> UpstreamPool::Connect(const UpstreamKey& key,
                                                          uint64_t client_id, Callback done) {
  // A shared HTTP/2 connection with room for one more stream: the newest first.
  for (auto it = shared_.rbegin(); it != shared_.rend(); ++it) {
    if ((*it)->key() == key && (*it)->CanLease()) {
      return std::make_unique<Handout>(*this, (*it)->Lease(), std::move(done));
    }
  }
  if (auto idle = TakeIdle(key)) {
    return std::make_unique<Handout>(*this, std::move(idle), std::move(done));
  }
  if (MayShare(key)) {
    return DialShared(key, client_id, std::move(done), /*joinable=*/!KnownHttp1(key));
  }
  return dialer_.Connect(key, client_id, std::move(done));
}

std::unique_ptr<UpstreamConn> UpstreamPool::TakeIdle(const UpstreamKey& key) {
  // The most recently returned connection first: the least likely to have been closed.
  for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
    Idle* idle = it->get();
    if (!(idle->conn().key == key)) continue;
    if (!idle->conn().usable()) {
      Drop(idle, "the server closed the idle connection");
      return TakeIdle(key);
    }
    std::unique_ptr<UpstreamConn> conn = idle->Take();
    auto held = std::next(it).base();
    if (spare_.size() < kSpareIdle) spare_.push_back(std::move(*held));
    idle_.erase(held);
    return conn;
  }
  return nullptr;
}

bool UpstreamPool::KnownHttp1(const UpstreamKey& key) const {
  return std::find(http1_keys_.begin(), http1_keys_.end(), key) != http1_keys_.end();
}

void UpstreamPool::RememberHttp1(const UpstreamKey& key) {
  if (KnownHttp1(key)) return;
  if (http1_keys_.size() >= kHttp1KeysKept) http1_keys_.pop_front();
  http1_keys_.push_back(key);
}

std::unique_ptr<Upstreams::Pending> UpstreamPool::ConnectFresh(const UpstreamKey& key,
                                                               uint64_t client_id, Callback done) {
  if (MayShare(key)) return DialShared(key, client_id, std::move(done), /*joinable=*/false);
  return dialer_.Connect(key, client_id, std::move(done));
}

std::unique_ptr<Upstreams::Pending> UpstreamPool::DialShared(const UpstreamKey& key,
                                                             uint64_t client_id, Callback done,
                                                             bool joinable) {
  if (joinable) {
    for (auto& dial : dials_) {
      if (dial->joinable && dial->key == key) {
        return std::make_unique<Waiter>(*this, dial.get(), client_id, std::move(done));
      }
    }
  }
  Dial* dial = dials_.emplace_back(std::make_unique<Dial>(key, joinable)).get();
  auto waiter = std::make_unique<Waiter>(*this, dial, client_id, std::move(done));
  dial->pending = dialer_.Connect(key, client_id,
                                  [this, dial](Outcome outcome) { OnDialed(dial, std::move(outcome)); });
  return waiter;
}

void UpstreamPool::CancelDial(Dial* dial) {
  auto it = std::find_if(dials_.begin(), dials_.end(),
                         [dial](const auto& d) { return d.get() == dial; });
  if (it != dials_.end()) dials_.erase(it);  // cancels its dial
}

void UpstreamPool::OnDialed(Dial* dial, Outcome outcome) {
  auto it = std::find_if(dials_.begin(), dials_.end(),
                         [dial](const auto& d) { return d.get() == dial; });
  std::unique_ptr<Dial> owned = std::move(*it);
  dials_.erase(it);
  owned->pending.reset();  // done: called from it, which allows that
  SharedH2Conn* shared = outcome && IsHttp2(**outcome) ? &Share(std::move(*outcome)) : nullptr;
  if (outcome && !shared) RememberHttp1(owned->key);
  // Each callback may end other waiters (a client connection closing): they leave the list.
  while (!owned->waiters.empty()) {
    Waiter* waiter = owned->waiters.front();
    owned->waiters.pop_front();
    waiter->Unlink();
    if (!outcome) {
      waiter->Deliver(std::unexpected(outcome.error()));
    } else if (shared && shared->CanLease()) {
      waiter->Deliver(shared->Lease());
    } else if (shared) {
      waiter->Redo(owned->key, /*own=*/false);  // full: the next shared connection
    } else if (!*outcome) {
      // The server speaks HTTP/1, one request at a time: a connection each, dialed at once.
      waiter->Redo(owned->key, /*own=*/true);
    } else {
      waiter->Deliver(std::move(*outcome));
    }
  }
  if (outcome && *outcome) Release(std::move(*outcome), "nobody waits for it any more");
}

SharedH2Conn& UpstreamPool::Share(std::unique_ptr<UpstreamConn> conn) {
  return *shared_.emplace_back(std::make_unique<SharedH2Conn>(
      std::move(conn), timers_, limits_.idle_timeout,
      [this](SharedH2Conn& shared, std::string_view reason) { Retire(shared, reason); },
      registry_));
}

void UpstreamPool::Retire(SharedH2Conn& shared, std::string_view reason) {
  auto it = std::find_if(shared_.begin(), shared_.end(),
                         [&shared](const auto& s) { return s.get() == &shared; });
  if (it == shared_.end()) return;
  retired_.emplace_back(std::move(*it), std::string(reason));
  shared_.erase(it);
  retire_timer_->Arm(std::chrono::milliseconds(0));
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConn> conn, std::string_view reason) {
  if (AsLease(*conn)) return;  // its stream is reset; the shared connection goes on
  dialer_.Release(std::move(conn), reason);
}

void UpstreamPool::Return(std::unique_ptr<UpstreamConn> conn) {
  if (AsLease(*conn)) return;  // freed: one stream less on the shared connection
  if (IsHttp2(*conn) && conn->usable()) {
    Share(std::move(conn));
    return;
  }
  if (!conn->usable() || !conn->codec || !conn->codec->idle() ||
      evbuffer_get_length(conn->wire->input()) > 0) {
    Release(std::move(conn), "not reusable after the exchange");
    return;
  }
  size_t same = 0;
  for (const auto& idle : idle_) same += idle->conn().key == conn->key;
  if (same >= limits_.max_idle_per_key) {
    Release(std::move(conn), "the pool already holds enough idle connections to this server");
    return;
  }
  std::unique_ptr<Idle> idle;
  if (spare_.empty()) {
    idle = std::make_unique<Idle>(*this);
  } else {
    idle = std::move(spare_.back());
    spare_.pop_back();
  }
  idle->Hold(std::move(conn));
  idle_.push_back(std::move(idle));
}

void UpstreamPool::Drop(Idle* idle, std::string_view reason) {
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->get() != idle) continue;
    std::unique_ptr<Idle> owned = std::move(*it);
    idle_.erase(it);
    Release(owned->Take(), reason);
    return;
  }
}

}  // namespace mitmd::proxy
