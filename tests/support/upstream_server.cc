#include "support/upstream_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/strings.h"

namespace mitmd::testing {

const char kGzipJsonPlain[] =
    R"({"name":"mitmd upstream","items":[1,2,3],"nested":{"text":"h\u00e9llo w\u00f6rld"}})";

namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr size_t kEchoBodyLimit = 64 * 1024;
constexpr size_t kIoBlock = 64 * 1024;
constexpr int kListenBacklog = 256;
// Chunk sizes /chunked cycles through: tiny, odd and larger than one TLS record.
constexpr size_t kChunkSizes[] = {1, 7, 300, 4096, 20000, 65536};

uint64_t SplitMix64(uint64_t x) {
  uint64_t z = (x + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

const std::string* Find(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return &v;
  }
  return nullptr;
}

bool HasToken(const Headers& headers, std::string_view name, std::string_view token) {
  for (const auto& [k, v] : headers) {
    if (!IEquals(k, name)) continue;
    size_t start = 0;
    while (start <= v.size()) {
      size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      std::string_view item(v.data() + start, end - start);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (IEquals(item, token)) return true;
      start = end + 1;
    }
  }
  return false;
}

std::optional<uint64_t> ParseDecimal(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 418: return "I'm a teapot";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string Gzip(std::string_view plain) {
  z_stream zs = {};
  constexpr int kGzipWindowBits = 15 + 16;
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out(deflateBound(&zs, plain.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string();
}

// One connection's bytes, plain or TLS, with a read buffer.
class Stream {
 public:
  Stream(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}

  // Fills the buffer with more bytes; false at EOF or error.
  bool Fill() {
    char buf[16 * 1024];
    ssize_t n;
    if (ssl_) {
      n = SSL_read(ssl_, buf, sizeof(buf));
    } else {
      do {
        n = recv(fd_, buf, sizeof(buf), 0);
      } while (n < 0 && errno == EINTR);
    }
    if (n <= 0) return false;
    buf_.append(buf, static_cast<size_t>(n));
    return true;
  }

  // A line without its CRLF (a bare LF is accepted too); false on EOF or an overlong line.
  bool ReadLine(std::string* line, size_t limit) {
    for (;;) {
      size_t pos = buf_.find('\n');
      if (pos != std::string::npos) {
        size_t len = pos > 0 && buf_[pos - 1] == '\r' ? pos - 1 : pos;
        line->assign(buf_, 0, len);
        buf_.erase(0, pos + 1);
        return true;
      }
      if (buf_.size() > limit || !Fill()) return false;
    }
  }

  // Hands exactly |n| bytes to |sink| in pieces; false on EOF first.
  template <typename Sink>
  bool ReadExact(uint64_t n, Sink&& sink) {
    while (n > 0) {
      if (buf_.empty() && !Fill()) return false;
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
      sink(buf_.data(), take);
      buf_.erase(0, take);
      n -= take;
    }
    return true;
  }

  bool Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n;
      if (ssl_) {
        n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      } else {
        do {
          n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
      }
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Blocks until the peer closes (or Stop() shuts the socket down), discarding input.
  void DrainUntilClosed() {
    buf_.clear();
    while (Fill()) buf_.clear();
  }

 private:
  int fd_;
  SSL* ssl_;
  std::string buf_;
};

struct Request {
  std::string method, target, version;
  Headers headers, trailers;
  uint64_t body_size = 0;
  std::string body;  // the first kEchoBodyLimit bytes
  std::string body_sha256;
  bool expect_continue_sent = false;
};

// Reads a request head; false on EOF, malformed input or an overlong head.
bool ReadHead(Stream& s, Request* req) {
  std::string line;
  do {  // tolerate empty lines before a request (RFC 9112 2.2)
    if (!s.ReadLine(&line, kMaxHeadBytes)) return false;
  } while (line.empty());
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return false;
  req->method = line.substr(0, sp1);
  req->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req->version = line.substr(sp2 + 1);
  size_t total = line.size();
  for (;;) {
    if (!s.ReadLine(&line, kMaxHeadBytes)) return false;
    total += line.size();
    if (total > kMaxHeadBytes) return false;
    if (line.empty()) return true;
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return false;
    req->headers.emplace_back(line.substr(0, colon), Trim(std::string_view(line).substr(colon + 1)));
  }
}

bool ReadBody(Stream& s, Request* req) {
  SHA256_CTX sha;
  SHA256_Init(&sha);
  auto sink = [&](const char* data, size_t len) {
    SHA256_Update(&sha, data, len);
    req->body_size += len;
    if (req->body.size() < kEchoBodyLimit) {
      req->body.append(data, std::min(len, kEchoBodyLimit - req->body.size()));
    }
  };
  if (HasToken(req->headers, "Transfer-Encoding", "chunked")) {
    std::string line;
    for (;;) {
      if (!s.ReadLine(&line, kMaxHeadBytes)) return false;
      uint64_t size = 0;
      std::string_view hex(line);
      hex = hex.substr(0, hex.find(';'));
      auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
      if (ec != std::errc() || hex.empty()) return false;
      if (size == 0) break;
      if (!s.ReadExact(size, sink)) return false;
      if (!s.ReadLine(&line, kMaxHeadBytes) || !line.empty()) return false;
    }
    for (;;) {
      if (!s.ReadLine(&line, kMaxHeadBytes)) return false;
      if (line.empty()) break;
      size_t colon = line.find(':');
      if (colon == std::string::npos) return false;
      req->trailers.emplace_back(line.substr(0, colon),
                                 Trim(std::string_view(line).substr(colon + 1)));
    }
  } else if (const std::string* cl = Find(req->headers, "Content-Length")) {
    auto n = ParseDecimal(*cl);
    if (!n) return false;
    if (!s.ReadExact(*n, sink)) return false;
  }
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &sha);
  req->body_sha256 = HexEncode(digest, sizeof(digest));
  return true;
}

bool WantsBody(const Request& req) {
  if (HasToken(req.headers, "Transfer-Encoding", "chunked")) return true;
  const std::string* cl = Find(req.headers, "Content-Length");
  return cl && *cl != "0";
}

// Writes |n| pattern bytes block by block.
bool WritePattern(Stream& s, uint64_t n) {
  std::string block(kIoBlock, '\0');
  for (uint64_t off = 0; off < n;) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(kIoBlock, n - off));
    FillPattern(off, block.data(), len);
    if (!s.Write(std::string_view(block.data(), len))) return false;
    off += len;
  }
  return true;
}

std::string Head(int status, const Headers& headers) {
  std::string out = StrCat("HTTP/1.1 ", status, " ", Reason(status), "\r\n");
  for (const auto& [k, v] : headers) out += StrCat(k, ": ", v, "\r\n");
  out += "Server: mitmd-test-upstream\r\n\r\n";
  return out;
}

std::optional<uint64_t> SizeAfter(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) return std::nullopt;
  return ParseDecimal(path.substr(prefix.size()));
}

// Writes the response to |req|. Returns false when the connection must close afterwards.
bool Respond(Stream& s, const Request& req) {
  const bool head = req.method == "HEAD";
  std::string_view path(req.target);
  // Absolute-form targets (a proxy forwarding as-is) still route by path.
  if (size_t scheme = path.find("://"); scheme != std::string_view::npos) {
    size_t slash = path.find('/', scheme + 3);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  path = path.substr(0, path.find('?'));

  auto simple = [&](int status, Headers headers, std::string_view body) {
    headers.emplace_back("Content-Length", std::to_string(body.size()));
    std::string out = Head(status, headers);
    if (!head) out.append(body);
    return s.Write(out);
  };

  if (auto n = SizeAfter(path, "/bytes/")) {
    if (!s.Write(Head(200, {{"Content-Type", "application/octet-stream"},
                            {"Content-Length", std::to_string(*n)}}))) {
      return false;
    }
    return head || WritePattern(s, *n);
  }
  if (auto n = SizeAfter(path, "/stream/")) {
    if (!s.Write(Head(200, {{"Content-Type", "application/octet-stream"},
                            {"Content-Length", std::to_string(*n)}}))) {
      return false;
    }
    return head || WritePattern(s, *n);
  }
  if (auto n = SizeAfter(path, "/chunked/")) {
    if (!s.Write(Head(200, {{"Content-Type", "application/octet-stream"},
                            {"Transfer-Encoding", "chunked"},
                            {"Trailer", "X-Body-Sha256"}}))) {
      return false;
    }
    if (head) return true;
    std::string body = PatternBytes(static_cast<size_t>(*n));
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const uint8_t*>(body.data()), body.size(), digest);
    size_t off = 0;
    for (size_t i = 0; off < body.size(); ++i) {
      size_t len = std::min(kChunkSizes[i % std::size(kChunkSizes)], body.size() - off);
      char hex[20];
      auto [end, ec] = std::to_chars(hex, hex + sizeof(hex), len, 16);
      std::string chunk = std::string(hex, end) + "\r\n" + body.substr(off, len) + "\r\n";
      if (!s.Write(chunk)) return false;
      off += len;
    }
    return s.Write(StrCat("0\r\nX-Body-Sha256: ", HexEncode(digest, sizeof(digest)), "\r\n\r\n"));
  }
  if (auto n = SizeAfter(path, "/close/")) {
    if (!s.Write(Head(200, {{"Content-Type", "application/octet-stream"},
                            {"Connection", "close"}}))) {
      return false;
    }
    if (!head) WritePattern(s, *n);
    return false;
  }
  if (path == "/echo") {
    nlohmann::json headers = nlohmann::json::array();
    for (const auto& [k, v] : req.headers) headers.push_back({k, v});
    nlohmann::json trailers = nlohmann::json::array();
    for (const auto& [k, v] : req.trailers) trailers.push_back({k, v});
    nlohmann::json j = {{"method", req.method},
                        {"target", req.target},
                        {"version", req.version},
                        {"headers", headers},
                        {"trailers", trailers},
                        {"body_size", req.body_size},
                        {"body_sha256", req.body_sha256},
                        {"expect_continue_sent", req.expect_continue_sent}};
    if (req.body_size <= kEchoBodyLimit) j["body"] = req.body;
    return simple(200, {{"Content-Type", "application/json"}},
                  j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (auto code = SizeAfter(path, "/status/")) {
    int status = static_cast<int>(*code);
    if (status < 200 || status > 599) return simple(400, {}, "status must be 200..599\n");
    if (status == 204 || status == 304) {
      Headers h;
      if (status == 304) h.emplace_back("ETag", "\"mitmd-test\"");
      return s.Write(Head(status, h));
    }
    return simple(status, {{"Content-Type", "text/plain"}}, StrCat("status ", status, "\n"));
  }
  if (path == "/gzip-json") {
    return simple(200, {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}},
                  Gzip(kGzipJsonPlain));
  }
  if (path == "/slow") {
    s.DrainUntilClosed();
    return false;
  }
  return simple(404, {{"Content-Type", "text/plain"}}, "no such route\n");
}

int AlpnSelect(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len,
               void*) {
  static constexpr uint8_t kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned i = 0; i < in_len;) {
    uint8_t len = in[i];
    if (i + 1 + len > in_len) break;
    if (len == sizeof(kHttp11) && memcmp(in + i + 1, kHttp11, len) == 0) {
      *out = in + i + 1;
      *out_len = len;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

void FillPattern(uint64_t offset, char* out, size_t n) {
  size_t i = 0;
  while (i < n && (offset + i) % 8 != 0) {
    uint64_t pos = offset + i;
    out[i++] = static_cast<char>(SplitMix64(pos / 8) >> (8 * (pos % 8)));
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t word = SplitMix64((offset + i) / 8);
    uint8_t bytes[8];
    for (int b = 0; b < 8; ++b) bytes[b] = static_cast<uint8_t>(word >> (8 * b));
    memcpy(out + i, bytes, 8);
  }
  for (; i < n; ++i) {
    uint64_t pos = offset + i;
    out[i] = static_cast<char>(SplitMix64(pos / 8) >> (8 * (pos % 8)));
  }
}

std::string PatternBytes(size_t n) {
  std::string out(n, '\0');
  FillPattern(0, out.data(), n);
  return out;
}

UpstreamServer::UpstreamServer(UpstreamOptions options) : options_(std::move(options)) {}

UpstreamServer::~UpstreamServer() { Stop(); }

std::string UpstreamServer::Url(const std::string& path, const std::string& host) const {
  std::string h = host.empty() ? options_.host : host;
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  return StrCat(options_.tls ? "https" : "http", "://", h, ":", port_, path);
}

Status UpstreamServer::Start() {
  // A peer that closes mid-response must not kill the test binary.
  signal(SIGPIPE, SIG_IGN);
  if (options_.tls && options_.mode == UpstreamOptions::Mode::kHttp) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    if (!ctx_ || !SSL_CTX_set_min_proto_version(ctx_.get(), options_.min_tls_version) ||
        !SSL_CTX_set_max_proto_version(ctx_.get(), options_.max_tls_version)) {
      return Fail("upstream: cannot create the TLS context");
    }
    if (!SSL_CTX_use_certificate_chain_file(ctx_.get(), options_.cert_file.c_str()) ||
        !SSL_CTX_use_PrivateKey_file(ctx_.get(), options_.key_file.c_str(), SSL_FILETYPE_PEM)) {
      return Fail("upstream: cannot load " + options_.cert_file + " / " + options_.key_file);
    }
    if (!options_.client_ca_file.empty()) {
      bssl::UniquePtr<STACK_OF(X509_NAME)> names(
          SSL_load_client_CA_file(options_.client_ca_file.c_str()));
      X509_STORE* store = SSL_CTX_get_cert_store(ctx_.get());
      if (!names || !X509_STORE_load_locations(store, options_.client_ca_file.c_str(), nullptr)) {
        return Fail("cannot load the client CA " + options_.client_ca_file);
      }
      SSL_CTX_set_client_CA_list(ctx_.get(), names.release());
      SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    SSL_CTX_set_alpn_select_cb(ctx_.get(), AlpnSelect, nullptr);
  }

  sockaddr_storage ss = {};
  socklen_t ss_len;
  int family;
  if (options_.host.find(':') != std::string::npos) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = family = AF_INET6;
    if (inet_pton(AF_INET6, options_.host.c_str(), &sin6->sin6_addr) != 1) {
      return Fail("upstream: bad host " + options_.host);
    }
    ss_len = sizeof(*sin6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = family = AF_INET;
    if (inet_pton(AF_INET, options_.host.c_str(), &sin->sin_addr) != 1) {
      return Fail("upstream: bad host " + options_.host);
    }
    ss_len = sizeof(*sin);
  }
  listen_fd_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Fail(StrCat("upstream: socket: ", strerror(errno)));
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), ss_len) != 0 ||
      listen(listen_fd_, kListenBacklog) != 0) {
    std::string err = strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return Fail("upstream: cannot listen on " + options_.host + ": " + err);
  }
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &ss_len);
  port_ = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                   : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return {};
}

void UpstreamServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) {
    // Wakes the blocked accept() (Linux answers it with EINVAL).
    shutdown(listen_fd_, SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    close(listen_fd_);
    listen_fd_ = -1;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) {
      if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    }
  }
  // No new connections can appear now: the accept thread is gone.
  for (auto& c : conns_) c->thread.join();
  conns_.clear();
}

