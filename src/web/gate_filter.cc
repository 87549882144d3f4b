#include "web/gate_filter.h"

#include <event2/buffer.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>

namespace mitmd::web {
namespace {

// How long a refused connection stays open for the client to read its answer; what it sends
// meanwhile is discarded unread.
constexpr timeval kLinger = {5, 0};

struct Gate {
  explicit Gate(RequestGate::Decide decide) : gate(std::move(decide)) {}
  ~Gate() {
    for (event* ev : {kick, writable, linger}) {
      if (ev != nullptr) event_free(ev);
    }
  }

  RequestGate gate;
  bufferevent* self = nullptr;   // the filter
  bufferevent* inner = nullptr;  // what the filter sits on; the filter owns it
  bool direct = false;           // |inner| is the socket: evhttp's output goes straight to the fd
  std::string refusal;           // an answer waiting for evhttp's output to be out first
  event* kick = nullptr;         // runs the output filter on the next loop turn
  event* writable = nullptr;     // direct: waits for room in the socket
  event* linger = nullptr;       // refused: ends the connection
};

void Kick(Gate& g) {
  if (!event_pending(g.kick, EV_TIMEOUT, nullptr)) event_active(g.kick, EV_TIMEOUT, 0);
}

// libevent's filter only runs the output filter for data written while writing is enabled, and
// evhttp writes its reply first and enables writing after.
void FlushCb(evutil_socket_t, short, void* arg) {
  auto& g = *static_cast<Gate*>(arg);
  if (evbuffer_get_length(bufferevent_get_output(g.self)) > 0) {
    bufferevent_flush(g.self, EV_WRITE, BEV_NORMAL);
  }
}

void OutputAddedCb(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  if (info->n_added > 0) Kick(*static_cast<Gate*>(arg));
}

void LingerCb(evutil_socket_t, short, void* arg) {
  auto& g = *static_cast<Gate*>(arg);
  // evhttp frees the connection on EOF, and with it this gate.
  bufferevent_trigger_event(g.self, BEV_EVENT_EOF | BEV_EVENT_READING, 0);
}

// Queues the refusal once nothing of evhttp's is still ahead of it.
void SendRefusal(Gate& g) {
  if (g.refusal.empty() || evbuffer_get_length(bufferevent_get_output(g.self)) > 0) return;
  evbuffer_add(bufferevent_get_output(g.inner), g.refusal.data(), g.refusal.size());
  g.refusal.clear();
}

bufferevent_filter_result Input(evbuffer* src, evbuffer* dst, ev_ssize_t, bufferevent_flush_mode,
                                void* ctx) {
  auto& g = *static_cast<Gate*>(ctx);
  bool passed = false;
  while (g.gate.state() != RequestGate::State::kRefused) {
    size_t available = evbuffer_get_length(src);
    std::string_view front;
    if (g.gate.state() == RequestGate::State::kHead && available > 0) {
      size_t n = std::min(available, g.gate.max_head() + 2);
      front = {reinterpret_cast<const char*>(evbuffer_pullup(src, static_cast<ev_ssize_t>(n))), n};
    }
    RequestGate::Step step = g.gate.Next(front, available);
    if (step.kind == RequestGate::Step::Kind::kNeedMore) break;
    if (step.kind == RequestGate::Step::Kind::kPass) {
      evbuffer_remove_buffer(src, dst, step.bytes);
      passed = true;
      continue;
    }
    g.refusal = RefusalResponse(step.refusal);
    SendRefusal(g);
    event_add(g.linger, &kLinger);
  }
  if (g.gate.state() == RequestGate::State::kRefused) {
    evbuffer_drain(src, evbuffer_get_length(src));
  }
  return passed ? BEV_OK : BEV_NEED_MORE;
}

bufferevent_filter_result Output(evbuffer* src, evbuffer* dst, ev_ssize_t, bufferevent_flush_mode,
                                 void* ctx) {
  auto& g = *static_cast<Gate*>(ctx);
  size_t before = evbuffer_get_length(src);
  if (!g.direct) {
    evbuffer_remove_buffer(src, dst, before);
  } else {
    evutil_socket_t fd = bufferevent_getfd(g.inner);
    while (evbuffer_get_length(src) > 0) {
      // send with MSG_NOSIGNAL, not evbuffer_write's writev: a peer that is already gone must
      // be an EPIPE here, not a SIGPIPE for a process that has not ignored it.
      evbuffer_iovec vec;
      if (evbuffer_peek(src, -1, nullptr, &vec, 1) < 1) break;
      ssize_t n = ::send(fd, vec.iov_base, vec.iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        evbuffer_drain(src, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (g.writable == nullptr) {
          g.writable = event_new(bufferevent_get_base(g.self), fd, EV_WRITE, &FlushCb, &g);
        }
        if (g.writable != nullptr) event_add(g.writable, nullptr);
      } else {
        // The peer is gone: evhttp learns it from the read side; its output has nowhere to go.
        evbuffer_drain(src, evbuffer_get_length(src));
      }
      break;
    }
  }
  SendRefusal(g);
  return evbuffer_get_length(src) < before ? BEV_OK : BEV_NEED_MORE;
}

void FreeGate(void* ctx) { delete static_cast<Gate*>(ctx); }

}  // namespace

bufferevent* NewGatedBufferevent(event_base* base, bufferevent* inner, RequestGate::Decide decide) {
  if (inner == nullptr) return nullptr;
  auto g = std::make_unique<Gate>(std::move(decide));
  g->inner = inner;
  g->direct = bufferevent_get_underlying(inner) == nullptr;
  g->kick = event_new(base, -1, 0, &FlushCb, g.get());
  g->linger = event_new(base, -1, 0, &LingerCb, g.get());
  if (g->kick == nullptr || g->linger == nullptr) {
    bufferevent_free(inner);
    return nullptr;
  }
  Gate* raw = g.get();
  // Deferred callbacks: the output filter can send evhttp's reply synchronously, inside the call
  // that queued it, before evhttp has set the callback that should run once it is sent.
  bufferevent* self = bufferevent_filter_new(inner, Input, Output,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
                                             FreeGate, raw);
  if (self == nullptr) {
    bufferevent_free(inner);
    return nullptr;
  }
  g.release();  // the filter owns it now (FreeGate)
  raw->self = self;
  evbuffer_add_cb(bufferevent_get_output(self), &OutputAddedCb, raw);
  return self;
}

}  // namespace mitmd::web
