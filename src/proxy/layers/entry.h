#pragma once
// ProxyEntry: the first layer of a connection to the proxy port. It reads the client's first
// byte, without consuming it, to tell what the client speaks:
//   0x05        SOCKS5 (Socks5Layer)
//   0x16        a TLS ClientHello: mitmd as an HTTPS proxy (ProxyTlsLayer), then HTTP inside
//   0x04        SOCKS4, refused with its own reply and a message naming SOCKS5
//   a letter    an HTTP proxy request (HttpLayer), which answers malformed ones with a 400
//   (or CR/LF: the empty lines HTTP allows before a request)
//   otherwise   a 400 that names the protocols mitmd speaks here
// Every refusal is a recorded failed flow; nothing waits beyond the first byte.
//
// ReverseEntry (reverse:SCHEME://HOST:PORT): clients talk to mitmd as if it were that server.
// TLS from the client is terminated with a leaf for the name it asked for (its SNI) and the
// server's names; plain HTTP is read as is; both go to the fixed server.
//
// Transparent (transparent): the firewall redirected the connection to mitmd; it continues as
// after a CONNECT to the original destination (Detect: the SNI names the server for TLS).

#include "core/proxy_mode.h"
#include "core/result.h"
#include "proxy/connection_handler.h"

namespace mitmd::proxy {

// What the listener knows about a connection it accepted.
struct EntryFacts {
  ProxyMode mode;
  HostPort listener;  // the address it was accepted on
  // transparent: where the client was going before the firewall redirected it.
  Result<HostPort> original_destination;
};

// The first layer for a connection accepted in |facts|' mode: ProxyEntry (regular and
// upstream), a reverse proxy's entry, or the transparent entry.
std::unique_ptr<Layer> EntryLayerFor(ConnectionHandler& conn, const EntryFacts& facts);

class ProxyEntry : public Layer {
 public:
  explicit ProxyEntry(ConnectionHandler& conn) : Layer(conn) {}

  std::string_view name() const override { return "entry"; }
  void Start() override;
  void OnClientEvent(WireEvent event) override;

 private:
  void Decide();
};

class ReverseEntry : public Layer {
 public:
  ReverseEntry(ConnectionHandler& conn, ProxyMode mode) : Layer(conn), mode_(std::move(mode)) {}

  std::string_view name() const override { return "reverse"; }
  void Start() override;
  void OnClientEvent(WireEvent event) override;

 private:
  void Decide();

  const ProxyMode mode_;
};

}  // namespace mitmd::proxy
