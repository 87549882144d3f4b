#pragma once
// FlowStore: where finished flows go. Appends each to the session log as one JSON line (a single
// write, so a crash never tears a recorded line), and keeps a bounded in-memory index of the
// most recent flows for the viewer. Safe to call from every worker thread.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "flow/flow.h"
#include "flow/flow_sink.h"

namespace mitmd {

class FlowStore : public FlowSink {
 public:
  // Opens (creating, mode 0600) |path| for appending. An empty path keeps flows in memory only.
  // The in-memory index keeps at most |max_flows| flows and about |max_bytes| of them (body
  // copies included), dropping the oldest first; the session log keeps everything.
  static Result<std::unique_ptr<FlowStore>> Open(const std::string& path, size_t max_flows,
                                                 size_t max_bytes = kDefaultMemoryBytes);
  static constexpr size_t kDefaultMemoryBytes = 256u << 20;
  ~FlowStore() override;

  // Records a finished flow: one line in the log, then into the index, then to subscribers.
  void Record(std::shared_ptr<const Flow> flow) override;
  // A running flow's snapshot: to subscribers only (not the log, not the index).
  void Publish(std::shared_ptr<const Flow> snapshot) override;

  // Snapshot of the in-memory index, oldest first.
  std::vector<std::shared_ptr<const Flow>> Snapshot() const;
  size_t memory_bytes() const;
  uint64_t recorded_count() const;

  // Called (on the recording thread) after each Record and each Publish; the flow's state says
  // which (kDone for a record). Returns a token for Unsubscribe.
  using Listener = std::function<void(const std::shared_ptr<const Flow>&)>;
  uint64_t Subscribe(Listener listener);
  void Unsubscribe(uint64_t token);

 private:
  struct Entry {
    std::shared_ptr<const Flow> flow;
    size_t bytes;  // its ApproxBytes, counted once
  };
  using ListenerList = std::vector<std::pair<uint64_t, Listener>>;

  FlowStore(int fd, size_t max_flows, size_t max_bytes)
      : fd_(fd), max_flows_(max_flows), max_bytes_(max_bytes) {}

  // Appends |line| (newline included) to the log with one write(); see Record.
  void WriteLine(const std::string& line);

  int fd_;
  size_t max_flows_;
  size_t max_bytes_;
  // Serializes writers so that the rare short write can be completed before another line
  // starts; kept apart from mu_ so that Snapshot() and the index never wait for the disk.
  std::mutex log_mu_;
  mutable std::mutex mu_;
  size_t bytes_ = 0;  // sum of Entry::bytes in recent_
  std::deque<Entry> recent_;
  uint64_t recorded_ = 0;
  uint64_t next_token_ = 1;
  // Copy on write: Record takes a reference under mu_ and calls the listeners outside it, with
  // no allocation per flow.
  std::shared_ptr<const ListenerList> listeners_ = std::make_shared<ListenerList>();
};

}  // namespace mitmd
