#pragma once
// A test origin server on loopback, port 0: plain HTTP/1.1 or TLS (BoringSSL), one blocking
// thread per connection, keep-alive. Its HTTP code is deliberately independent of mitmd's codec,
// so that it can serve as an oracle for it.
//
// Routes (GET and POST; HEAD on any route answers the same head without a body):
//   /bytes/N      N pattern bytes (see FillPattern) with Content-Length
//   /stream/N     same body, generated block by block (any size, constant memory)
//   /chunked/N    N pattern bytes in chunks of varying size, then the trailer
//                 "X-Body-Sha256: <hex>" (announced by "Trailer: X-Body-Sha256")
//   /close/N      N pattern bytes, no Content-Length, the connection close delimits the body
//   /echo         JSON: {"method","target","version","headers":[[name,value],...],
//                 "trailers":[...],"body_size","body_sha256","body" (when <= 64 KiB),
//                 "expect_continue_sent"}. Reads Content-Length and chunked bodies; answers
//                 "Expect: 100-continue" with "100 Continue" before reading the body.
//   /status/CODE  that status; 1xx/204/304 without a body, others with "status CODE\n"
//   /gzip-json    kGzipJsonPlain, gzip-encoded (Content-Encoding: gzip)
//   /slow         reads the request and never answers (until the peer or Stop() closes)
//   anything else 404

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.h"

namespace mitmd::testing {

// Writes bytes [offset, offset + n) of the endless deterministic pseudo-random stream that
// every body route serves.
void FillPattern(uint64_t offset, char* out, size_t n);
// The first |n| bytes of that stream.
std::string PatternBytes(size_t n);

// The JSON document /gzip-json serves (before gzip).
extern const char kGzipJsonPlain[];

struct UpstreamOptions {
  enum class Mode {
    kHttp,           // serve the routes above
    kSilent,         // accept TCP and never send a byte (a handshake that times out)
    kCloseOnAccept,  // close every connection right after accepting it
  };
  Mode mode = Mode::kHttp;
  std::string host = "127.0.0.1";  // or "::1"
  bool tls = true;
  std::string cert_file;  // PEM chain, when tls
  std::string key_file;   // PEM key, when tls
  uint16_t min_tls_version = TLS1_2_VERSION;
  uint16_t max_tls_version = TLS1_3_VERSION;
  // When set, the server demands a client certificate issued by this CA (mutual TLS).
  std::string client_ca_file;
};

class UpstreamServer {
 public:
  explicit UpstreamServer(UpstreamOptions options);
  ~UpstreamServer();  // Stop()
  UpstreamServer(const UpstreamServer&) = delete;
  UpstreamServer& operator=(const UpstreamServer&) = delete;

  // Binds port 0 on options.host and starts accepting.
  Status Start();
  // Closes the listener and every connection, and joins all threads. Idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  const std::string& host() const { return options_.host; }
  // "https://localhost:PORT" style base URLs; |host| defaults to the bound address
  // (IPv6 in brackets).
  std::string Url(const std::string& path, const std::string& host = "") const;

  uint64_t connections_accepted() const { return connections_.load(); }
  uint64_t requests_served() const { return requests_.load(); }
  uint64_t tls_handshakes_completed() const { return handshakes_.load(); }
  // The protocol version of the last completed handshake (TLS1_2_VERSION, ...), 0 if none.
  uint16_t last_tls_version() const { return last_tls_version_.load(); }

 private:
  struct Conn {
    std::thread thread;
    int fd = -1;  // guarded by mu_; -1 once the connection thread closed it
    bool done = false;
  };

  void AcceptLoop();
  void Serve(Conn* conn);
  void CloseConn(Conn* conn);
  void ReapFinished();

  UpstreamOptions options_;
  bssl::UniquePtr<SSL_CTX> ctx_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> handshakes_{0};
  std::atomic<uint16_t> last_tls_version_{0};

  std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;
};

}  // namespace mitmd::testing
