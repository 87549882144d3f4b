#include "net/conn.h"

#include <event2/buffer.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cstring>

#include "core/strings.h"
#include "net/tls_errors.h"

namespace mitmd::net {

// BIO over the bufferevent's buffers: ciphertext moves between SSL and libevent without an extra
// staging buffer, and the socket I/O stays libevent's.
struct ConnBio {
  static int Read(BIO* bio, char* out, int len) {
    auto* conn = static_cast<Conn*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    int n = evbuffer_remove(bufferevent_get_input(conn->bev_), out, static_cast<size_t>(len));
    if (n > 0) return n;
    if (conn->socket_eof_) return 0;
    BIO_set_retry_read(bio);
    return -1;
  }
  static int Write(BIO* bio, const char* in, int len) {
    auto* conn = static_cast<Conn*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (bufferevent_write(conn->bev_, in, static_cast<size_t>(len)) != 0) return -1;
    return len;
  }
  static long Ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
  static int Create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
  static const BIO_METHOD* Method() {
    static const BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOCKET, "mitmd-bufferevent");
      BIO_meth_set_read(m, Read);
      BIO_meth_set_write(m, Write);
      BIO_meth_set_ctrl(m, Ctrl);
      BIO_meth_set_create(m, Create);
      return m;
    }();
    return method;
  }
};

namespace {
constexpr size_t kMaxSingleIo = 64 * 1024;
}  // namespace

std::string_view ToString(ConnEvent ev) {
  switch (ev) {
    case ConnEvent::kReadable: return "readable";
    case ConnEvent::kDrained: return "drained";
    case ConnEvent::kHandshakeDone: return "handshake_done";
    case ConnEvent::kHandshakePaused: return "handshake_paused";
    case ConnEvent::kEof: return "eof";
    case ConnEvent::kError: return "error";
  }
  return "unknown";
}

Conn::Conn(event_base* base, int fd, Delegate* delegate, ConnLimits limits)
    : base_(base),
      bev_(bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)),
      delegate_(delegate),
      limits_(limits) {
  bufferevent_setcb(bev_, ReadCb, WriteCb, EventCb, this);
  bufferevent_setwatermark(bev_, EV_READ, 0, limits_.max_input);
  bufferevent_setwatermark(bev_, EV_WRITE, limits_.output_low_water, 0);
  // libevent 2.1 reads 4 KiB at a time by default: one loop turn per 4 KiB of a download.
  bufferevent_set_max_single_read(bev_, kMaxSingleIo);
  bufferevent_set_max_single_write(bev_, kMaxSingleIo);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  poke_ = event_new(base, -1, 0, PokeCb, this);
  // Wire byte counts: what the socket added to the input, what it took from the output.
  evbuffer_add_cb(bufferevent_get_input(bev_), CountAddedCb, &bytes_read_);
  evbuffer_add_cb(bufferevent_get_output(bev_), CountDeletedCb, &bytes_written_);
}

void Conn::CountAddedCb(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  *static_cast<uint64_t*>(arg) += info->n_added;
}

void Conn::CountDeletedCb(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  *static_cast<uint64_t*>(arg) += info->n_deleted;
}

Conn::~Conn() {
  if (poke_) event_free(poke_);
  ssl_.reset();  // before the bufferevent its BIO points into
  if (plain_in_) evbuffer_free(plain_in_);
  if (bev_) bufferevent_free(bev_);
}

int Conn::fd() const { return static_cast<int>(bufferevent_getfd(bev_)); }

void Conn::StartTls(bssl::UniquePtr<SSL> ssl) {
  ssl_ = std::move(ssl);
  plain_in_ = evbuffer_new();
  BIO* bio = BIO_new(ConnBio::Method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_.get(), bio, bio);  // with rbio == wbio, SSL takes the one reference
  DriveTls();
}

void Conn::ContinueHandshake() { SchedulePoke(); }

void Conn::Write(std::string_view data) {
  if (failed_ || data.empty()) return;
  if (!tls()) {
    bufferevent_write(bev_, data.data(), data.size());
    return;
  }
  // The BIO never refuses a write, so SSL_write takes everything in one call.
  int n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
  if (n <= 0) Fail(StrCat("TLS write failed: ", TlsErrorString(ssl_.get(), n)));
}

size_t Conn::output_pending() const { return evbuffer_get_length(bufferevent_get_output(bev_)); }

void Conn::SetReading(bool enabled) {
  if (enabled == reading_) return;
  reading_ = enabled;
  if (enabled) {
    bufferevent_enable(bev_, EV_READ);
    SchedulePoke();  // bytes may already wait in our buffers, where no socket event will announce them
  } else {
    bufferevent_disable(bev_, EV_READ);
  }
}

