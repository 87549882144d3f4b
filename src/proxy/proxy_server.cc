#include "proxy/proxy_server.h"

#include <event2/listener.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <thread>
#include <unordered_map>

#include "core/strings.h"
#include "net/dialer.h"
#include "net/listener.h"
#include "net/worker.h"
#include "proxy/conn_wire.h"
#include "proxy/connection_handler.h"
#include "proxy/hooks.h"
#include "proxy/layers/entry.h"
#include "proxy/timers.h"
#include "proxy/upstream/dialing_upstreams.h"
#include "proxy/upstream/pool.h"

namespace mitmd::proxy {

struct WorkerSlot;

// One worker's listener on one listening socket, with the services of that socket's mode (an
// upstream mode dials through its next proxy, so its pool is its own).
struct ListenerSlot {
  WorkerSlot* worker = nullptr;
  const ProxyServer::Listening* listening = nullptr;
  evconnlistener* listener = nullptr;
  std::unique_ptr<net::ListenerBackoff> backoff;  // freed before the listener, on the loop
  std::unique_ptr<DefaultHooks> hooks;
  std::unique_ptr<DialingUpstreams> dialing;
  std::unique_ptr<UpstreamPool> upstreams;  // over |dialing|
};

// Per worker: its listeners, its services and the connections it owns. Members are destroyed
// bottom-up: connections, then the services they use, then closing sockets, then the loop.
struct WorkerSlot {
  std::unique_ptr<net::Worker> worker;
  std::unique_ptr<net::Dialer> dialer;
  net::ConnGraveyard graveyard;
  std::unique_ptr<EventTimers> timers;
  std::vector<std::unique_ptr<ListenerSlot>> listeners;
  std::unordered_map<ConnectionHandler*, std::unique_ptr<ConnectionHandler>> connections;
  ProxyContext* ctx = nullptr;
};

struct ProxyServer::Impl {
  ProxyContext& ctx;
  HookInputs hook_inputs;
  std::vector<net::ListenSocket> sockets;  // one per entry of |listening|
  std::vector<ProxyServer::Listening> listening;
  net::AcceptErrorLog accept_errors;  // shared by the slots' back-offs
  std::vector<std::unique_ptr<WorkerSlot>> slots;
  // Verifies upstream:https:// next proxies (the system CAs and --upstream-proxy-ca).
  std::unique_ptr<UpstreamTls> hop_tls;
  bool stopped = false;

  explicit Impl(ProxyContext& c) : ctx(c), accept_errors(c.log) {}

  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
    auto* ls = static_cast<ListenerSlot*>(arg);
    WorkerSlot* slot = ls->worker;
    ls->backoff->Accepted();
    net::TuneAcceptedSocket(fd);
    EntryFacts facts{ls->listening->mode, ls->listening->address, {}};
    if (facts.mode.kind == ProxyMode::Kind::kTransparent) {
      facts.original_destination = net::OriginalDestination(fd);
    }
    auto handler = std::make_unique<ConnectionHandler>(
        *slot->ctx, Services{*slot->timers, *ls->upstreams, *ls->hooks},
        std::make_unique<ConnWire>(slot->worker->base(), fd, slot->graveyard),
        net::SockaddrToString(addr),
        [slot](ConnectionHandler* h) { slot->connections.erase(h); });
    ConnectionHandler* raw = handler.get();
    slot->connections.emplace(raw, std::move(handler));
    raw->Start(EntryLayerFor(*raw, facts));
  }

  static void AcceptErrorCb(evconnlistener*, void* arg) {
    // Out of descriptors the connection stays queued: pause this listener, log once a second.
    static_cast<ListenerSlot*>(arg)->backoff->Failed(EVUTIL_SOCKET_ERROR());
  }

  void CloseSockets() {
    for (const net::ListenSocket& s : sockets) ::close(s.fd);
    sockets.clear();
  }
};

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProxyServer::~ProxyServer() { Shutdown(); }

