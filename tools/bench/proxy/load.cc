#include "load.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "core/strings.h"

namespace mitmd::bench {
namespace {

// A connection that failed waits this long before it redials, so that a proxy refusing
// everything is not hammered in a tight loop.
constexpr auto kRetryDelay = std::chrono::milliseconds(10);
constexpr int kPollSliceMs = 50;

struct ThreadStats {
  std::vector<uint32_t> latencies_us;
  uint64_t resumed = 0;
  uint64_t errors = 0;
  std::string first_error;
};

struct Shared {
  std::atomic<bool> window_open{false};
  std::atomic<bool> stop{false};
};

struct Slot {
  std::unique_ptr<ClientConn> conn;
  bool backing_off = false;
  Clock::time_point retry_at;
};

void RecordError(ThreadStats& stats, const std::string& message) {
  if (stats.errors++ == 0) stats.first_error = message;
}

// Drives |slot| until it blocks, recording every completed response and starting the next
// request (or connection).
void Pump(Slot& slot, LoadKind kind, const Shared& shared, ThreadStats& stats) {
  ClientConn& c = *slot.conn;
  for (;;) {
    ClientConn::Step step = c.Drive();
    if (step == ClientConn::Step::kWait) return;
    if (step == ClientConn::Step::kFailed) {
      RecordError(stats, c.error());
      slot.backing_off = true;
      slot.retry_at = Clock::now() + kRetryDelay;
      return;
    }
    if (c.status() != 200) {
      RecordError(stats, StrCat("HTTP status ", c.status()));
    } else if (shared.window_open.load(std::memory_order_relaxed)) {
      Clock::time_point start =
          kind == LoadKind::kNewConnection ? c.opened_at() : c.request_started_at();
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      stats.latencies_us.push_back(static_cast<uint32_t>(us.count()));
      if (c.resumed()) ++stats.resumed;
    }
    if (kind == LoadKind::kNewConnection || c.must_close()) {
      c.Open();
    } else {
      c.SendNext();
    }
  }
}

void Worker(std::vector<Slot>& slots, LoadKind kind, const Shared& shared, ThreadStats& stats) {
  for (Slot& s : slots) {
    s.conn->Open();
    Pump(s, kind, shared, stats);
  }
  std::vector<pollfd> fds;
  std::vector<Slot*> owners;
  while (!shared.stop.load(std::memory_order_relaxed)) {
    fds.clear();
    owners.clear();
    int timeout_ms = kPollSliceMs;
    Clock::time_point now = Clock::now();
    for (Slot& s : slots) {
      if (s.backing_off) {
        if (now < s.retry_at) {
          auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(s.retry_at - now);
          timeout_ms = std::min<int>(timeout_ms, static_cast<int>(wait.count()) + 1);
          continue;
        }
        s.backing_off = false;
        s.conn->Open();
        Pump(s, kind, shared, stats);
        if (s.backing_off) continue;
      }
      if (s.conn->fd() >= 0 && s.conn->poll_events() != 0) {
        fds.push_back(pollfd{s.conn->fd(), s.conn->poll_events(), 0});
        owners.push_back(&s);
      }
    }
    if (poll(fds.data(), fds.size(), timeout_ms) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents != 0) Pump(*owners[i], kind, shared, stats);
    }
  }
  for (Slot& s : slots) s.conn->Close();
}

double Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return sorted[i] / 1000.0;
}

}  // namespace

