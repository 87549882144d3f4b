#include "client_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace mitmd::bench {
namespace {

constexpr size_t kReadBlock = 64 * 1024;
constexpr size_t kMaxProxyReply = 16 * 1024;
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

bool IsIpLiteral(const std::string& host) {
  in6_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

std::string Authority(const Endpoint& ep) {
  bool v6 = ep.origin_host.find(':') != std::string::npos;
  return StrCat(v6 ? "[" : "", ep.origin_host, v6 ? "]" : "", ":", ep.origin_port);
}

std::string SslErrorText() {
  uint32_t e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no error queued";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

}  // namespace

Result<bssl::UniquePtr<SSL_CTX>> MakeClientContext(const std::string& ca_file, bool resume) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION)) {
    return Fail("creating the client TLS context failed");
  }
  if (!SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr)) {
    return Fail(StrCat("cannot load the root to trust from ", ca_file, ": ", SslErrorText()));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (resume) {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx.get(), ClientConn::OnNewSession);
  } else {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  }
  if (SSL_CTX_set_alpn_protos(ctx.get(), kAlpnHttp11, sizeof(kAlpnHttp11)) != 0) {
    return Fail("setting the client ALPN offer failed");
  }
  return ctx;
}

ClientConn::ClientConn(const Endpoint& endpoint, SSL_CTX* ctx, const std::string& path)
    : endpoint_(endpoint), ctx_(ctx), read_buf_(kReadBlock) {
  std::string authority = Authority(endpoint);
  request_ = StrCat("GET ", path, " HTTP/1.1\r\nHost: ", authority,
                    "\r\nUser-Agent: mitmd_bench\r\nAccept: */*\r\n\r\n");
  proxy_request_ = StrCat("CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n\r\n");
}

ClientConn::~ClientConn() { Close(); }

int ClientConn::OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<ClientConn*>(SSL_get_app_data(ssl));
  if (self == nullptr) return 0;
  self->session_.reset(session);
  return 1;  // we took the reference
}

void ClientConn::Close() {
  if (ssl_ && (state_ == State::kWriteRequest || state_ == State::kReadResponse ||
               state_ == State::kResponseDone)) {
    SSL_shutdown(ssl_.get());
  }
  ssl_.reset();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  state_ = State::kClosed;
}

void ClientConn::Open() {
  Close();
  error_.clear();
  opened_at_ = Clock::now();
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = StrCat("socket(): ", std::strerror(errno));
    return;
  }
  if (!endpoint_.nagle) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  state_ = State::kConnecting;
  written_ = 0;
  proxy_reply_.clear();
}

ClientConn::Step ClientConn::Fail(std::string message) {
  error_ = std::move(message);
  Close();
  return Step::kFailed;
}

ClientConn::Step ClientConn::SslWait(int ret, const char* what) {
  switch (SSL_get_error(ssl_.get(), ret)) {
    case SSL_ERROR_WANT_READ:
      events_ = POLLIN;
      return Step::kWait;
    case SSL_ERROR_WANT_WRITE:
      events_ = POLLOUT;
      return Step::kWait;
    case SSL_ERROR_SYSCALL:
      return Fail(StrCat(what, ": ", errno ? std::strerror(errno) : "connection closed"));
    default: {
      std::string detail = SslErrorText();
      long verify = SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK) detail += StrCat(" (", X509_verify_cert_error_string(verify), ")");
      return Fail(StrCat(what, ": ", detail));
    }
  }
}

void ClientConn::StartRequest() {
  state_ = State::kWriteRequest;
  request_started_at_ = Clock::now();
  reader_.Reset();
}

void ClientConn::SendNext() { StartRequest(); }

