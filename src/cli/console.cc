#include "cli/console.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/strings.h"

namespace mitmd::cli {

namespace {

// The most a flow's line waits for the batch it goes out in, once lines are coming.
constexpr auto kBatchPause = std::chrono::milliseconds(25);
constexpr char kReset[] = "\x1b[0m";
constexpr char kDim[] = "\x1b[2m";
constexpr char kBold[] = "\x1b[1m";
constexpr char kRed[] = "\x1b[31m";
constexpr char kGreen[] = "\x1b[32m";
constexpr char kYellow[] = "\x1b[33m";
constexpr char kCyan[] = "\x1b[36m";
constexpr size_t kMaxUrl = 2'000;

// |text| with C0 controls, DEL and backslash escaped, at most |max| bytes of it.
std::string Printable(std::string_view text, size_t max = kMaxUrl) {
  std::string out;
  bool cut = text.size() > max;
  if (cut) text = text.substr(0, max);
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f || c == '\\') {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (cut) out += "...";
  return out;
}

std::string Size(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof(buf), "%llub", static_cast<unsigned long long>(bytes));
  } else if (bytes < (1u << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1fk", static_cast<double>(bytes) / 1024);
  } else if (bytes < (1ull << 30)) {
    std::snprintf(buf, sizeof(buf), "%.1fm", static_cast<double>(bytes) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fg", static_cast<double>(bytes) / (1ull << 30));
  }
  return buf;
}

std::string Duration(double seconds) {
  char buf[32];
  if (seconds < 1) {
    std::snprintf(buf, sizeof(buf), "%.0fms", seconds * 1000);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2fs", seconds);
  }
  return buf;
}

std::string ClockTime(double epoch) {
  time_t secs = static_cast<time_t>(epoch);
  tm local{};
  localtime_r(&secs, &local);
  char buf[32];
  int millis = static_cast<int>(std::fmod(epoch, 1.0) * 1000);
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min, local.tm_sec,
                millis);
  return buf;
}

const char* StatusColor(int status) {
  if (status >= 500) return kRed;
  if (status >= 400) return kYellow;
  if (status >= 300) return kCyan;
  if (status >= 200) return kGreen;
  return "";
}

}  // namespace

std::string FormatConsoleLine(const Flow& f, bool color) {
  auto paint = [color](const char* code, std::string_view text) {
    return color && *code ? StrCat(code, text, kReset) : std::string(text);
  };
  const Timings& t = f.timings;
  double start = t.request_start > 0 ? t.request_start : t.accepted;
  double end = std::max({t.response_end, t.request_end, t.response_start});
  std::string line = paint(kDim, StrCat(ClockTime(start), " ", Printable(f.client_addr, 64)));
  if (f.kind == Flow::Kind::kTunnel) {
    line += StrCat(" ", paint(kBold, "CONNECT"), " ", Printable(StrCat(f.server_host, ":", f.server_port)),
                   " << tunnel ", Size(f.bytes_up), " up ", Size(f.bytes_down), " down");
    if (!f.note.empty()) line += StrCat(" (", Printable(f.note, 200), ")");
  } else if (f.request) {
    // A request refused before its target was understood has no host: its target as sent.
    std::string url = f.request->host.empty() ? f.request->target : f.request->Url();
    line += StrCat(" ", paint(kBold, Printable(f.request->method, 32)), " ", Printable(url));
    if (f.response && f.response->status > 0) {
      const HttpResponse& r = *f.response;
      line += StrCat(" << ", paint(StatusColor(r.status), StrCat(r.status, r.reason.empty() ? "" : " ",
                                                                  Printable(r.reason, 64))),
                     " ", Size(r.body.size));
    }
  } else {
    line += StrCat(" ", Printable(StrCat(f.server_host, ":", f.server_port)));
  }
  if (end > start && start > 0) line += StrCat(" ", Duration(end - start));
  if (f.error) {
    line += StrCat(" ", paint(kRed, StrCat("<< error (", Printable(f.error->phase, 32), "): ",
                                           Printable(f.error->message, 500))));
  }
  if (f.insecure) line += StrCat(" ", paint(kYellow, "[insecure]"));
  line.push_back('\n');
  return line;
}

ConsoleView::ConsoleView(int fd, bool color, size_t max_queue)
    : fd_(fd), color_(color), max_queue_(max_queue), thread_([this] {
        pthread_setname_np(pthread_self(), "console");  // for top -H and /proc/PID/task
        Loop();
      }) {}

ConsoleView::~ConsoleView() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  stopping_ = true;
  wake_.notify_one();
  thread_.join();
}

void ConsoleView::OnFlow(const std::shared_ptr<const Flow>& flow) {
  if (flow->state != FlowState::kDone) return;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= max_queue_) {
      ++dropped_;
      return;
    }
    queue_.push_back(flow);
    if (pausing_) return;
  }
  wake_.notify_one();
}

uint64_t ConsoleView::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void ConsoleView::Write(std::string_view out) {
  // A terminal that cannot take the lines (a full pipe nobody reads) costs this thread, never
  // the proxy, and never the shutdown: writes go out in pieces no larger than PIPE_BUF once
  // poll says there is room, and once stopping, a terminal that stays full gets no more.
  constexpr int kPollMs = 200;
  while (!out.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    int ready = ::poll(&p, 1, kPollMs);
    if (ready < 0 && errno != EINTR) return;
    if (ready <= 0) {
      if (stopping_.load()) return;
      continue;
    }
    if (p.revents & (POLLERR | POLLNVAL | POLLHUP)) return;
    ssize_t n = ::write(fd_, out.data(), std::min<size_t>(out.size(), PIPE_BUF));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return;
    }
    out.remove_prefix(static_cast<size_t>(n));
  }
}

void ConsoleView::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) return;
    std::deque<std::shared_ptr<const Flow>> batch;
    batch.swap(queue_);
    uint64_t dropped = dropped_ - dropped_reported_;
    dropped_reported_ = dropped_;
    lock.unlock();
    std::string out;
    for (const auto& f : batch) out += FormatConsoleLine(*f, color_);
    if (dropped > 0) {
      out += StrCat("... ", dropped, " flow lines left out: the terminal could not keep up "
                    "(every flow is in the session)\n");
    }
    Write(out);
    batch.clear();
    lock.lock();
    // Lines go out in batches at most kBatchPause apart: woken for every flow, this thread
    // cost 26 us of CPU per keep-alive request, and each worker a wake-up of it per flow.
    pausing_ = true;
    wake_.wait_for(lock, kBatchPause, [&] { return stop_; });
    pausing_ = false;
  }
}

}  // namespace mitmd::cli
