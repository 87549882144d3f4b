#include "net/conn.h"

#include <event2/buffer.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "core/strings.h"
#include "net/tls_errors.h"

namespace mitmd::net {

// BIO over the Conn's buffers: ciphertext moves between SSL and the socket without an extra
// staging buffer. Writes only queue: the Conn flushes them with whatever else this loop turn
// writes, so a handshake flight, a run of records or a head and its body leave in one sendmsg.
struct ConnBio {
  static int Read(BIO* bio, char* out, int len) {
    auto* conn = static_cast<Conn*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    int n = evbuffer_remove(conn->raw_in_, out, static_cast<size_t>(len));
    if (n > 0) return n;
    if (conn->socket_eof_) return 0;
    BIO_set_retry_read(bio);
    return -1;
  }
  static int Write(BIO* bio, const char* in, int len) {
    auto* conn = static_cast<Conn*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (evbuffer_add(conn->out_, in, static_cast<size_t>(len)) != 0) return -1;
    return len;
  }
  static long Ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
  static int Create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
  static const BIO_METHOD* Method() {
    static const BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOCKET, "mitmd-conn");
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
// A read reserves between these: small for requests and handshakes (the reserved chain is
// allocated whole, and freed once drained), up to 64 KiB for bulk (one loop turn per 64 KiB of
// a download, not per 4 KiB).
constexpr size_t kMinRead = 4 * 1024;
constexpr size_t kMaxSingleIo = 64 * 1024;
constexpr int kMaxWriteChains = 64;

std::string SocketErrorMessage(int err) {
  return err == ECONNRESET ? std::string("connection reset by peer")
                           : StrCat("socket error: ", evutil_socket_error_to_string(err));
}
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
      fd_(fd),
      read_ev_(event_new(base, fd, EV_READ | EV_PERSIST, ReadCb, this)),
      write_ev_(event_new(base, fd, EV_WRITE | EV_PERSIST, WriteCb, this)),
      poke_(event_new(base, -1, 0, PokeCb, this)),
      flush_ev_(event_new(base, -1, 0, FlushCb, this)),
      raw_in_(evbuffer_new()),
      out_(evbuffer_new()),
      delegate_(delegate),
      limits_(limits),
      next_read_(kMinRead) {
  // The owner drains the input outside our callbacks too; reading resumes when it makes room.
  evbuffer_add_cb(raw_in_, InputDrainedCb, this);
  UpdateReadEvent();
}

Conn::~Conn() {
  event_free(poke_);
  event_free(flush_ev_);
  event_free(read_ev_);
  event_free(write_ev_);
  ssl_.reset();  // before the buffers its BIO points into
  if (plain_in_) evbuffer_free(plain_in_);
  evbuffer_free(raw_in_);
  evbuffer_free(out_);
  evutil_closesocket(fd_);
}

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
  if (failed_ || socket_failed_ || data.empty()) return;
  if (!tls()) {
    evbuffer_add(out_, data.data(), data.size());
  } else {
    // The BIO never refuses a write, so SSL_write takes everything in one call.
    int n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
    if (n <= 0) {
      Fail(StrCat("TLS write failed: ", TlsErrorString(ssl_.get(), n)));
      return;
    }
  }
  // An owner that sees this much pending may stop its source until kDrained.
  if (evbuffer_get_length(out_) > limits_.output_low_water) drain_owed_ = true;
  ScheduleFlush();
}

void Conn::ScheduleFlush() {
  // The write event, when armed, flushes; else once this loop turn's callbacks have run (an
  // active event: no syscall), so what they all wrote leaves together.
  if (flush_scheduled_ || write_armed_) return;
  flush_scheduled_ = true;
  event_active(flush_ev_, EV_TIMEOUT, 0);
}

void Conn::FlushCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Conn*>(arg);
  self->flush_scheduled_ = false;
  self->Flush();
  if (self->socket_failed_ || self->write_armed_ || !self->drain_owed_) return;
  if (evbuffer_get_length(self->out_) <= self->limits_.output_low_water) {
    self->drain_owed_ = false;
    self->Emit(ConnEvent::kDrained);
  }
}

size_t Conn::output_pending() const { return evbuffer_get_length(out_); }

void Conn::SetReading(bool enabled) {
  if (enabled == reading_) return;
  reading_ = enabled;
  UpdateReadEvent();
  // Bytes may already wait in our buffers, where no socket event will announce them.
  if (enabled) SchedulePoke();
}

void Conn::ShutdownWrite() {
  if (shutdown_pending_) return;
  shutdown_pending_ = true;
  if (tls() && handshake_done_ && !skip_close_notify_) SSL_shutdown(ssl_.get());
  Flush();
}

void Conn::Flush() {
  if (socket_failed_) return;
  if (evbuffer_get_length(out_) > 0) {
    // One sendmsg over the buffer's chains; MSG_NOSIGNAL: a peer that has gone is an EPIPE to
    // report, not a SIGPIPE.
    evbuffer_iovec vec[kMaxWriteChains];
    int nvec = evbuffer_peek(out_, -1, nullptr, vec, kMaxWriteChains);
    msghdr msg{};
    msg.msg_iov = reinterpret_cast<iovec*>(vec);
    msg.msg_iovlen = static_cast<size_t>(std::min(nvec, kMaxWriteChains));
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      evbuffer_drain(out_, static_cast<size_t>(n));
      bytes_written_ += static_cast<uint64_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // Maybe inside an owner's call (ShutdownWrite, a failing handshake): reported from the
      // loop.
      SocketFailed(errno, /*defer=*/true);
      return;
    }
  }
  // Once armed, the write event stays until it finds the output empty, then says kDrained.
  if (evbuffer_get_length(out_) > 0) {
    SetWriteEvent(true);
  } else if (!write_armed_ && shutdown_pending_ && !shut_wr_) {
    shut_wr_ = true;
    ::shutdown(fd_, SHUT_WR);
  }
}

