#include "proxy/timers.h"

namespace mitmd::proxy {
namespace {

class EventTimer : public Timer {
 public:
  EventTimer(event_base* base, std::function<void()> fire) : fire_(std::move(fire)) {
    ev_ = evtimer_new(base, Fire, this);
  }
  ~EventTimer() override { event_free(ev_); }

  void Arm(std::chrono::milliseconds delay) override {
    auto ms = delay.count();
    if (ms == 0) {
      // Runs once the current callbacks return, in this pass of the loop. An evtimer with a zero
      // timeout costs a pass of its own with an epoll_wait(0) first: one more syscall for every
      // keep-alive request, whose exchange is freed this way (HttpLayer's "reap"). The worker's
      // loop polls the sockets every 64 callbacks (net/worker.cc), so a timer re-armed with zero
      // from its own callback cannot starve them.
      event_active(ev_, EV_TIMEOUT, 1);
      return;
    }
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    evtimer_add(ev_, &tv);
  }
  void Cancel() override { evtimer_del(ev_); }
  bool armed() const override { return evtimer_pending(ev_, nullptr); }

 private:
  static void Fire(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<EventTimer*>(arg);
    self->fire_();  // may destroy the timer: nothing after this
  }
  event* ev_;
  std::function<void()> fire_;
};

}  // namespace

std::unique_ptr<Timer> EventTimers::New(std::string, std::function<void()> fire) {
  return std::make_unique<EventTimer>(base_, std::move(fire));
}

}  // namespace mitmd::proxy
