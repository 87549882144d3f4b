#pragma once
// Sending replayed requests (replay.h) through mitmd's proxy port: one blocking loopback
// connection per request, so that the replay travels the live path and is recorded there.
// SendThroughProxy serves `mitmd replay`; Replayer runs the viewer's replays on threads of their
// own, never on the web thread or a proxy worker.

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/address.h"
#include "core/log.h"
#include "core/result.h"
#include "flow/flow.h"
#include "rules/edit.h"

namespace mitmd::rules {

struct ReplayOutcome {
  int status = 0;           // of the response mitmd relayed
  std::string status_line;  // "HTTP/1.1 200 OK"
  uint64_t bytes = 0;       // of the whole response
};

// Connects to |proxy|, sends |request| (with the proxy token as Proxy-Authorization when
// |proxy_token| is set) and reads the response until the connection closes. |timeout| bounds
// each wait for the proxy. |on_socket| (when given) is told the socket once connected and -1
// before it closes, so that another thread can shut it down meanwhile.
Result<ReplayOutcome> SendThroughProxy(const HostPort& proxy, std::string_view request,
                                       std::string_view proxy_token, std::chrono::seconds timeout,
                                       const std::function<void(int)>& on_socket = {});

class Replayer {
 public:
  // |proxy| is mitmd's own proxy address (an unspecified host means loopback); |replay_token|
  // lets the replay choose its flow's id (rules::Controls::replay_token).
  Replayer(HostPort proxy, std::string proxy_token, std::string replay_token, Logger& log,
           std::chrono::seconds timeout);
  // Cuts the replays in flight and waits for their threads.
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // Starts replaying |flow|'s request (with |edit|) and returns the new flow's id at once. An
  // error says why it cannot be replayed, or that too many replays are running.
  Result<std::string> Replay(const Flow& flow, const Edit& edit);

  static constexpr size_t kMaxRunning = 16;

 private:
  struct Job;
  void Reap();  // joins finished jobs; |mu_| held

  const HostPort proxy_;
  const std::string proxy_token_;
  const std::string replay_token_;
  Logger& log_;
  const std::chrono::seconds timeout_;
  std::mutex mu_;
  std::list<std::unique_ptr<Job>> jobs_;
  std::atomic<bool> stopping_ = false;
};

}  // namespace mitmd::rules
