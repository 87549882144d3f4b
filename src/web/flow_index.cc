#include "web/flow_index.h"

#include <algorithm>

namespace mitmd::web {

FlowIndex::FlowIndex(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

size_t FlowIndex::IndexOfSeq(uint64_t seq) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), seq,
                             [](const Entry& e, uint64_t s) { return e.seq < s; });
  return static_cast<size_t>(it - entries_.begin());
}

FlowIndex::PutResult FlowIndex::Put(std::shared_ptr<const Flow> flow) {
  if (auto it = by_id_.find(flow->id); it != by_id_.end()) {
    size_t i = IndexOfSeq(it->second);
    if (i < entries_.size() && entries_[i].seq == it->second) {
      entries_[i].flow = std::move(flow);
      return {it->second, true};
    }
  }
  uint64_t seq = next_seq_++;
  by_id_[flow->id] = seq;
  entries_.push_back(Entry{seq, std::move(flow)});
  while (entries_.size() > capacity_) {
    by_id_.erase(entries_.front().flow->id);
    entries_.pop_front();
  }
  return {seq, false};
}

const FlowIndex::Entry* FlowIndex::Find(std::string_view id) const {
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return nullptr;
  size_t i = IndexOfSeq(it->second);
  if (i >= entries_.size() || entries_[i].seq != it->second) return nullptr;
  return &entries_[i];
}

void FlowIndex::Clear() {
  entries_.clear();
  by_id_.clear();
}

FlowIndex::Page FlowIndex::Query(const Filter& filter, uint64_t before, size_t limit,
                                 size_t max_scan) const {
  Page page;
  size_t end = before == 0 ? entries_.size() : IndexOfSeq(before);
  size_t i = end;
  while (i > 0 && page.entries.size() < limit) {
    if (page.scanned >= max_scan) {
      page.next_before = entries_[i].seq;
      return page;
    }
    --i;
    ++page.scanned;
    const Entry& e = entries_[i];
    if (filter.Matches(*e.flow)) page.entries.push_back(&e);
  }
  page.next_before = i > 0 ? entries_[i].seq : 0;
  return page;
}

std::vector<std::shared_ptr<const Flow>> FlowIndex::Matching(const Filter& filter) const {
  std::vector<std::shared_ptr<const Flow>> out;
  for (const Entry& e : entries_) {
    if (filter.Matches(*e.flow)) out.push_back(e.flow);
  }
  return out;
}

}  // namespace mitmd::web
