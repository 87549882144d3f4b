#pragma once
// Conn: one non-blocking socket on a libevent loop, optionally carrying TLS (BoringSSL driven
// through a BIO over the Conn's buffers, so no OpenSSL-flavoured libevent is needed).
// The owner sees plaintext only: input() holds bytes received, Write() sends bytes.
//
// The socket's I/O is the Conn's own, not a bufferevent's: one persistent read event while
// reading (a read goes straight into reserved buffer space, without asking the kernel how much
// is there first), and what a loop turn's callbacks write goes to the socket in one sendmsg at
// the end of that turn; the write event is armed only while the kernel has not taken
// everything. A keep-alive request costs one read and one write per socket, without an
// epoll_ctl pair per write.
//
// Back-pressure: SetReading(false) stops reading from the socket (and decrypting); the owner
// watches output_pending() of the peer it forwards to and resumes on ConnEvent::kDrained.
// Memory per Conn is bounded by the watermarks in ConnLimits.

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mitmd::net {

enum class ConnEvent {
  kReadable,          // input() has new bytes
  kDrained,           // output fell below the low watermark
  kHandshakeDone,     // TLS handshake completed
  kHandshakePaused,   // TLS server handshake paused in the select-certificate callback
  kEof,               // the peer closed its side (after all data was delivered)
  kError,             // socket or TLS error; error() says what
};

std::string_view ToString(ConnEvent ev);

struct ConnLimits {
  size_t max_input = 256 * 1024;       // plaintext (or ciphertext) buffered before reading stops
  size_t output_low_water = 64 * 1024; // kDrained fires when output falls to this
};

class Conn {
 public:
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // May not delete the Conn; may call any other method on it.
    virtual void OnConnEvent(Conn& conn, ConnEvent event) = 0;
  };

  // Takes ownership of |fd| (non-blocking, connected).
  Conn(event_base* base, int fd, Delegate* delegate, ConnLimits limits = {});
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Starts TLS on the connection with a configured SSL (SSL_set_accept_state or
  // SSL_set_connect_state already called). Drives the handshake as bytes arrive.
  void StartTls(bssl::UniquePtr<SSL> ssl);
  // Resumes a handshake paused in the select-certificate callback.
  void ContinueHandshake();

  SSL* ssl() const { return ssl_.get(); }
  bool handshake_done() const { return handshake_done_; }
  // Plaintext received and not yet consumed (drain what you use).
  evbuffer* input() const { return tls() ? plain_in_ : raw_in_; }
  void Write(std::string_view data);
  // Bytes written but not yet on the wire.
  size_t output_pending() const;
  void SetReading(bool enabled);
  bool reading() const { return reading_; }
  bool eof() const { return eof_delivered_; }
  // The peer has closed: nothing will arrive beyond what input() holds (kEof comes only once
  // that is consumed).
  bool peer_closed() const { return socket_eof_; }
  // TLS: the peer closed the TCP connection without a close_notify, so what it sent last may
  // be cut short.
  bool truncated() const { return truncated_; }
  // Sends a TLS close_notify (when TLS, unless SkipCloseNotify) and shuts down the write side
  // once output drains.
  void ShutdownWrite();
  // This connection is to end as its peer's did, without a close_notify: passes an upstream's
  // truncation on to the client.
  void SkipCloseNotify() { skip_close_notify_ = true; }
  void set_delegate(Delegate* d) { delegate_ = d; }
  const std::string& error() const { return error_; }
  int fd() const { return fd_; }
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  static void ReadCb(evutil_socket_t, short, void* arg);
  static void WriteCb(evutil_socket_t, short, void* arg);
  static void PokeCb(evutil_socket_t, short, void* arg);
  static void FlushCb(evutil_socket_t, short, void* arg);
  static void InputDrainedCb(evbuffer*, const evbuffer_cb_info* info, void* arg);

  bool tls() const { return ssl_ != nullptr; }
  void ReadSocket();
  // Writes what the output holds (one sendmsg); arms the write event for what the kernel left.
  void Flush();
  void ScheduleFlush();
  // Arms or disarms the read event to match: reading, room below max_input, socket open.
  void UpdateReadEvent();
  void SetWriteEvent(bool armed);
  void SocketFailed(int err, bool defer);
  void OnRead();
  void DriveTls();
  void StepTls();
  void ReadPlaintext();
  void OnSocketEof();
  void Fail(std::string message);
  void Emit(ConnEvent event);
  void SchedulePoke();

  event_base* base_;
  int fd_;
  event* read_ev_;
  event* write_ev_;
  event* poke_;
  event* flush_ev_;  // made active by a Write: flushes once the loop turn's callbacks have run
  evbuffer* raw_in_;  // bytes read from the socket (ciphertext when TLS)
  evbuffer* out_;     // bytes for the socket (ciphertext when TLS)
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool shut_wr_ = false;        // shutdown(SHUT_WR) done
  bool flush_scheduled_ = false;
  bool drain_owed_ = false;  // output went past the low watermark: a kDrained is due
  std::string deferred_error_;  // a write failure inside Write(), reported from the loop
  Delegate* delegate_;
  ConnLimits limits_;
  size_t next_read_;  // how much the next read reserves: follows what reads bring
  bssl::UniquePtr<SSL> ssl_;
  evbuffer* plain_in_ = nullptr;
  bool handshake_done_ = false;
  bool reading_ = true;
  bool socket_eof_ = false;
  bool eof_delivered_ = false;
  bool failed_ = false;
  bool socket_failed_ = false;  // the socket itself failed (reset...), not only TLS on it
  bool shutdown_pending_ = false;
  bool truncated_ = false;
  bool skip_close_notify_ = false;
  bool burying_ = false;  // handed to a ConnGraveyard: never progress a handshake
  std::string error_;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;

  friend struct ConnBio;
  friend class ConnGraveyard;
};

// Where a loop's connections go to close gracefully: each is freed once its output is flushed
// and the peer has closed (or after its linger time), so a response written just before closing
// still reaches the peer. Destroying the graveyard frees whatever is left at once.
class ConnGraveyard {
 public:
  ConnGraveyard();
  ~ConnGraveyard();
  ConnGraveyard(const ConnGraveyard&) = delete;
  ConnGraveyard& operator=(const ConnGraveyard&) = delete;

  void Bury(std::unique_ptr<Conn> conn, timeval linger = {5, 0});
  size_t size() const { return closers_.size(); }

 private:
  class Closer;
  void Remove(Closer* closer);
  std::unordered_map<Closer*, std::unique_ptr<Closer>> closers_;
};

}  // namespace mitmd::net
