#include "proxy/proxy_server.h"

#include <event2/listener.h>
#include <unistd.h>

#include <condition_variable>
#include <thread>
#include <unordered_map>

#include "net/dialer.h"
#include "net/listener.h"
#include "net/worker.h"
#include "proxy/conn_wire.h"
#include "proxy/connection_handler.h"
#include "proxy/hooks.h"
#include "proxy/timers.h"
#include "proxy/upstream/dialing_upstreams.h"
#include "proxy/upstream/pool.h"

namespace mitmd::proxy {

// Per worker: its listener on the shared socket, its services and the connections it owns.
// Members are destroyed bottom-up: connections, then the services they use, then closing
// sockets, then the loop itself.
struct WorkerSlot {
  std::unique_ptr<net::Worker> worker;
  std::unique_ptr<net::Dialer> dialer;
  evconnlistener* listener = nullptr;
  std::unique_ptr<net::ListenerBackoff> backoff;  // freed before the listener, on the loop
  net::ConnGraveyard graveyard;
  std::unique_ptr<EventTimers> timers;
  std::unique_ptr<DefaultHooks> hooks;
  std::unique_ptr<DialingUpstreams> dialing;
  std::unique_ptr<UpstreamPool> upstreams;  // over |dialing|
  std::unordered_map<ConnectionHandler*, std::unique_ptr<ConnectionHandler>> connections;
  ProxyContext* ctx = nullptr;
};

struct ProxyServer::Impl {
  ProxyContext& ctx;
  net::ListenSocket socket;
  net::AcceptErrorLog accept_errors;  // shared by the slots' back-offs
  std::vector<std::unique_ptr<WorkerSlot>> slots;
  bool stopped = false;

  explicit Impl(ProxyContext& c) : ctx(c), accept_errors(c.log) {}

  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
    auto* slot = static_cast<WorkerSlot*>(arg);
    slot->backoff->Accepted();
    net::TuneAcceptedSocket(fd);
    auto handler = std::make_unique<ConnectionHandler>(
        *slot->ctx, Services{*slot->timers, *slot->upstreams, *slot->hooks},
        std::make_unique<ConnWire>(slot->worker->base(), fd, slot->graveyard),
        net::SockaddrToString(addr),
        [slot](ConnectionHandler* h) { slot->connections.erase(h); });
    ConnectionHandler* raw = handler.get();
    slot->connections.emplace(raw, std::move(handler));
    raw->Start();
  }

  static void AcceptErrorCb(evconnlistener*, void* arg) {
    // Out of descriptors the connection stays queued: pause this listener, log once a second.
    static_cast<WorkerSlot*>(arg)->backoff->Failed(EVUTIL_SOCKET_ERROR());
  }
};

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProxyServer::~ProxyServer() { Shutdown(); }

Result<std::unique_ptr<ProxyServer>> ProxyServer::Start(ProxyContext& ctx) {
  auto impl = std::make_unique<Impl>(ctx);
  auto sock = net::OpenListenSocket(ctx.config.listen);
  if (!sock) return std::unexpected(sock.error());
  impl->socket = *sock;
  int workers = ctx.config.workers > 0
                    ? ctx.config.workers
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < workers; ++i) {
    auto worker = net::Worker::Create(i);
    if (!worker) {
      ::close(impl->socket.fd);
      return std::unexpected(worker.error());
    }
    auto slot = std::make_unique<WorkerSlot>();
    slot->worker = std::move(*worker);
    slot->ctx = &ctx;
    slot->dialer = std::make_unique<net::Dialer>(slot->worker->base(), slot->worker->dns(),
                                                 &ctx.config.upstream_allow);
    slot->timers = std::make_unique<EventTimers>(slot->worker->base());
    slot->hooks = std::make_unique<DefaultHooks>(ctx, impl->socket.bound.port);
    slot->dialing = std::make_unique<DialingUpstreams>(ctx, slot->worker->base(), *slot->dialer,
                                                       slot->graveyard, *slot->timers);
    slot->upstreams = std::make_unique<UpstreamPool>(*slot->dialing, *slot->timers);
    // Every worker watches the one listening socket; whichever wakes first accepts.
    slot->listener = evconnlistener_new(slot->worker->base(), Impl::AcceptCb, slot.get(),
                                        LEV_OPT_CLOSE_ON_EXEC, 0, impl->socket.fd);
    if (!slot->listener) {
      ::close(impl->socket.fd);
      return Fail("cannot watch the listening socket");
    }
    evconnlistener_set_error_cb(slot->listener, Impl::AcceptErrorCb);
    slot->backoff = net::ListenerBackoff::Create(slot->listener, slot->worker->base(),
                                                 impl->accept_errors);
    if (!slot->backoff) {
      ::close(impl->socket.fd);
      return Fail("cannot create the accept back-off timer");
    }
    impl->slots.push_back(std::move(slot));
  }
  for (auto& slot : impl->slots) slot->worker->Start();
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

const HostPort& ProxyServer::address() const { return impl_->socket.bound; }

void ProxyServer::Shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Each worker stops accepting and closes its sessions on its own thread, then exits its loop
  // once the closing connections have been released.
  for (auto& slot : impl_->slots) {
    WorkerSlot* s = slot.get();
    s->worker->Post([s] {
      s->backoff.reset();
      evconnlistener_free(s->listener);
      s->listener = nullptr;
      std::vector<ConnectionHandler*> open;
      for (auto& [raw, owned] : s->connections) open.push_back(raw);
      for (ConnectionHandler* handler : open) handler->Shutdown();
      // Give the error pages and close_notify alerts a moment on the wire.
      timeval grace{0, 200 * 1000};
      event_base_loopexit(s->worker->base(), &grace);
    });
  }
  for (auto& slot : impl_->slots) slot->worker->Join();
  for (auto& slot : impl_->slots) slot->connections.clear();
  ::close(impl_->socket.fd);
}

}  // namespace mitmd::proxy
