#include "web/flow_index.h"

#include <algorithm>

namespace mitmd::web {

namespace {

size_t HeaderBytes(const HeaderList& headers) {
  size_t n = 0;
  for (const auto& [k, v] : headers) n += k.size() + v.size() + 2 * sizeof(std::string);
  return n;
}

}  // namespace

size_t ApproxFlowBytes(const Flow& f) {
  size_t n = sizeof(Flow) + f.id.size() + f.client_addr.size() + f.server_host.size() + f.server_addr.size();
  if (f.request) {
    n += sizeof(HttpRequest) + f.request->target.size() + f.request->path.size() + f.request->host.size() +
         HeaderBytes(f.request->headers) + HeaderBytes(f.request->trailers) + f.request->body.content.size();
  }
  if (f.response) {
    n += sizeof(HttpResponse) + f.response->reason.size() + HeaderBytes(f.response->headers) +
         HeaderBytes(f.response->trailers) + f.response->body.content.size();
  }
  if (f.server_cert) {
    n += sizeof(CertInfo) + f.server_cert->subject.size() + f.server_cert->issuer.size();
    for (const auto& san : f.server_cert->sans) n += san.size() + sizeof(std::string);
  }
  if (f.error) n += sizeof(FlowError) + f.error->message.size();
  return n;
}

FlowIndex::FlowIndex(size_t capacity, size_t max_bytes)
    : capacity_(capacity == 0 ? 1 : capacity), max_bytes_(max_bytes) {}

void FlowIndex::EvictOldest() {
  bytes_ -= std::min(bytes_, ApproxFlowBytes(*entries_.front().flow));
  by_id_.erase(entries_.front().flow->id);
  entries_.pop_front();
}

size_t FlowIndex::IndexOfSeq(uint64_t seq) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), seq,
                             [](const Entry& e, uint64_t s) { return e.seq < s; });
  return static_cast<size_t>(it - entries_.begin());
}

FlowIndex::PutResult FlowIndex::Put(std::shared_ptr<const Flow> flow) {
  if (auto it = by_id_.find(flow->id); it != by_id_.end()) {
    size_t i = IndexOfSeq(it->second);
    if (i < entries_.size() && entries_[i].seq == it->second) {
      bytes_ -= std::min(bytes_, ApproxFlowBytes(*entries_[i].flow));
      bytes_ += ApproxFlowBytes(*flow);
      entries_[i].flow = std::move(flow);
      return {it->second, true};
    }
  }
  uint64_t seq = next_seq_++;
  by_id_[flow->id] = seq;
  bytes_ += ApproxFlowBytes(*flow);
  entries_.push_back(Entry{seq, std::move(flow)});
  // The newest flow always stays, however large.
  while (entries_.size() > 1 && (entries_.size() > capacity_ || bytes_ > max_bytes_)) EvictOldest();
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
  bytes_ = 0;
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
