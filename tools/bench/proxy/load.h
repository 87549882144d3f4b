#pragma once
// Load patterns over ClientConn: many keep-alive connections doing sequential GETs, a fresh
// connection (CONNECT + full TLS handshake) per request, and one large streamed download.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "client_conn.h"
#include "core/result.h"

namespace mitmd::bench {

enum class LoadKind {
  kKeepAlive,      // each connection stays open and sends request after request
  kNewConnection,  // each request on a new connection, closed after the response
};

struct LoadOptions {
  LoadKind kind = LoadKind::kKeepAlive;
  int connections = 4;
  int threads = 2;  // connections are spread over this many client threads
  std::chrono::milliseconds warmup{500};
  std::chrono::milliseconds duration{5000};
  std::string path = "/bytes";
  // Called from the coordinating thread when the measured window opens and closes (e.g. to
  // sample the proxy's CPU time).
  std::function<void()> on_window_start;
  std::function<void()> on_window_end;
};

struct LoadResult {
  uint64_t requests = 0;  // responses with status 200 completed inside the window
  uint64_t errors = 0;    // failed connections or non-200 responses, warm-up included
  std::string first_error;
  double seconds = 0;  // the window's length
  double p50_ms = 0;   // latency: request sent to response complete (keep-alive), or
  double p99_ms = 0;   // connect() to response complete (new connection per request)
  double max_ms = 0;
  uint64_t resumed = 0;  // of |requests|, on a connection that resumed a TLS session

  double rps() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
};

// Runs the load for warmup + duration; fails when nothing succeeded at all.
Result<LoadResult> RunLoad(const Endpoint& endpoint, const LoadOptions& options);

struct DownloadResult {
  uint64_t bytes = 0;
  double seconds = 0;  // request sent to last byte
};

// GETs /stream/|bytes| on one connection, discarding the body.
Result<DownloadResult> RunDownload(const Endpoint& endpoint, uint64_t bytes,
                                   std::chrono::seconds timeout);

// Opens one fresh connection (CONNECT and TLS through the proxy, when there is one), sends one
// GET of |path| and returns the milliseconds from connect() to the end of the response.
Result<double> TimeOneConnection(const Endpoint& endpoint, const std::string& path,
                                 std::chrono::seconds timeout);

}  // namespace mitmd::bench
