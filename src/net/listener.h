#pragma once
// The proxy's listening socket, and what its accept loop does when accept() fails.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "core/address.h"
#include "core/log.h"
#include "core/result.h"

struct event;
struct event_base;
struct evconnlistener;

namespace mitmd::net {

struct ListenSocket {
  int fd = -1;
  HostPort bound;  // with the real port when 0 was asked for
};

// A non-blocking listening TCP socket (SO_REUSEADDR, CLOEXEC) on |addr|. The host must be an
// IP literal or "localhost".
Result<ListenSocket> OpenListenSocket(const HostPort& addr, int backlog = 1024);

// TCP keep-alive and no Nagle on an accepted connection.
void TuneAcceptedSocket(int fd);

// Where an accepted connection was going before the firewall redirected it to mitmd (iptables
// or nftables REDIRECT/DNAT: SO_ORIGINAL_DST, IPv4 and IPv6). Without a redirect this is the
// socket's own local address; the error says why it could not be read.
Result<HostPort> OriginalDestination(int fd);

// Out of file descriptors (EMFILE, ENFILE) or buffers, accept() fails while the connection stays
// in the backlog, so a level-triggered listener would wake again at once: an earlier build spun
// at full CPU and wrote 1.8 million log lines in 5 s. The policy: stop accepting for a pause that
// starts at 100 ms and doubles up to 1 s while accept keeps failing, back to 100 ms after a
// success. Sans-I/O: the caller reports errors and successes and acts on the pause.
class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirstPause{100};
  static constexpr std::chrono::milliseconds kMaxPause{1000};

  // An accept failed: how long to stop accepting.
  std::chrono::milliseconds OnError();
  // A connection was accepted: the next failure starts from the first pause again.
  void OnAccepted() { next_ = kFirstPause; }

 private:
  std::chrono::milliseconds next_ = kFirstPause;
};

// Accept failures shared by every worker's listener, logged at most once per second with the
// count since the last line. Thread-safe.
class AcceptErrorLog {
 public:
  explicit AcceptErrorLog(Logger& log) : log_(log) {}
  // Counts a failure with |err| (an errno) at |now_ms| (a monotonic clock) and logs when a second
  // has passed since the last line.
  void Failed(int err, int64_t now_ms, std::chrono::milliseconds pause);

 private:
  Logger& log_;
  std::atomic<uint64_t> failures_{0};
  std::atomic<int64_t> last_log_ms_{INT64_MIN / 2};
};

// One worker's evconnlistener with the backoff applied: on an accept error it disables the
// listener and re-enables it from a timer after the pause. Lives on the listener's loop thread
// and must be destroyed there, before the listener. (libevent hands the error callback the
// listener's own argument, so the owner of that argument forwards errors here.)
class ListenerBackoff {
 public:
  // Borrows all three.
  static std::unique_ptr<ListenerBackoff> Create(evconnlistener* listener, event_base* base,
                                                 AcceptErrorLog& errors);
  ~ListenerBackoff();
  ListenerBackoff(const ListenerBackoff&) = delete;
  ListenerBackoff& operator=(const ListenerBackoff&) = delete;

  // From the listener's error callback, with the errno of the failed accept.
  void Failed(int err);
  // From the accept callback.
  void Accepted() { backoff_.OnAccepted(); }

 private:
  ListenerBackoff(evconnlistener* listener, AcceptErrorLog& errors);
  static void ResumeCb(int, short, void* arg);

  evconnlistener* listener_;
  AcceptErrorLog& errors_;
  AcceptBackoff backoff_;
  event* resume_ = nullptr;  // owned; freed in the destructor
};

// Raises this process's soft limit on open files to the hard limit (a proxy holds two
// descriptors per connection; the usual soft default of 1024 is ~500 clients). Returns the new
// soft limit.
Result<uint64_t> RaiseOpenFileLimit();

}  // namespace mitmd::net
