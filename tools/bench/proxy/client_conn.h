#pragma once
// One load-generator connection as a non-blocking state machine: TCP connect, the proxy's
// CONNECT (when going through a proxy), the TLS handshake with full verification against the
// root the client was told to trust, then GET requests one after another on the connection.

#include <openssl/ssl.h>
#include <poll.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "response_reader.h"

namespace mitmd::bench {

using Clock = std::chrono::steady_clock;

// Where the load goes.
struct Endpoint {
  uint16_t proxy_port = 0;  // a proxy on 127.0.0.1; 0 connects straight to the origin
  // The origin's name: the CONNECT authority, Host, SNI (not sent for IP literals) and the name
  // the certificate is verified for. The origin itself always listens on 127.0.0.1.
  std::string origin_host = "127.0.0.1";
  uint16_t origin_port = 0;
  std::string trust_ca_file;  // the only root the client trusts
  // Leave Nagle on, as Python requests, bare ssl sockets and wget do towards a proxy (curl,
  // Go and browsers set TCP_NODELAY).
  bool nagle = false;
  // Offer the last session the server handed this connection (TLS 1.3 tickets, TLS 1.2 tickets
  // or session IDs) when it reconnects, as browsers and curl do. Needs a context made with
  // |resume|.
  bool resume = false;
};

// A client TLS context trusting only |ca_file|, offering http/1.1. Without |resume| every new
// connection is a full handshake; with it each ClientConn keeps the sessions it is handed.
Result<bssl::UniquePtr<SSL_CTX>> MakeClientContext(const std::string& ca_file,
                                                   bool resume = false);

class ClientConn {
 public:
  enum class Step {
    kWait,      // blocked: poll fd() for poll_events()
    kResponse,  // a whole response arrived
    kFailed,    // see error(); the connection is unusable until Open()
  };

  // |ctx| is borrowed and must outlive the connection.
  ClientConn(const Endpoint& endpoint, SSL_CTX* ctx, const std::string& path);
  ~ClientConn();
  ClientConn(const ClientConn&) = delete;
  ClientConn& operator=(const ClientConn&) = delete;

  // Closes any current connection and starts a new one, which sends the request once it is
  // established.
  void Open();
  // After kResponse on a connection that may stay open: sends the request again.
  void SendNext();
  // Progresses until blocked, a response completed, or a failure.
  Step Drive();
  // Sends close_notify (best effort) and closes the socket.
  void Close();

  int fd() const { return fd_; }
  short poll_events() const { return events_; }
  const std::string& error() const { return error_; }
  // Valid after kResponse.
  int status() const { return reader_.status(); }
  bool must_close() const { return reader_.must_close(); }
  uint64_t body_bytes() const { return reader_.body_bytes(); }
  Clock::time_point opened_at() const { return opened_at_; }
  Clock::time_point request_started_at() const { return request_started_at_; }
  // Whether the current connection resumed a session.
  bool resumed() const { return ssl_ && SSL_session_reused(ssl_.get()); }

  // The context's new-session callback: keeps |session| for the next connection.
  static int OnNewSession(SSL* ssl, SSL_SESSION* session);

 private:
  enum class State { kClosed, kConnecting, kProxyWrite, kProxyRead, kHandshake, kWriteRequest,
                     kReadResponse, kResponseDone };

  Step Fail(std::string message);
  // Maps an SSL_* return value that was not success to kWait or kFailed.
  Step SslWait(int ret, const char* what);
  void StartRequest();

  Endpoint endpoint_;
  SSL_CTX* ctx_;
  std::string request_;
  std::string proxy_request_;
  State state_ = State::kClosed;
  int fd_ = -1;
  bssl::UniquePtr<SSL> ssl_;
  bssl::UniquePtr<SSL_SESSION> session_;  // the last one the server handed us (with resume)
  short events_ = 0;
  size_t written_ = 0;
  std::string proxy_reply_;
  std::vector<char> read_buf_;
  ResponseReader reader_;
  std::string error_;
  Clock::time_point opened_at_;
  Clock::time_point request_started_at_;
};

}  // namespace mitmd::bench
