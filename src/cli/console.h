#pragma once
// The console view (`--console`): one line per finished flow on the terminal, like mitmdump:
//
//   12:04:31.207 127.0.0.1:51234 GET https://example.com/api?q=1 << 200 OK 1.2k 35ms
//
// Status in colour (2xx green, 3xx cyan, 4xx yellow, 5xx and errors red) when the output is a
// terminal. Workers never wait on the terminal: flows are queued (bounded; lines beyond the bound
// are counted and the count is printed) and one thread of the view writes them.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "flow/flow.h"

namespace mitmd::cli {

// The line for |flow| (with a final '\n'). Bytes a peer chose (URL, reason, error) are printed
// with control characters escaped, so no flow can move the cursor or retitle the terminal.
std::string FormatConsoleLine(const Flow& flow, bool color);

class ConsoleView {
 public:
  // Writes to |fd| (not owned) from a thread of its own.
  ConsoleView(int fd, bool color, size_t max_queue = 10'000);
  // Writes what is queued, then stops.
  ~ConsoleView();
  ConsoleView(const ConsoleView&) = delete;
  ConsoleView& operator=(const ConsoleView&) = delete;

  // From any thread: queues a finished flow's line; live snapshots are ignored.
  void OnFlow(const std::shared_ptr<const Flow>& flow);
  uint64_t dropped() const;

 private:
  void Loop();
  void Write(std::string_view out);

  const int fd_;
  const bool color_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<const Flow>> queue_;
  uint64_t dropped_ = 0;
  uint64_t dropped_reported_ = 0;
  bool stop_ = false;
  // Between two batches (kBatchPause): flows only queue, nobody is woken for them.
  bool pausing_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace mitmd::cli
