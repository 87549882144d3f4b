#pragma once
// Worker: one thread running one libevent loop with its own DNS resolver. Other threads talk to
// it only through Post().

#include <event2/dns.h>
#include <event2/event.h>

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/result.h"

namespace mitmd::net {

// Makes libevent thread-aware; call once before creating any Worker.
void EnableEventThreads();

class Worker {
 public:
  static Result<std::unique_ptr<Worker>> Create(int index);
  ~Worker();  // stops the loop (if running) and joins

  event_base* base() const { return base_; }
  evdns_base* dns() const { return dns_; }
  int index() const { return index_; }

  void Start();
  // Runs |fn| on the loop thread. Safe from any thread.
  void Post(std::function<void()> fn);
  // Asks the loop to exit after the current callbacks; Join() waits for it.
  void Stop();
  void Join();

 private:
  Worker(int index, event_base* base, evdns_base* dns);
  static void WakeCb(evutil_socket_t, short, void* arg);

  int index_;
  event_base* base_;
  evdns_base* dns_;
  event* wake_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace mitmd::net
