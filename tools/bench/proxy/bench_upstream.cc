#include "bench_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

#include "core/strings.h"

namespace mitmd::bench {
namespace {

constexpr size_t kReadBlock = 16 * 1024;
constexpr size_t kStreamBlock = 64 * 1024;
constexpr size_t kMaxHead = 64 * 1024;
constexpr int kListenBacklog = 1024;
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int SelectAlpn(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len,
               void*) {
  uint8_t* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kAlpnHttp11, sizeof(kAlpnHttp11), in, in_len) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string ResponseHead(int status, std::string_view reason, uint64_t length, bool close) {
  return StrCat("HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: application/octet-stream"
                "\r\nContent-Length: ", length, close ? "\r\nConnection: close" : "", "\r\n\r\n");
}

bool WriteAll(SSL* ssl, const char* data, size_t len) {
  while (len > 0) {
    int n = SSL_write(ssl, data, static_cast<int>(std::min<size_t>(len, 1 << 30)));
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// True when the header block |head| (lower-cased) asks to close the connection.
bool WantsClose(std::string_view request_line, std::string head) {
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return request_line.ends_with("HTTP/1.0") || head.find("\nconnection: close") != head.npos;
}

}  // namespace

Result<std::unique_ptr<BenchUpstream>> BenchUpstream::Start(const BenchPki& pki,
                                                            size_t body_bytes) {
  std::unique_ptr<BenchUpstream> up(new BenchUpstream());
  up->ctx_.reset(SSL_CTX_new(TLS_method()));
  if (!up->ctx_ || !SSL_CTX_set_min_proto_version(up->ctx_.get(), TLS1_2_VERSION) ||
      !SSL_CTX_use_certificate(up->ctx_.get(), pki.leaf_cert.get()) ||
      !SSL_CTX_use_PrivateKey(up->ctx_.get(), pki.leaf_key.get())) {
    return Fail("setting up the benchmark upstream's TLS context failed");
  }
  SSL_CTX_set_alpn_select_cb(up->ctx_.get(), SelectAlpn, nullptr);
  up->small_body_.assign(body_bytes, 'x');
  up->small_response_ = ResponseHead(200, "OK", body_bytes, false) + up->small_body_;

  up->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (up->listen_fd_ < 0) return Fail("socket() failed for the benchmark upstream");
  int one = 1;
  setsockopt(up->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(up->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(up->listen_fd_, kListenBacklog) != 0 ||
      getsockname(up->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Fail(StrCat("binding the benchmark upstream to 127.0.0.1 failed: ",
                       std::strerror(errno)));
  }
  up->port_ = ntohs(addr.sin_port);
  up->accept_thread_ = std::thread([u = up.get()] { u->AcceptLoop(); });
  return up;
}

BenchUpstream::~BenchUpstream() { Stop(); }

void BenchUpstream::Stop() {
  if (stopping_.exchange(true)) return;
  shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  close(listen_fd_);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : conns_) shutdown(c->fd, SHUT_RDWR);
  for (auto& c : conns_) {
    c->thread.join();
    close(c->fd);
  }
  conns_.clear();
}

void BenchUpstream::AcceptLoop() {
  while (!stopping_.load()) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // the listener was shut down
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    accepted_.fetch_add(1, std::memory_order_relaxed);
    ReapFinished();
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.load()) {
      close(fd);
      return;
    }
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    Conn* raw = conn.get();
    conns_.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void BenchUpstream::ReapFinished() {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if ((*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    c->thread.join();
    close(c->fd);
  }
}

void BenchUpstream::Serve(Conn* conn) {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (ssl && SSL_set_fd(ssl.get(), conn->fd) && SSL_accept(ssl.get()) == 1) {
    std::string buf;
    char block[kReadBlock];
    for (;;) {
      int n = SSL_read(ssl.get(), block, sizeof(block));
      if (n <= 0) break;
      buf.append(block, static_cast<size_t>(n));
      if (!Answer(ssl.get(), buf)) break;
    }
    SSL_shutdown(ssl.get());
  }
  conn->done.store(true);
}

bool BenchUpstream::Answer(SSL* ssl, std::string& buf) {
  static const std::string kStreamBlockData(kStreamBlock, 's');
  for (;;) {
    size_t end = buf.find("\r\n\r\n");
    if (end == std::string::npos) return buf.size() <= kMaxHead;
    std::string_view head(buf.data(), end + 2);
    std::string_view line = head.substr(0, head.find("\r\n"));
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == line.npos || sp2 <= sp1) return false;
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    bool close = WantsClose(line, std::string(head));
    requests_.fetch_add(1, std::memory_order_relaxed);

    bool ok;
    if (target == "/bytes" && !close) {
      ok = WriteAll(ssl, small_response_.data(), small_response_.size());
    } else if (target == "/bytes") {
      std::string r = ResponseHead(200, "OK", small_body_.size(), true) + small_body_;
      ok = WriteAll(ssl, r.data(), r.size());
    } else if (target.starts_with("/stream/")) {
      uint64_t n = 0;
      std::string_view digits = target.substr(8);
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (ec != std::errc() || p != digits.data() + digits.size()) return false;
      std::string h = ResponseHead(200, "OK", n, close);
      ok = WriteAll(ssl, h.data(), h.size());
      while (ok && n > 0) {
        size_t chunk = std::min<uint64_t>(n, kStreamBlock);
        ok = WriteAll(ssl, kStreamBlockData.data(), chunk);
        n -= chunk;
      }
    } else {
      std::string r = ResponseHead(404, "Not Found", 0, close);
      ok = WriteAll(ssl, r.data(), r.size());
    }
    buf.erase(0, end + 4);
    if (!ok || close) return false;
  }
}

}  // namespace mitmd::bench
