#pragma once
// Wire: all a proxy layer may do to one connection, client or upstream. TLS lives beneath it
// (net::Conn), so after the handshake a layer sees plaintext only. ConnWire (conn_wire.h) wraps
// a net::Conn; the playbook tests use a FakeWire that records a transcript.

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "flow/flow.h"
#include "http/codec.h"
#include "net/conn.h"

namespace mitmd::proxy {

using WireEvent = net::ConnEvent;

class Wire;

class WireObserver {
 public:
  virtual ~WireObserver() = default;
  // May close the wire (Wire::Close), never destroy it: its owner frees it later.
  virtual void OnWireEvent(Wire& wire, WireEvent event) = 0;
};

class Wire : public http::ByteSink {
 public:
  // How long a closed wire waits for its peer to take the last bytes.
  enum class Linger { kClient, kUpstream };

  // Plaintext received and not consumed yet; drain what you use.
  virtual evbuffer* input() = 0;
  virtual void SetReading(bool enabled) = 0;
  virtual bool reading() const = 0;
  // Starts TLS with a configured SSL (accept or connect state already set).
  virtual void StartTls(bssl::UniquePtr<SSL> ssl) = 0;
  // Resumes a server handshake paused in the select-certificate callback.
  virtual void ContinueHandshake() = 0;
  virtual SSL* ssl() const = 0;
  virtual bool handshake_done() const = 0;
  // Version, cipher and ALPN of the finished handshake.
  virtual TlsInfo DescribeTls() const = 0;
  // Sends close_notify (TLS) and half-closes once the output is flushed.
  virtual void ShutdownWrite() = 0;
  // TLS: the peer closed without close_notify (what it sent last may be cut short).
  virtual bool truncated() const = 0;
  // Ends this connection without close_notify when it closes, as its peer's ended.
  virtual void SkipCloseNotify() = 0;
  // The peer closed its side and everything it sent has been consumed (kEof was delivered).
  virtual bool eof() const = 0;
  // The peer closed its side: no bytes will arrive beyond what input() holds now.
  virtual bool peer_closed() const = 0;
  virtual const std::string& error() const = 0;
  virtual uint64_t bytes_read() const = 0;
  virtual uint64_t bytes_written() const = 0;
  virtual std::string local_address() const = 0;
  // Flushes what was written and closes; no more events. The wire stays valid but inert.
  virtual void Close(Linger linger) = 0;
  virtual void set_observer(WireObserver* observer) = 0;
};

}  // namespace mitmd::proxy