void Conn::ShutdownWrite() {
  if (shutdown_pending_) return;
  shutdown_pending_ = true;
  if (tls() && handshake_done_ && !skip_close_notify_) SSL_shutdown(ssl_.get());
  if (output_pending() == 0) ::shutdown(fd(), SHUT_WR);
}

void Conn::SchedulePoke() { event_active(poke_, EV_TIMEOUT, 0); }

void Conn::PokeCb(evutil_socket_t, short, void* arg) { static_cast<Conn*>(arg)->OnRead(); }

void Conn::ReadCb(bufferevent*, void* arg) { static_cast<Conn*>(arg)->OnRead(); }

void Conn::WriteCb(bufferevent*, void* arg) {
  auto* self = static_cast<Conn*>(arg);
  if (self->shutdown_pending_ && self->output_pending() == 0) ::shutdown(self->fd(), SHUT_WR);
  self->Emit(ConnEvent::kDrained);
}

void Conn::EventCb(bufferevent*, short what, void* arg) {
  auto* self = static_cast<Conn*>(arg);
  if (what & BEV_EVENT_EOF) {
    self->OnSocketEof();
  } else if (what & BEV_EVENT_ERROR) {
    int err = EVUTIL_SOCKET_ERROR();
    self->socket_failed_ = true;
    self->Fail(err == ECONNRESET ? std::string("connection reset by peer")
                                 : StrCat("socket error: ", evutil_socket_error_to_string(err)));
  }
}

void Conn::OnRead() {
  if (failed_) return;
  if (!tls()) {
    if (!reading_) return;
    if (evbuffer_get_length(input()) > 0) Emit(ConnEvent::kReadable);
    if (socket_eof_ && !eof_delivered_ && evbuffer_get_length(input()) == 0) {
      eof_delivered_ = true;
      Emit(ConnEvent::kEof);
    }
    return;
  }
  DriveTls();
}

void Conn::DriveTls() {
  if (failed_) return;
  if (!handshake_done_) {
    if (burying_) {
      Emit(ConnEvent::kEof);  // nothing to flush: let the graveyard free it
      return;
    }
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_.get());
    if (r != 1) {
      int err = SSL_get_error(ssl_.get(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (socket_eof_) Fail("the peer closed the connection during the TLS handshake");
        return;
      }
      if (err == SSL_ERROR_PENDING_CERTIFICATE) {
        Emit(ConnEvent::kHandshakePaused);
        return;
      }
      Fail(TlsErrorString(ssl_.get(), r));
      return;
    }
    handshake_done_ = true;
    // BoringSSL holds a TLS 1.3 server's session tickets until its next write. Flush them now:
    // a client that leaves Nagle on holds its request until its Finished is acknowledged, and
    // the tickets carry that ACK instead of a delayed one (40 ms) when the client speaks first.
    if (SSL_is_server(ssl_.get()) && SSL_write(ssl_.get(), nullptr, 0) < 0) {
      Fail(StrCat("TLS write failed: ", TlsErrorString(ssl_.get(), -1)));
      return;
    }
    Emit(ConnEvent::kHandshakeDone);
    if (failed_) return;
  }
  ReadPlaintext();
}

void Conn::ReadPlaintext() {
  constexpr size_t kReadChunk = 16 * 1024;
  while (reading_ && !failed_ && !eof_delivered_) {
    bool progress = false;
    bool peer_closed = false;
    while (evbuffer_get_length(plain_in_) < limits_.max_input) {
      evbuffer_iovec vec;
      if (evbuffer_reserve_space(plain_in_, kReadChunk, &vec, 1) < 1) break;
      ERR_clear_error();
      int n = SSL_read(ssl_.get(), vec.iov_base, static_cast<int>(kReadChunk));
      if (n > 0) {
        vec.iov_len = static_cast<size_t>(n);
        evbuffer_commit_space(plain_in_, &vec, 1);
        progress = true;
        continue;
      }
      evbuffer_commit_space(plain_in_, &vec, 0);
      int err = SSL_get_error(ssl_.get(), n);
      if (err == SSL_ERROR_WANT_READ) {
        if (socket_eof_) {
          peer_closed = true;  // without close_notify: still an end, which may be truncated
          truncated_ = true;
        }
      } else if (err == SSL_ERROR_ZERO_RETURN) {
        peer_closed = true;
      } else if (err == SSL_ERROR_SYSCALL && socket_eof_ && ERR_peek_last_error() == 0) {
        // The peer closed the TCP connection without close_notify: an end all the same, but
        // what came last may be cut short.
        peer_closed = true;
        truncated_ = true;
      } else {
        if (progress) Emit(ConnEvent::kReadable);
        Fail(TlsErrorString(ssl_.get(), n));
        return;
      }
      break;
    }
    size_t buffered = evbuffer_get_length(plain_in_);
    if (progress || buffered > 0) Emit(ConnEvent::kReadable);
    if (failed_) return;
    if (peer_closed && evbuffer_get_length(plain_in_) == 0) {
      eof_delivered_ = true;
      Emit(ConnEvent::kEof);
      return;
    }
    // Continue only when the owner made room and there is more to decrypt.
    bool room = evbuffer_get_length(plain_in_) < buffered || buffered < limits_.max_input;
    bool more = evbuffer_get_length(bufferevent_get_input(bev_)) > 0 || SSL_pending(ssl_.get()) > 0;
    if (!progress || !room || !more) return;
  }
}

