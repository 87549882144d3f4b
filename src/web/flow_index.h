#pragma once
// The viewer's own index of flows: what the table shows. Fed from the FlowStore's feed, from
// files loaded at start (--load, the session log of earlier runs) and from uploads; cleared by
// the user without touching the session log. Owned by the web thread alone (not thread-safe),
// so serving a page never takes a lock that the proxy's workers wait on.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flow/flow.h"
#include "flow/filter.h"

namespace mitmd::web {

class FlowIndex {
 public:
  struct Entry {
    uint64_t seq = 0;  // position in arrival order; grows for the life of the process
    std::shared_ptr<const Flow> flow;
  };

  // Keeps the newest |capacity| flows, and drops the oldest while they take more than about
  // |max_bytes| (body copies included).
  explicit FlowIndex(size_t capacity, size_t max_bytes = SIZE_MAX);

  struct PutResult {
    uint64_t seq = 0;
    bool replaced = false;  // a flow with the same id was there; it keeps its place
  };
  PutResult Put(std::shared_ptr<const Flow> flow);

  const Entry* Find(std::string_view id) const;
  void Clear();
  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return bytes_; }
  // The newest seq handed out (0 before the first Put).
  uint64_t last_seq() const { return next_seq_ - 1; }

  struct Page {
    std::vector<const Entry*> entries;  // newest first
    uint64_t next_before = 0;           // pass as |before| for the next page; 0 when done
    size_t scanned = 0;
  };
  // Up to |limit| flows matching |filter| with seq < |before| (0: from the newest), newest
  // first. Stops after looking at |max_scan| flows, so a rare filter cannot stall the loop; the
  // page then carries next_before to continue.
  Page Query(const Filter& filter, uint64_t before, size_t limit, size_t max_scan) const;

  // All flows matching |filter|, oldest first.
  std::vector<std::shared_ptr<const Flow>> Matching(const Filter& filter) const;

 private:
  size_t capacity_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t next_seq_ = 1;
  std::deque<Entry> entries_;  // ascending seq
  std::unordered_map<std::string, uint64_t> by_id_;
  size_t IndexOfSeq(uint64_t seq) const;  // first entry with seq >= |seq|
  void EvictOldest();
};

// About how much memory |flow| holds: bodies, headers and the fixed parts.
size_t ApproxFlowBytes(const Flow& flow);

}  // namespace mitmd::web
