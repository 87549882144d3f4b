#pragma once
// Debian's nginx-light as the benchmark's origin, so that "direct" is a server people deploy:
// HTTPS/1.1 on 127.0.0.1 with the bench PKI's leaf, TLS 1.2 and 1.3, session tickets and a
// session-ID cache (nginx's defaults plus a shared cache), one worker per core, and /bytes
// answering the small body from memory. Everything lives in a temporary directory.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "bench_pki.h"
#include "core/result.h"
#include "process.h"

namespace mitmd::bench {

class NginxOrigin {
 public:
  // Starts |binary| (e.g. "nginx") on a free loopback port and waits until it accepts.
  static Result<std::unique_ptr<NginxOrigin>> Start(const std::string& binary,
                                                    const BenchPki& pki, size_t body_bytes);
  ~NginxOrigin();  // Stop()
  NginxOrigin(const NginxOrigin&) = delete;
  NginxOrigin& operator=(const NginxOrigin&) = delete;

  // Asks nginx to quit and waits for it (bounded). Idempotent.
  void Stop();
  uint16_t port() const { return port_; }

 private:
  NginxOrigin() = default;

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Child> child_;
  uint16_t port_ = 0;
};

}  // namespace mitmd::bench