void Conn::OnSocketEof() {
  socket_eof_ = true;
  if (tls()) {
    DriveTls();
    if (!failed_ && !eof_delivered_ && handshake_done_ && reading_ &&
        evbuffer_get_length(plain_in_) == 0 &&
        evbuffer_get_length(bufferevent_get_input(bev_)) == 0) {
      eof_delivered_ = true;
      Emit(ConnEvent::kEof);
    }
    return;
  }
  OnRead();
}

void Conn::Fail(std::string message) {
  if (failed_) return;
  failed_ = true;
  error_ = std::move(message);
  bufferevent_disable(bev_, EV_READ);
  Emit(ConnEvent::kError);
}

void Conn::Emit(ConnEvent event) {
  if (delegate_ != nullptr) delegate_->OnConnEvent(*this, event);
}

// Owns a Conn being closed: waits for its output to drain, half-closes, discards what the peer
// still sends until it closes too (so the kernel sends FIN, not RST, and the last response is
// not lost), bounded by a linger timer.
class ConnGraveyard::Closer : public Conn::Delegate {
 public:
  Closer(ConnGraveyard* yard, std::unique_ptr<Conn> conn, timeval linger)
      : yard_(yard), conn_(std::move(conn)), timer_(evtimer_new(conn_->base_, TimerCb, this)) {
    conn_->set_delegate(this);
    // A TLS failure leaves the alert that tells the peer why (no_application_protocol, say)
    // in the output: it goes out before the close.
    if (conn_->failed_ && !conn_->socket_failed_ && conn_->output_pending() > 0) {
      flush_only_ = true;
      evtimer_add(timer_, &linger);
      return;
    }
    // A failed socket (reset by the peer, say) reports nothing more, so waiting would hold its
    // descriptor for the whole linger; nor is a handshake in flight worth finishing.
    if (conn_->failed_ || (conn_->tls() && !conn_->handshake_done())) {
      Finish();
      return;
    }
    evtimer_add(timer_, &linger);
    conn_->ShutdownWrite();
    conn_->SetReading(true);  // what is already buffered is discarded on the next event
    FinishIfDone();
  }
  ~Closer() override { event_free(timer_); }

  void OnConnEvent(Conn&, ConnEvent event) override {
    if (flush_only_) {
      if (event == ConnEvent::kError || conn_->output_pending() == 0) Finish();
      return;
    }
    if (event == ConnEvent::kReadable) Discard();
    if (event == ConnEvent::kEof || event == ConnEvent::kError) Finish();
    if (event == ConnEvent::kDrained) FinishIfDone();
  }

 private:
  static void TimerCb(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Closer*>(arg);
    if (self->finished_) {
      self->yard_->Remove(self);  // deletes self
      return;
    }
    self->Finish();
  }
  // The peer has closed already and everything is written: nothing to linger for.
  void FinishIfDone() {
    if (conn_->socket_eof_ && conn_->output_pending() == 0) Finish();
  }
  void Discard() { evbuffer_drain(conn_->input(), evbuffer_get_length(conn_->input())); }
  void Finish() {
    if (finished_) return;
    finished_ = true;
    conn_->set_delegate(nullptr);
    // Not from inside the Conn's own callback: free it on the next loop iteration.
    event_active(timer_, EV_TIMEOUT, 0);
  }

  ConnGraveyard* yard_;
  std::unique_ptr<Conn> conn_;
  event* timer_;
  bool finished_ = false;
  bool flush_only_ = false;  // a failed connection whose last bytes are still going out
  friend class ConnGraveyard;
};

ConnGraveyard::ConnGraveyard() = default;
ConnGraveyard::~ConnGraveyard() = default;

void ConnGraveyard::Bury(std::unique_ptr<Conn> conn, timeval linger) {
  if (!conn) return;
  // Whoever set the SSL's callbacks is letting go of it: a handshake still in flight must never
  // reach them again, and is not worth finishing.
  conn->burying_ = true;
  if (conn->ssl_) SSL_set_app_data(conn->ssl_.get(), nullptr);
  auto closer = std::make_unique<Closer>(this, std::move(conn), linger);
  Closer* raw = closer.get();
  closers_.emplace(raw, std::move(closer));
}

void ConnGraveyard::Remove(Closer* closer) { closers_.erase(closer); }

}  // namespace mitmd::net
