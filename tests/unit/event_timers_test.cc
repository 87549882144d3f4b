// EventTimers on a worker's loop: a zero delay fires once the current callbacks return, in the
// same pass of the loop, and a timer that keeps re-arming itself with zero cannot starve I/O.

#include "proxy/timers.h"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

#include "net/worker.h"

namespace mitmd::proxy {
namespace {

TEST(EventTimers, ZeroDelayFiresAfterTheCurrentCallbackInTheSamePass) {
  auto worker = net::Worker::Create(0);
  ASSERT_TRUE(worker);
  event_base* base = (*worker)->base();
  EventTimers timers(base);
  std::vector<std::string> order;
  auto later = timers.New("later", [&] { order.push_back("timer"); });
  auto first = timers.New("first", [&] {
    later->Arm(std::chrono::milliseconds(0));
    EXPECT_TRUE(later->armed());
    order.push_back("first returns");
  });
  first->Arm(std::chrono::milliseconds(0));
  // One pass of the loop runs both: the first callback, then what it armed.
  event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
  EXPECT_EQ(order, (std::vector<std::string>{"first returns", "timer"}));
  EXPECT_FALSE(later->armed());

  // Cancelled before the pass: never fires.
  later->Arm(std::chrono::milliseconds(0));
  later->Cancel();
  EXPECT_FALSE(later->armed());
  event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
  EXPECT_EQ(order.size(), 2u);

  // Re-armed with a delay before it ran: it waits for the delay.
  later->Arm(std::chrono::milliseconds(0));
  later->Arm(std::chrono::milliseconds(60'000));
  event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
  EXPECT_EQ(order.size(), 2u);
  EXPECT_TRUE(later->armed());
}

TEST(EventTimers, ATimerReArmingItselfWithZeroDoesNotStarveSockets) {
  auto worker = net::Worker::Create(0);
  ASSERT_TRUE(worker);
  event_base* base = (*worker)->base();
  EventTimers timers(base);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  struct Reader {
    event_base* base;
    bool readable_seen = false;
  } reader{base};
  event* read_ev = event_new(
      base, fds[0], EV_READ,
      [](evutil_socket_t, short, void* arg) {
        auto* r = static_cast<Reader*>(arg);
        r->readable_seen = true;
        event_base_loopbreak(r->base);
      },
      &reader);
  event_add(read_ev, nullptr);
  // The pipe becomes readable once the spinner runs, after the loop's first poll. Bounded so
  // that a starving loop fails the test instead of hanging it.
  constexpr int kGiveUp = 100'000;
  int fires = 0;
  std::unique_ptr<Timer> spinner;
  spinner = timers.New("spinner", [&] {
    if (++fires == 1) ASSERT_EQ(write(fds[1], "x", 1), 1);
    if (!reader.readable_seen && fires < kGiveUp) spinner->Arm(std::chrono::milliseconds(0));
  });
  spinner->Arm(std::chrono::milliseconds(0));
  event_base_loop(base, 0);
  EXPECT_TRUE(reader.readable_seen);
  EXPECT_LT(fires, 1000) << "the pipe waited for " << fires << " timer callbacks";
  event_free(read_ev);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace mitmd::proxy
