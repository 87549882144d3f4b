#include "proxy/tls_in_tls_wire.h"

#include <utility>

#include "core/strings.h"
#include "net/tls_errors.h"

namespace mitmd::proxy {
namespace {

// Plaintext decrypted ahead of the layer above, at most (the same bound as net::Conn's).
constexpr size_t kMaxPlaintext = 256 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

}  // namespace

TlsInTlsWire::TlsInTlsWire(std::unique_ptr<Wire> outer, Timers& timers)
    : outer_(std::move(outer)), plain_in_(evbuffer_new()) {
  outer_->set_observer(this);
  poke_ = timers.New("tls_in_tls", [this] { Drive(); });
}

TlsInTlsWire::~TlsInTlsWire() {
  if (destroyed_ != nullptr) *destroyed_ = true;
  if (!closed_) Close(Linger::kClient);
  evbuffer_free(plain_in_);
}

void TlsInTlsWire::StartTls(bssl::UniquePtr<SSL> ssl) {
  ssl_ = std::move(ssl);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio_, -1);  // empty means "wait for more", not end of stream
  SSL_set_bio(ssl_.get(), rbio_, wbio_);
  Drive();
}

void TlsInTlsWire::ContinueHandshake() { poke_->Arm(std::chrono::milliseconds(0)); }

void TlsInTlsWire::SetReading(bool enabled) {
  if (enabled == reading_ || closed_) return;
  reading_ = enabled;
  outer_->SetReading(enabled);
  // Ciphertext may already wait in the outer wire or the SSL, where no event will announce it.
  if (enabled) poke_->Arm(std::chrono::milliseconds(0));
}

void TlsInTlsWire::Write(std::string_view data) {
  if (!ssl_ || failed_ || closed_ || data.empty()) return;
  int n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
  if (n <= 0) {
    Fail(StrCat("TLS write failed: ", net::TlsErrorString(ssl_.get(), n)));
    return;
  }
  Flush();
}

void TlsInTlsWire::Flush() {
  const uint8_t* data;
  size_t len;
  if (!BIO_mem_contents(wbio_, &data, &len) || len == 0) return;
  outer_->Write(std::string_view(reinterpret_cast<const char*>(data), len));
  BIO_reset(wbio_);
}

void TlsInTlsWire::OnWireEvent(Wire&, WireEvent event) {
  switch (event) {
    case WireEvent::kReadable:
    case WireEvent::kEof:
      Drive();
      return;
    case WireEvent::kDrained:
      Emit(WireEvent::kDrained);
      return;
    case WireEvent::kError:
      if (!failed_) {
        failed_ = true;
        Emit(WireEvent::kError);
      }
      return;
    default:
      return;  // the outer session's own handshake events are no longer anyone's business
  }
}

void TlsInTlsWire::Drive() {
  if (!ssl_ || failed_ || closed_) return;
  if (reading_) {
    evbuffer* in = outer_->input();
    while (size_t len = evbuffer_get_length(in)) {
      size_t chunk = std::min(len, kReadChunk);
      BIO_write(rbio_, evbuffer_pullup(in, chunk), static_cast<int>(chunk));
      evbuffer_drain(in, chunk);
    }
  }
  bool outer_done = outer_->peer_closed() && evbuffer_get_length(outer_->input()) == 0;
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_.get());
    Flush();
    if (r != 1) {
      int err = SSL_get_error(ssl_.get(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (outer_done) Fail("the peer closed the connection during the TLS handshake");
        return;
      }
      if (err == SSL_ERROR_PENDING_CERTIFICATE) {
        Emit(WireEvent::kHandshakePaused);
        return;
      }
      Fail(net::TlsErrorString(ssl_.get(), r));
      return;
    }
    handshake_done_ = true;
    // Session tickets go out now, as net::Conn does for the outer session.
    if (SSL_is_server(ssl_.get()) && SSL_write(ssl_.get(), nullptr, 0) < 0) {
      Fail(StrCat("TLS write failed: ", net::TlsErrorString(ssl_.get(), -1)));
      return;
    }
    Flush();
    if (!Emit(WireEvent::kHandshakeDone)) return;
  }
  ReadPlaintext();
}

void TlsInTlsWire::ReadPlaintext() {
  bool progress = false;
  while (reading_ && evbuffer_get_length(plain_in_) < kMaxPlaintext) {
    evbuffer_iovec vec;
    if (evbuffer_reserve_space(plain_in_, kReadChunk, &vec, 1) < 1) break;
    int n = SSL_read(ssl_.get(), vec.iov_base, static_cast<int>(kReadChunk));
    if (n > 0) {
      vec.iov_len = static_cast<size_t>(n);
      evbuffer_commit_space(plain_in_, &vec, 1);
      progress = true;
      continue;
    }
    evbuffer_commit_space(plain_in_, &vec, 0);
    int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_ZERO_RETURN) {
      close_notify_ = true;
    } else if (err != SSL_ERROR_WANT_READ) {
      Flush();
      if (progress && !Emit(WireEvent::kReadable)) return;
      Fail(net::TlsErrorString(ssl_.get(), n));
      return;
    }
    break;
  }
  Flush();  // reading may answer (a key update)
  if (evbuffer_get_length(plain_in_) > 0 && (progress || reading_)) {
    if (!Emit(WireEvent::kReadable)) return;
  }
  bool ended = close_notify_ ||
               (outer_->peer_closed() && evbuffer_get_length(outer_->input()) == 0 &&
                BIO_pending(rbio_) == 0);
  if (ended && reading_ && !eof_delivered_ && evbuffer_get_length(plain_in_) == 0) {
    eof_delivered_ = true;
    Emit(WireEvent::kEof);
  }
}

void TlsInTlsWire::ShutdownWrite() {
  if (closed_) return;
  if (ssl_ && handshake_done_ && !failed_ && !skip_close_notify_) {
    SSL_shutdown(ssl_.get());
    Flush();
  }
  outer_->ShutdownWrite();
}

TlsInfo TlsInTlsWire::DescribeTls() const {
  TlsInfo t;
  const SSL* s = ssl_.get();
  if (!s) return t;
  t.version = net::TlsVersionName(s);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(s)) t.cipher = SSL_CIPHER_standard_name(c);
  const uint8_t* alpn;
  unsigned alpn_len;
  SSL_get0_alpn_selected(s, &alpn, &alpn_len);
  t.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  return t;
}

void TlsInTlsWire::Fail(std::string message) {
  if (failed_ || closed_) return;
  failed_ = true;
  error_ = std::move(message);
  Emit(WireEvent::kError);
}

bool TlsInTlsWire::Emit(WireEvent event) {
  if (closed_ || !observer_) return !closed_;
  bool destroyed = false;
  bool* outer_emit = std::exchange(destroyed_, &destroyed);
  observer_->OnWireEvent(*this, event);
  if (destroyed) {
    if (outer_emit != nullptr) *outer_emit = true;  // an Emit further up the stack returns too
    return false;
  }
  destroyed_ = outer_emit;
  return !closed_;
}

void TlsInTlsWire::Close(Linger linger) {
  if (closed_) return;
  closed_ = true;
  observer_ = nullptr;
  poke_->Cancel();
  // The SSL's callbacks point at the layer that is going away.
  if (ssl_) SSL_set_app_data(ssl_.get(), nullptr);
  outer_->set_observer(nullptr);
  outer_->Close(linger);
}

}  // namespace mitmd::proxy
