#include "flow/flow_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

#include "flow/flow_json.h"

namespace mitmd {

namespace {

// What a flow costs in memory, roughly: its strings, the rest as a flat overhead.
size_t ApproxBytes(const Flow& f) {
  constexpr size_t kOverhead = 1024;
  size_t n = kOverhead;
  auto headers = [&](const HeaderList& h) {
    for (const auto& [k, v] : h) n += k.size() + v.size() + 64;
  };
  if (f.request) {
    n += f.request->body.content.size() + f.request->target.size() + f.request->path.size();
    headers(f.request->headers);
  }
  if (f.response) {
    n += f.response->body.content.size();
    headers(f.response->headers);
  }
  if (f.server_cert) n += 512;
  return n;
}

}  // namespace

Result<std::unique_ptr<FlowStore>> FlowStore::Open(const std::string& path, size_t max_flows,
                                                   size_t max_bytes) {
  int fd = -1;
  if (!path.empty()) {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Fail(StrCat("cannot open the session log ", path, ": ", std::strerror(errno)));
    }
  }
  return std::unique_ptr<FlowStore>(new FlowStore(fd, max_flows, max_bytes));
}

FlowStore::~FlowStore() {
  if (fd_ >= 0) ::close(fd_);
}

void FlowStore::WriteLine(const std::string& line) {
  std::lock_guard lock(log_mu_);
  // O_APPEND puts the whole line at the end in one write(); the loop only finishes a short write
  // (a signal, a full disk) before any other line can start.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void FlowStore::Record(std::shared_ptr<const Flow> flow) {
  if (fd_ >= 0) {
    // Each recording thread serializes into the same buffer, so a line costs no allocation; a
    // buffer that a huge flow grew is given back.
    constexpr size_t kKeptLineCapacity = 256u << 10;
    thread_local std::string line;
    line.clear();
    AppendFlowJsonLine(*flow, line);
    line.push_back('\n');
    WriteLine(line);
    if (line.capacity() > kKeptLineCapacity) std::string().swap(line);
  }
  const size_t cost = ApproxBytes(*flow);
  std::shared_ptr<const ListenerList> listeners;
  {
    std::lock_guard lock(mu_);
    ++recorded_;
    recent_.push_back(Entry{flow, cost});
    bytes_ += cost;
    while (!recent_.empty() && (recent_.size() > max_flows_ || bytes_ > max_bytes_)) {
      bytes_ -= recent_.front().bytes;
      recent_.pop_front();
    }
    listeners = listeners_;
  }
  for (const auto& [token, listener] : *listeners) listener(flow);
}

void FlowStore::Publish(std::shared_ptr<const Flow> snapshot) {
  std::shared_ptr<const ListenerList> listeners;
  {
    std::lock_guard lock(mu_);
    listeners = listeners_;
  }
  for (const auto& [token, listener] : *listeners) listener(snapshot);
}

std::vector<std::shared_ptr<const Flow>> FlowStore::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const Flow>> out;
  out.reserve(recent_.size());
  for (const Entry& e : recent_) out.push_back(e.flow);
  return out;
}

size_t FlowStore::memory_bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

uint64_t FlowStore::recorded_count() const {
  std::lock_guard lock(mu_);
  return recorded_;
}

uint64_t FlowStore::Subscribe(Listener listener) {
  std::lock_guard lock(mu_);
  uint64_t token = next_token_++;
  auto next = std::make_shared<ListenerList>(*listeners_);
  next->emplace_back(token, std::move(listener));
  listeners_ = std::move(next);
  return token;
}

void FlowStore::Unsubscribe(uint64_t token) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<ListenerList>(*listeners_);
  std::erase_if(*next, [token](const auto& p) { return p.first == token; });
  listeners_ = std::move(next);
}

}  // namespace mitmd
