#pragma once
// ConnWire: the Wire over a real socket (net::Conn). Closing hands the Conn to the loop's
// graveyard, which flushes and lingers before freeing it.

#include <memory>

#include "net/conn.h"
#include "proxy/wire.h"

namespace mitmd::proxy {

class ConnWire : public Wire, private net::Conn::Delegate {
 public:
  // Takes |fd| (connected, non-blocking). |graveyard| outlives the wire.
  ConnWire(event_base* base, int fd, net::ConnGraveyard& graveyard);
  ~ConnWire() override;

  evbuffer* input() override;
  void Write(std::string_view data) override;
  size_t output_pending() const override;
  void SetReading(bool enabled) override;
  bool reading() const override;
  void StartTls(bssl::UniquePtr<SSL> ssl) override;
  void ContinueHandshake() override;
  SSL* ssl() const override;
  bool handshake_done() const override;
  TlsInfo DescribeTls() const override;
  void ShutdownWrite() override;
  bool eof() const override;
  bool peer_closed() const override { return !conn_ || conn_->peer_closed(); }
  bool truncated() const override { return conn_ && conn_->truncated(); }
  void SkipCloseNotify() override {
    if (conn_) conn_->SkipCloseNotify();
  }
  const std::string& error() const override;
  uint64_t bytes_read() const override { return conn_ ? conn_->bytes_read() : bytes_read_; }
  uint64_t bytes_written() const override {
    return conn_ ? conn_->bytes_written() : bytes_written_;
  }
  std::string local_address() const override { return local_address_; }
  void Close(Linger linger) override;
  void set_observer(WireObserver* observer) override { observer_ = observer; }

 private:
  void OnConnEvent(net::Conn& conn, net::ConnEvent event) override;

  std::unique_ptr<net::Conn> conn_;
  net::ConnGraveyard& graveyard_;
  WireObserver* observer_ = nullptr;
  evbuffer* closed_input_ = nullptr;  // what input() returns once closed
  std::string local_address_;
  std::string error_;
  uint64_t bytes_read_ = 0;     // kept from the Conn when it is closed
  uint64_t bytes_written_ = 0;
};

// The socket's local address, "127.0.0.1:8080"; empty when unknown.
std::string LocalAddressOf(int fd);

}  // namespace mitmd::proxy
