#include "rules/replay_client.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/fd_io.h"
#include "core/strings.h"
#include "rules/replay.h"

namespace mitmd::rules {
namespace {

// A reply bigger than this is read and counted, not kept: only its status line matters here.
constexpr size_t kKeptReply = 4096;

Result<int> ConnectTo(const HostPort& proxy, std::chrono::seconds timeout) {
  std::string host = proxy.host;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string port = StrCat(proxy.port);
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &list); rc != 0) {
    return Fail(StrCat("cannot resolve the proxy ", proxy.ToString(), ": ", gai_strerror(rc)));
  }
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* a = list; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{static_cast<time_t>(timeout.count()), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(list);
  if (fd < 0) {
    return Fail(StrCat("cannot connect to the proxy at ", proxy.ToString(), ": ", error,
                       " (is mitmd running there? pass --proxy HOST:PORT)"));
  }
  return fd;
}

}  // namespace

Result<ReplayOutcome> SendThroughProxy(const HostPort& proxy, std::string_view request,
                                       std::string_view proxy_token, std::chrono::seconds timeout,
                                       const std::function<void(int)>& on_socket) {
  auto fd = ConnectTo(proxy, timeout);
  if (!fd) return std::unexpected(fd.error());
  if (on_socket) on_socket(*fd);
  std::string bytes(request);
  if (!proxy_token.empty()) {
    size_t line_end = bytes.find("\r\n");
    bytes.insert(line_end + 2, StrCat("Proxy-Authorization: Basic ",
                                      Base64Encode(StrCat("mitmd:", proxy_token)), "\r\n"));
  }
  ReplayOutcome out;
  std::string kept;
  std::string error;
  if (!WriteAll(*fd, bytes)) {
    error = StrCat("sending the request failed: ", std::strerror(errno));
  } else {
    char buf[16384];
    while (true) {
      ssize_t n = ::read(*fd, buf, sizeof(buf));
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        error = errno == EAGAIN || errno == EWOULDBLOCK
                    ? StrCat("no answer from the proxy within ", timeout.count(), " s")
                    : StrCat("reading the response failed: ", std::strerror(errno));
        break;
      }
      out.bytes += static_cast<uint64_t>(n);
      if (kept.size() < kKeptReply) kept.append(buf, static_cast<size_t>(n));
    }
  }
  if (on_socket) on_socket(-1);
  ::close(*fd);
  out.status_line = kept.substr(0, kept.find("\r\n"));
  if (out.status_line.starts_with("HTTP/") && out.status_line.size() >= 12) {
    out.status = std::atoi(out.status_line.c_str() + 9);
  }
  if (!error.empty() && out.status == 0) return Fail(error);
  if (out.status == 0) return Fail("the proxy closed the connection without a response");
  return out;
}

struct Replayer::Job {
  std::thread thread;
  std::atomic<bool> done = false;
  std::mutex mu;  // the socket is closed only after -1 is set under it: no stale shutdown()
  int fd = -1;
};

Replayer::Replayer(HostPort proxy, std::string proxy_token, std::string replay_token, Logger& log,
                   std::chrono::seconds timeout)
    : proxy_(std::move(proxy)),
      proxy_token_(std::move(proxy_token)),
      replay_token_(std::move(replay_token)),
      log_(log),
      timeout_(timeout) {}

Replayer::~Replayer() {
  std::list<std::unique_ptr<Job>> jobs;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& job : jobs_) {
      std::lock_guard job_lock(job->mu);
      if (job->fd >= 0) ::shutdown(job->fd, SHUT_RDWR);
    }
    jobs.swap(jobs_);
  }
  for (auto& job : jobs) job->thread.join();
}

void Replayer::Reap() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<std::string> Replayer::Replay(const Flow& flow, const Edit& edit) {
  std::string id = NewFlowId();
  auto request = BuildReplayRequest(flow, edit, StrCat(replay_token_, " ", flow.id, " ", id));
  if (!request) return std::unexpected(request.error());
  std::lock_guard lock(mu_);
  if (stopping_) return Fail("mitmd is stopping");
  Reap();
  if (jobs_.size() >= kMaxRunning) {
    return Fail(StrCat(kMaxRunning, " replays are still running; try again when one ends"));
  }
  auto job = std::make_unique<Job>();
  Job* raw = job.get();
  jobs_.push_back(std::move(job));
  std::string original = flow.id;
  raw->thread = std::thread([this, raw, id, original, bytes = std::move(*request)] {
    auto outcome = SendThroughProxy(proxy_, bytes, proxy_token_, timeout_, [this, raw](int fd) {
      std::lock_guard lock(raw->mu);
      raw->fd = fd;
      if (fd >= 0 && stopping_) ::shutdown(fd, SHUT_RDWR);  // the destructor came first
    });
    if (!outcome) {
      log_.Warn("replay failed",
                {{"flow", id}, {"replay_of", original}, {"error", outcome.error().message}});
    } else {
      log_.Info("replayed", {{"flow", id}, {"replay_of", original}, {"status", outcome->status}});
    }
    raw->done = true;
  });
  return id;
}

}  // namespace mitmd::rules