Result<LoadResult> RunLoad(const Endpoint& endpoint, const LoadOptions& options) {
  auto ctx = MakeClientContext(endpoint.trust_ca_file, endpoint.resume);
  if (!ctx) return std::unexpected(ctx.error());
  int connections = std::max(1, options.connections);
  int threads = std::clamp(options.threads, 1, connections);

  std::vector<std::vector<Slot>> slots(static_cast<size_t>(threads));
  for (int i = 0; i < connections; ++i) {
    Slot slot;
    slot.conn = std::make_unique<ClientConn>(endpoint, ctx->get(), options.path);
    slots[static_cast<size_t>(i % threads)].push_back(std::move(slot));
  }
  Shared shared;
  std::vector<ThreadStats> stats(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (size_t t = 0; t < slots.size(); ++t) {
    workers.emplace_back(
        [&, t] { Worker(slots[t], options.kind, shared, stats[t]); });
  }

  std::this_thread::sleep_for(options.warmup);
  if (options.on_window_start) options.on_window_start();
  Clock::time_point start = Clock::now();
  shared.window_open.store(true);
  std::this_thread::sleep_for(options.duration);
  shared.window_open.store(false);
  Clock::time_point end = Clock::now();
  if (options.on_window_end) options.on_window_end();
  shared.stop.store(true);
  for (auto& w : workers) w.join();

  LoadResult result;
  result.seconds = std::chrono::duration<double>(end - start).count();
  std::vector<uint32_t> all;
  for (ThreadStats& s : stats) {
    all.insert(all.end(), s.latencies_us.begin(), s.latencies_us.end());
    result.resumed += s.resumed;
    if (result.errors == 0 && s.errors > 0) result.first_error = s.first_error;
    result.errors += s.errors;
  }
  std::sort(all.begin(), all.end());
  result.requests = all.size();
  result.p50_ms = Percentile(all, 0.50);
  result.p99_ms = Percentile(all, 0.99);
  result.max_ms = all.empty() ? 0 : all.back() / 1000.0;
  if (result.requests == 0) {
    return Fail(StrCat("no request succeeded in the measured window (", result.errors,
                       " errors; first: ", result.first_error, ")"));
  }
  return result;
}

namespace {

// Drives |conn| (already opened) to the end of one response, or fails after |timeout|.
Status DriveToResponse(ClientConn& conn, std::chrono::seconds timeout, const char* what) {
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    ClientConn::Step step = conn.Drive();
    if (step == ClientConn::Step::kFailed) return Fail(StrCat(what, " failed: ", conn.error()));
    if (step == ClientConn::Step::kResponse) return {};
    Clock::time_point now = Clock::now();
    if (now >= deadline) {
      return Fail(StrCat(what, " did not finish within ", timeout.count(), " s (",
                         conn.body_bytes(), " bytes received)"));
    }
    int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
    pollfd pfd{conn.fd(), conn.poll_events(), 0};
    poll(&pfd, 1, std::min(wait_ms, kPollSliceMs));
  }
}

}  // namespace

Result<double> TimeOneConnection(const Endpoint& endpoint, const std::string& path,
                                 std::chrono::seconds timeout) {
  auto ctx = MakeClientContext(endpoint.trust_ca_file, endpoint.resume);
  if (!ctx) return std::unexpected(ctx.error());
  ClientConn conn(endpoint, ctx->get(), path);
  conn.Open();
  if (auto st = DriveToResponse(conn, timeout, "the request"); !st) {
    return std::unexpected(st.error());
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - conn.opened_at()).count();
  if (conn.status() != 200) return Fail(StrCat("the request answered HTTP ", conn.status()));
  return ms;
}

Result<DownloadResult> RunDownload(const Endpoint& endpoint, uint64_t bytes,
                                   std::chrono::seconds timeout) {
  auto ctx = MakeClientContext(endpoint.trust_ca_file, endpoint.resume);
  if (!ctx) return std::unexpected(ctx.error());
  ClientConn conn(endpoint, ctx->get(), StrCat("/stream/", bytes));
  conn.Open();
  if (auto st = DriveToResponse(conn, timeout, "download"); !st) {
    return std::unexpected(st.error());
  }
  DownloadResult result;
  result.seconds =
      std::chrono::duration<double>(Clock::now() - conn.request_started_at()).count();
  result.bytes = conn.body_bytes();
  if (conn.status() != 200) return Fail(StrCat("download answered HTTP ", conn.status()));
  if (result.bytes != bytes) {
    return Fail(StrCat("download delivered ", result.bytes, " of ", bytes, " bytes"));
  }
  return result;
}

}  // namespace mitmd::bench
