#include "flow/flow_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

#include "flow/flow_json.h"

namespace mitmd {

Result<std::unique_ptr<FlowStore>> FlowStore::Open(const std::string& path, size_t memory_limit) {
  int fd = -1;
  if (!path.empty()) {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Fail(StrCat("cannot open the session log ", path, ": ", std::strerror(errno)));
    }
  }
  return std::unique_ptr<FlowStore>(new FlowStore(fd, memory_limit));
}

FlowStore::~FlowStore() {
  if (fd_ >= 0) ::close(fd_);
}

void FlowStore::Record(std::shared_ptr<const Flow> flow) {
  std::string line = FlowToJsonLine(*flow);
  line.push_back('\n');
  std::vector<Listener> to_notify;
  {
    std::lock_guard lock(mu_);
    if (fd_ >= 0) {
      // O_APPEND makes each write land whole at the end; loop only on a short write.
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
    ++recorded_;
    recent_.push_back(flow);
    while (recent_.size() > memory_limit_) recent_.pop_front();
    for (auto& [token, listener] : listeners_) to_notify.push_back(listener);
  }
  for (auto& listener : to_notify) listener(flow);
}

std::vector<std::shared_ptr<const Flow>> FlowStore::Snapshot() const {
  std::lock_guard lock(mu_);
  return {recent_.begin(), recent_.end()};
}

uint64_t FlowStore::recorded_count() const {
  std::lock_guard lock(mu_);
  return recorded_;
}

uint64_t FlowStore::Subscribe(Listener listener) {
  std::lock_guard lock(mu_);
  uint64_t token = next_token_++;
  listeners_.emplace_back(token, std::move(listener));
  return token;
}

void FlowStore::Unsubscribe(uint64_t token) {
  std::lock_guard lock(mu_);
  std::erase_if(listeners_, [token](const auto& p) { return p.first == token; });
}

}  // namespace mitmd
