#pragma once
// Detect: the connection right after "200 Connection established". Decides what the client
// speaks from its first bytes without consuming them: a TLS ClientHello (intercepted by
// ClientTlsLayer, or tunnelled untouched when policy says so for the CONNECT host or the SNI),
// a plain HTTP request (HttpLayer), or anything else (a raw Tunnel). A client that sends
// nothing for a second may be waiting for the server to speak first (SMTP, SSH banners): the
// server is then dialed, and if it speaks before the client does, the connection is relayed
// as a tunnel. A client that was merely slow still gets the normal treatment.

#include <optional>
#include <string>

#include "proxy/connection_handler.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

class Detect : public Layer, private WireObserver {
 public:
  // How long a silent client waits before the server is given the first word.
  static constexpr std::chrono::milliseconds kServerFirstAfter{1000};

  Detect(ConnectionHandler& conn, std::string host, uint16_t port);
  ~Detect() override;

  std::string_view name() const override { return "detect"; }
  void Start() override;
  void OnClientEvent(WireEvent event) override;
  void OnClose(std::string_view reason) override;

 private:
  void Decide();
  // Why |name| (the CONNECT host or the SNI) is tunnelled rather than intercepted, or nullopt.
  std::optional<std::string> PassthroughReason(const std::string& name) const;
  void TunnelUntouched(std::string note, std::unique_ptr<UpstreamConn> upstream = nullptr);
  void DialForServerFirst();
  // The dialed server: bytes from it before the client spoke make this a tunnel.
  void OnWireEvent(Wire& wire, WireEvent event) override;
  void DropServerFirst(std::string_view reason);

  const std::string host_;
  const uint16_t port_;
  std::unique_ptr<Timer> server_first_;
  std::unique_ptr<Upstreams::Pending> pending_;
  std::unique_ptr<UpstreamConn> upstream_;
};

}  // namespace mitmd::proxy