Result<std::unique_ptr<ProxyServer>> ProxyServer::Start(ProxyContext& ctx, HookInputs hooks) {
  auto impl = std::make_unique<Impl>(ctx);
  impl->hook_inputs = std::move(hooks);
  std::vector<ProxyMode> modes = ctx.config.modes;
  if (modes.empty()) modes.emplace_back();  // regular
  bool https_hop = std::any_of(modes.begin(), modes.end(), [](const ProxyMode& m) {
    return m.kind == ProxyMode::Kind::kUpstream && m.scheme == "https";
  });
  if (!https_hop && !ctx.config.upstream_proxy_ca_files.empty()) {
    return Fail("--upstream-proxy-ca is for a next proxy spoken to over TLS: add --mode "
                "upstream:https://HOST:PORT");
  }
  if (https_hop) {
    // The next proxy's trust: the system CAs and --upstream-proxy-ca (not --upstream-ca, which
    // is for the servers behind it).
    Config hop = ctx.config;
    hop.upstream_ca_files = ctx.config.upstream_proxy_ca_files;
    auto tls = UpstreamTls::Create(hop);
    if (!tls) {
      std::string message = tls.error().message;
      if (message.starts_with("--upstream-ca ")) message.insert(10, "-proxy");
      return Fail(message);
    }
    impl->hop_tls = std::move(*tls);
  }
  for (const ProxyMode& mode : modes) {
    HostPort want = mode.listen.value_or(ctx.config.listen);
    for (const Listening& other : impl->listening) {
      if (other.address.port == want.port && want.port != 0 &&
          (other.address.host == want.host || want.host == "0.0.0.0" ||
           other.address.host == "0.0.0.0")) {
        impl->CloseSockets();
        return Fail(StrCat("--mode ", mode.Describe(), " and --mode ", other.mode.Describe(),
                           " both listen on ", want.ToString(), ": give each its own @PORT"));
      }
    }
    auto sock = net::OpenListenSocket(want);
    if (!sock) {
      impl->CloseSockets();
      if (ctx.config.modes.empty()) return std::unexpected(sock.error());
      return Fail(StrCat(sock.error().message, " (for --mode ", mode.Describe(), ")"));
    }
    impl->sockets.push_back(*sock);
    impl->listening.push_back(Listening{mode, sock->bound});
  }
  int workers = ctx.config.workers > 0
                    ? ctx.config.workers
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < workers; ++i) {
    auto worker = net::Worker::Create(i);
    if (!worker) {
      impl->CloseSockets();
      return std::unexpected(worker.error());
    }
    auto slot = std::make_unique<WorkerSlot>();
    slot->worker = std::move(*worker);
    slot->ctx = &ctx;
    slot->dialer = std::make_unique<net::Dialer>(slot->worker->base(), slot->worker->dns(),
                                                 &ctx.config.upstream_allow);
    slot->timers = std::make_unique<EventTimers>(slot->worker->base());
    for (size_t l = 0; l < impl->sockets.size(); ++l) {
      auto ls = std::make_unique<ListenerSlot>();
      ls->worker = slot.get();
      ls->listening = &impl->listening[l];
      const ProxyMode& mode = ls->listening->mode;
      net::Worker* loop = slot->worker.get();
      ls->hooks = std::make_unique<DefaultHooks>(
          ctx, impl->hook_inputs, impl->sockets[l].bound.port,
          [loop](std::function<void()> fn) { loop->Post(std::move(fn)); });
      ls->dialing = std::make_unique<DialingUpstreams>(
          ctx, slot->worker->base(), *slot->dialer, slot->graveyard, *slot->timers,
          mode.kind == ProxyMode::Kind::kUpstream ? &mode : nullptr, impl->hop_tls.get());
      ls->upstreams = std::make_unique<UpstreamPool>(
          *ls->dialing, *slot->timers,
          PoolLimits{ctx.config.pool_max_idle, ctx.config.pool_idle_timeout}, &ctx.connections);
      // Every worker watches each listening socket; whichever wakes first accepts.
      ls->listener = evconnlistener_new(slot->worker->base(), Impl::AcceptCb, ls.get(),
                                        LEV_OPT_CLOSE_ON_EXEC, 0, impl->sockets[l].fd);
      if (!ls->listener) {
        impl->CloseSockets();
        return Fail("cannot watch the listening socket");
      }
      evconnlistener_set_error_cb(ls->listener, Impl::AcceptErrorCb);
      ls->backoff = net::ListenerBackoff::Create(ls->listener, slot->worker->base(),
                                                 impl->accept_errors);
      if (!ls->backoff) {
        evconnlistener_free(ls->listener);
        impl->CloseSockets();
        return Fail("cannot create the accept back-off timer");
      }
      slot->listeners.push_back(std::move(ls));
    }
    impl->slots.push_back(std::move(slot));
  }
  for (auto& slot : impl->slots) slot->worker->Start();
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

const HostPort& ProxyServer::address() const { return impl_->listening.front().address; }

const std::vector<ProxyServer::Listening>& ProxyServer::listening() const {
  return impl_->listening;
}

void ProxyServer::Shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Each worker stops accepting and closes its sessions on its own thread, then exits its loop
  // once the closing connections have been released.
  for (auto& slot : impl_->slots) {
    WorkerSlot* s = slot.get();
    s->worker->Post([s] {
      for (auto& ls : s->listeners) {
        ls->backoff.reset();
        evconnlistener_free(ls->listener);
        ls->listener = nullptr;
      }
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
  impl_->CloseSockets();
}

}  // namespace mitmd::proxy