void UpstreamServer::AcceptLoop() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) usleep(10'000);
        continue;
      }
      return;
    }
    ++connections_;
    if (options_.mode == UpstreamOptions::Mode::kCloseOnAccept) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ReapFinished();
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
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

void UpstreamServer::ReapFinished() {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) c->thread.join();
}

void UpstreamServer::CloseConn(Conn* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  close(conn->fd);
  conn->fd = -1;
  conn->done = true;
}

void UpstreamServer::Serve(Conn* conn) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd = conn->fd;
  }
  if (options_.mode == UpstreamOptions::Mode::kSilent) {
    Stream(fd, nullptr).DrainUntilClosed();
    CloseConn(conn);
    return;
  }
  bssl::UniquePtr<SSL> ssl;
  if (options_.tls) {
    ssl.reset(SSL_new(ctx_.get()));
    if (!ssl || !SSL_set_fd(ssl.get(), fd) || SSL_accept(ssl.get()) != 1) {
      ERR_clear_error();
      CloseConn(conn);
      return;
    }
    ++handshakes_;
    last_tls_version_ = static_cast<uint16_t>(SSL_version(ssl.get()));
  }
  Stream s(fd, ssl.get());
  for (;;) {
    Request req;
    if (!ReadHead(s, &req)) break;
    ++requests_;
    if (WantsBody(req) && HasToken(req.headers, "Expect", "100-continue") &&
        req.version == "HTTP/1.1") {
      if (!s.Write("HTTP/1.1 100 Continue\r\n\r\n")) break;
      req.expect_continue_sent = true;
    }
    if (!ReadBody(s, &req)) break;
    bool keep = Respond(s, req);
    bool client_close = HasToken(req.headers, "Connection", "close") ||
                        (req.version == "HTTP/1.0" &&
                         !HasToken(req.headers, "Connection", "keep-alive"));
    if (!keep || client_close) break;
  }
  if (ssl) SSL_shutdown(ssl.get());
  ERR_clear_error();
  CloseConn(conn);
}

}  // namespace mitmd::testing
