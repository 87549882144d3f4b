#pragma once
// The benchmark's origin: a lean HTTPS/1.1 server on 127.0.0.1, port 0. One blocking thread per
// connection, keep-alive, responses written with a single SSL_write where they fit, so that it is
// never what limits the benchmark.
//
// Routes (GET; any other method is answered the same way, its body is not read):
//   /bytes        the fixed small body (its size is set at Start), Content-Length
//   /stream/N     N bytes written from one constant block (any N, constant memory), Content-Length
//   other         404

#include <openssl/ssl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "bench_pki.h"
#include "core/result.h"

namespace mitmd::bench {

class BenchUpstream {
 public:
  // Binds 127.0.0.1:0 and starts accepting, serving with |pki|'s leaf.
  static Result<std::unique_ptr<BenchUpstream>> Start(const BenchPki& pki, size_t body_bytes);
  ~BenchUpstream();  // Stop()
  BenchUpstream(const BenchUpstream&) = delete;
  BenchUpstream& operator=(const BenchUpstream&) = delete;

  // Closes the listener and every connection, and joins every thread. Idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  uint64_t requests_served() const { return requests_.load(std::memory_order_relaxed); }
  uint64_t connections_accepted() const { return accepted_.load(std::memory_order_relaxed); }

 private:
  struct Conn {
    int fd = -1;  // closed by the owner after the thread is joined
    std::thread thread;
    std::atomic<bool> done{false};
  };

  BenchUpstream() = default;
  void AcceptLoop();
  void Serve(Conn* conn);
  // Answers every complete request in |buf| and erases it; false when the connection must close.
  bool Answer(SSL* ssl, std::string& buf);
  void ReapFinished();

  bssl::UniquePtr<SSL_CTX> ctx_;
  std::string small_body_;
  std::string small_response_;  // head and body, keep-alive
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> accepted_{0};
  std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;
};

}  // namespace mitmd::bench
