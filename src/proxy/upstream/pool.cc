#include "proxy/upstream/pool.h"

namespace mitmd::proxy {

// An idle connection: watched for the server closing it, and for its idle timeout.
class UpstreamPool::Idle : public WireObserver {
 public:
  Idle(UpstreamPool& pool, std::unique_ptr<UpstreamConn> conn) : pool_(pool), conn_(std::move(conn)) {
    conn_->wire->set_observer(this);
    timer_ = pool_.timers_.New("pool_idle", [this] { pool_.Drop(this, "idle in the pool too long"); });
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

UpstreamPool::UpstreamPool(Upstreams& dialer, Timers& timers, PoolLimits limits)
    : dialer_(dialer), timers_(timers), limits_(limits) {}

UpstreamPool::~UpstreamPool() {
  while (!idle_.empty()) Drop(idle_.front().get(), "mitmd is stopping");
}

std::unique_ptr<Upstreams::Pending> UpstreamPool::Connect(const UpstreamKey& key,
                                                          uint64_t client_id, Callback done) {
  // The most recently returned connection first: the least likely to have been closed.
  for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
    Idle* idle = it->get();
    if (!(idle->conn().key == key)) continue;
    if (!idle->conn().usable()) {
      Drop(idle, "the server closed the idle connection");
      return Connect(key, client_id, std::move(done));
    }
    std::unique_ptr<UpstreamConn> conn = idle->Take();
    idle_.erase(std::next(it).base());
    return std::make_unique<Handout>(*this, std::move(conn), std::move(done));
  }
  return dialer_.Connect(key, client_id, std::move(done));
}

std::unique_ptr<Upstreams::Pending> UpstreamPool::ConnectFresh(const UpstreamKey& key,
                                                               uint64_t client_id, Callback done) {
  return dialer_.Connect(key, client_id, std::move(done));
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConn> conn, std::string_view reason) {
  dialer_.Release(std::move(conn), reason);
}

void UpstreamPool::Return(std::unique_ptr<UpstreamConn> conn) {
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
  idle_.push_back(std::make_unique<Idle>(*this, std::move(conn)));
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
