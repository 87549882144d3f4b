#pragma once
// Timers, injected: EventTimers runs them on a libevent loop; the playbook tests fire them by
// name from a fake clock. A Timer is cancelled when destroyed, so its owner's lifetime bounds it.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <event2/event.h>

namespace mitmd::proxy {

class Timer {
 public:
  virtual ~Timer() = default;
  // (Re)starts the countdown; a zero delay fires once the current callbacks have returned.
  virtual void Arm(std::chrono::milliseconds delay) = 0;
  virtual void Cancel() = 0;
  virtual bool armed() const = 0;
};

class Timers {
 public:
  virtual ~Timers() = default;
  // |name| says what the timer is for in logs and tests ("idle", "client_handshake").
  virtual std::unique_ptr<Timer> New(std::string name, std::function<void()> fire) = 0;
};

class EventTimers : public Timers {
 public:
  explicit EventTimers(event_base* base) : base_(base) {}
  std::unique_ptr<Timer> New(std::string name, std::function<void()> fire) override;

 private:
  event_base* base_;
};

}  // namespace mitmd::proxy
