#include "proxy/conn_wire.h"

#include <sys/socket.h>

#include "net/dialer.h"
#include "net/tls_errors.h"

namespace mitmd::proxy {

std::string LocalAddressOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return net::SockaddrToString(reinterpret_cast<sockaddr*>(&ss));
}

ConnWire::ConnWire(event_base* base, int fd, net::ConnGraveyard& graveyard)
    : conn_(std::make_unique<net::Conn>(base, fd, static_cast<net::Conn::Delegate*>(this))),
      graveyard_(graveyard),
      local_address_(LocalAddressOf(fd)) {}

ConnWire::~ConnWire() {
  if (conn_) Close(Linger::kUpstream);
  if (closed_input_) evbuffer_free(closed_input_);
}

void ConnWire::OnConnEvent(net::Conn&, net::ConnEvent event) {
  if (observer_) observer_->OnWireEvent(*this, event);
}

evbuffer* ConnWire::input() {
  if (conn_) return conn_->input();
  if (!closed_input_) closed_input_ = evbuffer_new();
  return closed_input_;
}

void ConnWire::Write(std::string_view data) {
  if (conn_) conn_->Write(data);
}

size_t ConnWire::output_pending() const { return conn_ ? conn_->output_pending() : 0; }

void ConnWire::SetReading(bool enabled) {
  if (conn_) conn_->SetReading(enabled);
}

bool ConnWire::reading() const { return conn_ && conn_->reading(); }

void ConnWire::StartTls(bssl::UniquePtr<SSL> ssl) {
  if (conn_) conn_->StartTls(std::move(ssl));
}

void ConnWire::ContinueHandshake() {
  if (conn_) conn_->ContinueHandshake();
}

SSL* ConnWire::ssl() const { return conn_ ? conn_->ssl() : nullptr; }

bool ConnWire::handshake_done() const { return conn_ && conn_->handshake_done(); }

TlsInfo ConnWire::DescribeTls() const {
  TlsInfo t;
  const SSL* s = ssl();
  if (!s) return t;
  t.version = net::TlsVersionName(s);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(s)) t.cipher = SSL_CIPHER_standard_name(c);
  const uint8_t* alpn;
  unsigned alpn_len;
  SSL_get0_alpn_selected(s, &alpn, &alpn_len);
  t.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  return t;
}

void ConnWire::ShutdownWrite() {
  if (conn_) conn_->ShutdownWrite();
}

bool ConnWire::eof() const { return conn_ && conn_->eof(); }

const std::string& ConnWire::error() const { return conn_ ? conn_->error() : error_; }

void ConnWire::Close(Linger linger) {
  if (!conn_) return;
  bytes_read_ = conn_->bytes_read();
  bytes_written_ = conn_->bytes_written();
  error_ = conn_->error();
  // The SSL's callbacks point at objects that die with the layer that closed it.
  if (conn_->ssl()) SSL_set_app_data(conn_->ssl(), nullptr);
  conn_->set_delegate(nullptr);
  observer_ = nullptr;
  if (linger == Linger::kClient) {
    graveyard_.Bury(std::move(conn_));
  } else {
    graveyard_.Bury(std::move(conn_), {1, 0});
  }
}

}  // namespace mitmd::proxy
