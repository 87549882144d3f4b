#include "support/scripted_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::testing {

ScriptedUpstream::ScriptedUpstream(std::vector<ScriptStep> script) : script_(std::move(script)) {}

ScriptedUpstream::~ScriptedUpstream() { Stop(); }

Status ScriptedUpstream::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Fail(StrCat("socket: ", std::strerror(errno)));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return Fail(StrCat("listen: ", std::strerror(errno)));
  }
  port_ = ntohs(sa.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return {};
}

void ScriptedUpstream::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::list<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

std::string ScriptedUpstream::Url(const std::string& path) const {
  return StrCat("http://127.0.0.1:", port_, path);
}

void ScriptedUpstream::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard lock(mu_);
    open_fds_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void ScriptedUpstream::Serve(int fd) {
  // The request head, bounded (5 s, 64 KiB).
  std::string head;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536 && !stopping_ &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  bool closed = false;
  for (const ScriptStep& step : script_) {
    if (stopping_ || closed) break;
    switch (step.kind) {
      case ScriptStep::Kind::kSend:
        (void)::send(fd, step.bytes.data(), step.bytes.size(), MSG_NOSIGNAL);
        break;
      case ScriptStep::Kind::kSleep:
        std::this_thread::sleep_for(step.delay);
        break;
      case ScriptStep::Kind::kReset: {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        closed = true;
        break;
      }
      case ScriptStep::Kind::kClose:
        closed = true;
        break;
      case ScriptStep::Kind::kStall:
        while (!stopping_) {
          pollfd p{fd, POLLIN, 0};
          if (::poll(&p, 1, 50) > 0) {
            char buf[4096];
            if (::recv(fd, buf, sizeof(buf), 0) <= 0) break;  // the proxy gave up
          }
        }
        closed = true;
        break;
    }
  }
  std::lock_guard lock(mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  ::close(fd);
}

}  // namespace mitmd::testing