void Conn::SetWriteEvent(bool armed) {
  if (armed == write_armed_) return;
  write_armed_ = armed;
  if (armed) {
    event_add(write_ev_, nullptr);
  } else {
    event_del(write_ev_);
  }
}

void Conn::UpdateReadEvent() {
  bool want = reading_ && !socket_eof_ && !failed_ && !socket_failed_ &&
              evbuffer_get_length(raw_in_) < limits_.max_input;
  if (want == read_armed_) return;
  read_armed_ = want;
  if (want) {
    event_add(read_ev_, nullptr);
  } else {
    event_del(read_ev_);
  }
}

void Conn::InputDrainedCb(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  auto* self = static_cast<Conn*>(arg);
  if (info->n_deleted > 0 && !self->read_armed_) self->UpdateReadEvent();
}

void Conn::SchedulePoke() { event_active(poke_, EV_TIMEOUT, 0); }

void Conn::PokeCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Conn*>(arg);
  if (!self->deferred_error_.empty()) {
    self->Fail(std::move(self->deferred_error_));
    return;
  }
  self->OnRead();
}

void Conn::ReadCb(evutil_socket_t, short, void* arg) { static_cast<Conn*>(arg)->ReadSocket(); }

void Conn::ReadSocket() {
  size_t buffered = evbuffer_get_length(raw_in_);
  if (failed_ || socket_failed_ || buffered >= limits_.max_input) {
    UpdateReadEvent();
    return;
  }
  size_t want = std::min(next_read_, limits_.max_input - buffered);
  evbuffer_iovec vec[2];
  int nvec = evbuffer_reserve_space(raw_in_, static_cast<ev_ssize_t>(want), vec, 2);
  if (nvec < 1) {
    Fail("out of memory reading from the socket");
    return;
  }
  // The reservation may be larger than asked for: read no more than |want|.
  size_t room = 0;
  for (int i = 0; i < nvec; ++i) {
    vec[i].iov_len = std::min(vec[i].iov_len, want - room);
    room += vec[i].iov_len;
  }
  ssize_t n = ::readv(fd_, reinterpret_cast<iovec*>(vec), nvec);
  if (n <= 0) {
    int err = errno;
    evbuffer_commit_space(raw_in_, vec, 0);
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) return;
    if (n < 0) {
      SocketFailed(err, /*defer=*/false);
      return;
    }
    OnSocketEof();
    return;
  }
  size_t left = static_cast<size_t>(n);
  for (int i = 0; i < nvec; ++i) {
    vec[i].iov_len = std::min(vec[i].iov_len, left);
    left -= vec[i].iov_len;
  }
  evbuffer_commit_space(raw_in_, vec, nvec);
  bytes_read_ += static_cast<uint64_t>(n);
  // The next read reserves twice what this one brought: bulk transfers grow to 64 KiB reads,
  // requests and handshakes stay at 4 KiB.
  next_read_ = std::clamp(std::bit_ceil(2 * static_cast<size_t>(n)), kMinRead, kMaxSingleIo);
  UpdateReadEvent();
  OnRead();
}

void Conn::WriteCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Conn*>(arg);
  self->Flush();
  if (self->socket_failed_) return;
  if (evbuffer_get_length(self->out_) == 0) {
    self->SetWriteEvent(false);
    self->Flush();  // the shutdown a pending ShutdownWrite waited for
  }
  if (evbuffer_get_length(self->out_) <= self->limits_.output_low_water) {
    self->drain_owed_ = false;
    self->Emit(ConnEvent::kDrained);
  }
}

void Conn::SocketFailed(int err, bool defer) {
  socket_failed_ = true;
  SetWriteEvent(false);
  UpdateReadEvent();
  if (defer) {
    deferred_error_ = SocketErrorMessage(err);
    SchedulePoke();
    return;
  }
  Fail(SocketErrorMessage(err));
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
  StepTls();
  // What the handshake or SSL_read wrote (a flight, tickets, alerts).
  if (evbuffer_get_length(out_) > 0) ScheduleFlush();
}

void Conn::StepTls() {
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
    bool more = evbuffer_get_length(raw_in_) > 0 || SSL_pending(ssl_.get()) > 0;
    if (!progress || !room || !more) return;
  }
}

void Conn::OnSocketEof() {
  socket_eof_ = true;
  UpdateReadEvent();
  if (tls()) {
    DriveTls();
    if (!failed_ && !eof_delivered_ && handshake_done_ && reading_ &&
        evbuffer_get_length(plain_in_) == 0 &&
        evbuffer_get_length(raw_in_) == 0) {
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
  UpdateReadEvent();
  Flush();  // a TLS alert that says why goes out before the owner closes
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
