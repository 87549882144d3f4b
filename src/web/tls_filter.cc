#include "web/tls_filter.h"

#include <event2/buffer.h>
#include <openssl/bio.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <memory>

namespace mitmd::web {
namespace {

constexpr size_t kRecord = 16 * 1024;
// Ciphertext queued on the socket before the filter stops encrypting more: back-pressure from a
// slow client reaches evhttp's (plaintext) output buffer, where the server can see it.
constexpr size_t kSocketHighWater = 256 * 1024;

struct TlsFilter {
  bssl::UniquePtr<SSL> ssl;
  BIO* rbio = nullptr;  // owned by ssl
  BIO* wbio = nullptr;  // owned by ssl
  bufferevent* filter = nullptr;
  // Runs the output filter on the next loop turn. libevent's filter only encrypts data written
  // while writing is enabled; evhttp writes its reply first and enables writing after, which
  // would leave the reply sitting unencrypted until the next socket event.
  event* kick = nullptr;
  bool handshake_done = false;

  ~TlsFilter() {
    if (kick != nullptr) event_free(kick);
  }
};

void Kick(TlsFilter& t) {
  if (!event_pending(t.kick, EV_TIMEOUT, nullptr)) event_active(t.kick, EV_TIMEOUT, 0);
}

void KickCb(evutil_socket_t, short, void* arg) {
  auto& t = *static_cast<TlsFilter*>(arg);
  if (evbuffer_get_length(bufferevent_get_output(t.filter)) > 0) {
    bufferevent_flush(t.filter, EV_WRITE, BEV_NORMAL);
  }
}

void OutputAddedCb(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  if (info->n_added > 0) Kick(*static_cast<TlsFilter*>(arg));
}

// Moves TLS records the session produced (handshake, data, alerts) to |dst|.
void FlushRecords(TlsFilter& t, evbuffer* dst) {
  char buf[kRecord];
  while (BIO_pending(t.wbio) > 0) {
    int n = BIO_read(t.wbio, buf, sizeof(buf));
    if (n <= 0) break;
    evbuffer_add(dst, buf, static_cast<size_t>(n));
  }
}

// A TLS failure (plain HTTP on the TLS port, a client that does not trust the root): libevent's
// filter ignores an input error, so send our alert straight away and shut the socket down; the
// resulting EOF makes evhttp close the connection now rather than at its idle timeout.
void FailConnection(TlsFilter& t, bufferevent* underlying) {
  evutil_socket_t fd = bufferevent_getfd(underlying);
  evbuffer* alert = evbuffer_new();
  FlushRecords(t, alert);
  if (fd >= 0) {
    size_t len = evbuffer_get_length(alert);
    if (len > 0) ::send(fd, evbuffer_pullup(alert, -1), len, MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_RDWR);
  }
  evbuffer_free(alert);
}

bufferevent_filter_result Input(evbuffer* src, evbuffer* dst, ev_ssize_t, bufferevent_flush_mode,
                                void* ctx) {
  auto& t = *static_cast<TlsFilter*>(ctx);
  bufferevent* underlying = bufferevent_get_underlying(t.filter);
  while (evbuffer_get_length(src) > 0) {
    evbuffer_iovec vec;
    if (evbuffer_peek(src, -1, nullptr, &vec, 1) < 1) break;
    int n = BIO_write(t.rbio, vec.iov_base, static_cast<int>(vec.iov_len));
    if (n <= 0) return BEV_ERROR;
    evbuffer_drain(src, static_cast<size_t>(n));
  }
  bool produced = false;
  char buf[kRecord];
  while (true) {
    int n = SSL_read(t.ssl.get(), buf, sizeof(buf));
    if (n > 0) {
      evbuffer_add(dst, buf, static_cast<size_t>(n));
      produced = true;
      continue;
    }
    int err = SSL_get_error(t.ssl.get(), n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_ZERO_RETURN) break;
    FailConnection(t, underlying);
    return BEV_ERROR;
  }
  FlushRecords(t, bufferevent_get_output(underlying));
  if (!t.handshake_done && SSL_is_init_finished(t.ssl.get())) {
    t.handshake_done = true;
    // Anything written before the handshake finished waits in our output buffer.
    if (evbuffer_get_length(bufferevent_get_output(t.filter)) > 0) Kick(t);
  }
  return produced ? BEV_OK : BEV_NEED_MORE;
}

bufferevent_filter_result Output(evbuffer* src, evbuffer* dst, ev_ssize_t dst_limit,
                                 bufferevent_flush_mode mode, void* ctx) {
  auto& t = *static_cast<TlsFilter*>(ctx);
  if (!SSL_is_init_finished(t.ssl.get())) return BEV_NEED_MORE;
  size_t budget = dst_limit < 0 ? SIZE_MAX : std::max<size_t>(static_cast<size_t>(dst_limit), kRecord);
  size_t taken = 0;
  while (evbuffer_get_length(src) > 0 && (mode != BEV_NORMAL || taken < budget)) {
    size_t take = std::min(evbuffer_get_length(src), kRecord);
    unsigned char* data = evbuffer_pullup(src, static_cast<ev_ssize_t>(take));
    int n = SSL_write(t.ssl.get(), data, static_cast<int>(take));
    if (n <= 0) {
      FlushRecords(t, dst);
      return BEV_ERROR;
    }
    evbuffer_drain(src, static_cast<size_t>(n));
    taken += static_cast<size_t>(n);
  }
  if (mode == BEV_FINISHED) SSL_shutdown(t.ssl.get());
  FlushRecords(t, dst);
  return BEV_OK;
}

void FreeFilter(void* ctx) { delete static_cast<TlsFilter*>(ctx); }

}  // namespace

bufferevent* NewTlsServerBufferevent(event_base* base, SSL_CTX* ctx) {
  auto t = std::make_unique<TlsFilter>();
  t->ssl.reset(SSL_new(ctx));
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    return nullptr;
  }
  SSL_set_bio(t->ssl.get(), t->rbio, t->wbio);
  SSL_set_accept_state(t->ssl.get());
  bufferevent* sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (sock == nullptr) return nullptr;
  bufferevent_setwatermark(sock, EV_WRITE, 0, kSocketHighWater);
  TlsFilter* raw = t.get();
  // Deferred callbacks: the filter can drain evhttp's output synchronously, inside the very
  // call that queued it, before evhttp has set the callback that should run once it is sent.
  bufferevent* filter = bufferevent_filter_new(sock, Input, Output,
                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
                                               FreeFilter, raw);
  if (filter == nullptr) {
    bufferevent_free(sock);
    return nullptr;
  }
  t.release();  // the filter owns it now (FreeFilter)
  raw->filter = filter;
  raw->kick = event_new(base, -1, 0, &KickCb, raw);
  if (raw->kick == nullptr) {
    bufferevent_free(filter);
    return nullptr;
  }
  evbuffer_add_cb(bufferevent_get_output(filter), &OutputAddedCb, raw);
  return filter;
}

}  // namespace mitmd::web
