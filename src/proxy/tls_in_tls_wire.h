#pragma once
// TlsInTlsWire: a Wire that runs a second TLS session inside the plaintext of another wire.
// mitmd as an HTTPS proxy terminates the client's TLS to the proxy (the outer session, in
// net::Conn); a CONNECT inside it to an HTTPS server then carries the client's TLS to that
// server, which mitmd intercepts as usual: this wire is that inner session. The layers above
// see plaintext, as with any other client wire.

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "proxy/timers.h"
#include "proxy/wire.h"

namespace mitmd::proxy {

class TlsInTlsWire : public Wire, private WireObserver {
 public:
  // Takes |outer| (its TLS already established); |timers| outlives the wire.
  TlsInTlsWire(std::unique_ptr<Wire> outer, Timers& timers);
  ~TlsInTlsWire() override;
  TlsInTlsWire(const TlsInTlsWire&) = delete;
  TlsInTlsWire& operator=(const TlsInTlsWire&) = delete;

  evbuffer* input() override { return plain_in_; }
  void Write(std::string_view data) override;
  size_t output_pending() const override { return outer_->output_pending(); }
  void SetReading(bool enabled) override;
  bool reading() const override { return reading_; }
  void StartTls(bssl::UniquePtr<SSL> ssl) override;
  void ContinueHandshake() override;
  SSL* ssl() const override { return ssl_.get(); }
  bool handshake_done() const override { return handshake_done_; }
  TlsInfo DescribeTls() const override;
  void ShutdownWrite() override;
  bool eof() const override { return eof_delivered_; }
  bool peer_closed() const override { return close_notify_ || outer_->peer_closed(); }
  // The outer connection ended without the inner TLS's close_notify.
  bool truncated() const override { return !close_notify_ && outer_->peer_closed(); }
  void SkipCloseNotify() override { skip_close_notify_ = true; }
  const std::string& error() const override { return error_.empty() ? outer_->error() : error_; }
  uint64_t bytes_read() const override { return outer_->bytes_read(); }
  uint64_t bytes_written() const override { return outer_->bytes_written(); }
  std::string local_address() const override { return outer_->local_address(); }
  void Close(Linger linger) override;
  void set_observer(WireObserver* observer) override { observer_ = observer; }

 private:
  void OnWireEvent(Wire& wire, WireEvent event) override;
  // Moves ciphertext in, advances the handshake, decrypts, and reports what happened.
  void Drive();
  void ReadPlaintext();
  // Sends what the inner SSL wrote through the outer wire.
  void Flush();
  void Fail(std::string message);
  // False when the observer closed the wire, or destroyed it, while handling |event|: the caller
  // must then return without touching a member.
  bool Emit(WireEvent event);

  std::unique_ptr<Wire> outer_;
  std::unique_ptr<Timer> poke_;  // deferred Drive: after SetReading(true), ContinueHandshake
  bssl::UniquePtr<SSL> ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;
  evbuffer* plain_in_ = nullptr;
  WireObserver* observer_ = nullptr;
  std::string error_;
  bool reading_ = true;
  bool handshake_done_ = false;
  bool close_notify_ = false;
  bool skip_close_notify_ = false;  // end the inner TLS without close_notify
  bool eof_delivered_ = false;
  bool failed_ = false;
  bool closed_ = false;
  // Set by the destructor: a flag on the stack of the innermost Emit running, so an observer that
  // destroys this wire (the pool dropping an idle connection on its EOF) is noticed after it
  // returns instead of read as freed memory.
  bool* destroyed_ = nullptr;
};

}  // namespace mitmd::proxy
