#include "net/worker.h"

#include <event2/thread.h>
#include <pthread.h>

#include "core/strings.h"

namespace mitmd::net {
namespace {

constexpr int kMaxCallbacksPerPass = 64;

}  // namespace

void EnableEventThreads() { evthread_use_pthreads(); }

Result<std::unique_ptr<Worker>> Worker::Create(int index) {
  event_config* config = event_config_new();
  if (!config) return Fail("cannot create an event loop");
  // Callbacks made active during a pass (a zero-delay Timer, a Conn's flush) run in that pass;
  // after this many the loop polls the sockets again, so no chain of them can starve I/O.
  event_config_set_max_dispatch_interval(config, nullptr, kMaxCallbacksPerPass, 0);
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  if (!base) return Fail("cannot create an event loop");
  // Name servers from /etc/resolv.conf and names from /etc/hosts; without a resolv.conf,
  // literals and /etc/hosts still resolve.
  evdns_base* dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
  if (!dns) {
    dns = evdns_base_new(base, 0);
    if (dns) evdns_base_load_hosts(dns, nullptr);
  }
  if (!dns) {
    event_base_free(base);
    return Fail("cannot create the DNS resolver");
  }
  return std::unique_ptr<Worker>(new Worker(index, base, dns));
}

Worker::Worker(int index, event_base* base, evdns_base* dns)
    : index_(index), base_(base), dns_(dns) {
  wake_ = event_new(base_, -1, EV_PERSIST, WakeCb, this);
  event_add(wake_, nullptr);  // keeps the loop alive while idle
}

Worker::~Worker() {
  Stop();
  Join();
  event_free(wake_);
  evdns_base_free(dns_, 1);
  event_base_free(base_);
}

void Worker::Start() {
  thread_ = std::thread([this] {
    // Named for top -H and /proc/PID/task/*/comm (at most 15 characters). Index -1 is the
    // viewer's loop (App).
    std::string name = index_ < 0 ? std::string("web") : StrCat("worker-", index_);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  });
}

void Worker::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  event_active(wake_, EV_READ, 0);
}

void Worker::WakeCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  std::vector<std::function<void()>> run;
  {
    std::lock_guard lock(self->mu_);
    run.swap(self->posted_);
  }
  for (auto& fn : run) fn();
}

void Worker::Stop() { event_base_loopexit(base_, nullptr); }

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace mitmd::net