ClientConn::Step ClientConn::Drive() {
  for (;;) {
    switch (state_) {
      case State::kClosed:
        return Fail(error_.empty() ? "not connected" : error_);

      case State::kConnecting: {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(endpoint_.proxy_port ? endpoint_.proxy_port : endpoint_.origin_port);
        if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
            errno != EISCONN) {
          if (errno == EINPROGRESS || errno == EALREADY) {
            events_ = POLLOUT;
            return Step::kWait;
          }
          return Fail(StrCat("connect: ", std::strerror(errno)));
        }
        if (endpoint_.proxy_port) {
          state_ = State::kProxyWrite;
          break;
        }
        state_ = State::kHandshake;
        break;
      }

      case State::kProxyWrite: {
        ssize_t n = send(fd_, proxy_request_.data() + written_, proxy_request_.size() - written_,
                         MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN) {
            events_ = POLLOUT;
            return Step::kWait;
          }
          return Fail(StrCat("sending CONNECT: ", std::strerror(errno)));
        }
        written_ += static_cast<size_t>(n);
        if (written_ == proxy_request_.size()) state_ = State::kProxyRead;
        break;
      }

      case State::kProxyRead: {
        char buf[4096];
        ssize_t n = recv(fd_, buf, sizeof(buf), 0);
        if (n < 0 && errno == EAGAIN) {
          events_ = POLLIN;
          return Step::kWait;
        }
        if (n <= 0) {
          return Fail(StrCat("proxy closed before answering CONNECT",
                             proxy_reply_.empty() ? "" : ": ", proxy_reply_.substr(0, 80)));
        }
        proxy_reply_.append(buf, static_cast<size_t>(n));
        size_t end = proxy_reply_.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (proxy_reply_.size() > kMaxProxyReply) return Fail("CONNECT reply too large");
          break;
        }
        if (proxy_reply_.compare(0, 9, "HTTP/1.1 ") != 0 &&
            proxy_reply_.compare(0, 9, "HTTP/1.0 ") != 0) {
          return Fail("CONNECT reply is not HTTP");
        }
        if (proxy_reply_.compare(9, 3, "200") != 0) {
          return Fail(StrCat("CONNECT refused: ", proxy_reply_.substr(0, proxy_reply_.find('\r'))));
        }
        if (end + 4 != proxy_reply_.size()) return Fail("proxy sent bytes after its CONNECT reply");
        state_ = State::kHandshake;
        break;
      }

      case State::kHandshake: {
        if (!ssl_) {
          ssl_.reset(SSL_new(ctx_));
          if (!ssl_ || !SSL_set_fd(ssl_.get(), fd_)) return Fail("SSL_new failed");
          SSL_set_connect_state(ssl_.get());
          SSL_set_app_data(ssl_.get(), this);
          if (endpoint_.resume && session_) SSL_set_session(ssl_.get(), session_.get());
          X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
          const std::string& host = endpoint_.origin_host;
          if (IsIpLiteral(host)) {
            X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
          } else {
            SSL_set_tlsext_host_name(ssl_.get(), host.c_str());
            X509_VERIFY_PARAM_set1_host(param, host.data(), host.size());
          }
        }
        errno = 0;
        int r = SSL_do_handshake(ssl_.get());
        if (r != 1) return SslWait(r, "TLS handshake");
        StartRequest();
        break;
      }

      case State::kWriteRequest: {
        errno = 0;
        int r = SSL_write(ssl_.get(), request_.data(), static_cast<int>(request_.size()));
        if (r <= 0) return SslWait(r, "sending the request");
        state_ = State::kReadResponse;
        break;
      }

      case State::kReadResponse: {
        errno = 0;
        int r = SSL_read(ssl_.get(), read_buf_.data(), static_cast<int>(read_buf_.size()));
        if (r <= 0) {
          int err = SSL_get_error(ssl_.get(), r);
          bool eof = err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0);
          if (!eof) return SslWait(r, "reading the response");
          if (auto st = reader_.Eof(); !st) return Fail(st.error().message);
          state_ = State::kResponseDone;
          return Step::kResponse;
        }
        auto used = reader_.Feed(read_buf_.data(), static_cast<size_t>(r));
        if (!used) return Fail(StrCat("bad response: ", used.error().message));
        if (!reader_.done()) break;
        if (*used != static_cast<size_t>(r)) return Fail("bytes after the end of the response");
        state_ = State::kResponseDone;
        return Step::kResponse;
      }

      case State::kResponseDone:
        events_ = 0;
        return Step::kWait;
    }
  }
}

}  // namespace mitmd::bench
