#pragma once
// A plain-TCP origin that misbehaves on purpose, for the fault tests: for every connection it
// reads the request head (up to the blank line), then plays one script — send bytes, pause,
// reset, close, or stall until stopped. One thread per connection; Stop() ends them all.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace mitmd::testing {

struct ScriptStep {
  enum class Kind {
    kSend,   // write |bytes|
    kSleep,  // wait |delay|
    kReset,  // close with SO_LINGER 0: the peer sees a TCP reset
    kClose,  // close normally (FIN)
    kStall,  // hold the connection open without a byte until Stop()
  };
  Kind kind;
  std::string bytes;
  std::chrono::milliseconds delay{0};

  static ScriptStep Send(std::string b) { return {Kind::kSend, std::move(b), {}}; }
  static ScriptStep Sleep(std::chrono::milliseconds d) { return {Kind::kSleep, {}, d}; }
  static ScriptStep Reset() { return {Kind::kReset, {}, {}}; }
  static ScriptStep Close() { return {Kind::kClose, {}, {}}; }
  static ScriptStep Stall() { return {Kind::kStall, {}, {}}; }
};

class ScriptedUpstream {
 public:
  explicit ScriptedUpstream(std::vector<ScriptStep> script);
  ~ScriptedUpstream();  // Stop()
  ScriptedUpstream(const ScriptedUpstream&) = delete;
  ScriptedUpstream& operator=(const ScriptedUpstream&) = delete;

  // Listens on 127.0.0.1, port 0.
  Status Start();
  void Stop();
  uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT" + path.
  std::string Url(const std::string& path) const;
  uint64_t connections() const { return connections_.load(); }

 private:
  void AcceptLoop();
  void Serve(int fd);

  std::vector<ScriptStep> script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> connections_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::thread> threads_;
  std::vector<int> open_fds_;  // guarded by mu_; shut down by Stop()
};

}  // namespace mitmd::testing
