#pragma once
// An upstream connection as the proxy core sees it: the wire to the server, what mitmd learned
// connecting to it (address, TLS, the verified certificate, timings) and its client-side codec.
// Upstreams (the seam the core dials through; the pool behind it) hands them out.

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/connection_registry.h"
#include "flow/flow.h"
#include "http/h1_codec.h"
#include "proxy/phase.h"
#include "proxy/upstream_tls.h"
#include "proxy/wire.h"

namespace mitmd::proxy {

class H2OnlyHosts;

// What makes two upstream connections interchangeable.
struct UpstreamKey {
  std::string host;
  uint16_t port = 0;
  bool tls = false;
  std::string sni;                // empty: none sent
  std::vector<std::string> alpn;  // the offer
  bool insecure = false;          // --insecure: verification off

  bool operator==(const UpstreamKey&) const = default;
  // The name the certificate must match: the SNI, else the host.
  const std::string& verify_host() const { return sni.empty() ? host : sni; }
};

struct UpstreamError {
  Phase phase = Phase::kConnect;
  std::string message;
  std::optional<CertInfo> cert;  // the certificate the server presented, when it got that far
};

struct UpstreamConn {
  UpstreamKey key;
  uint64_t id = 0;   // in the ConnectionRegistry
  std::string addr;  // "127.0.0.1:443"
  std::unique_ptr<Wire> wire;
  // The SSL's verify callback writes here; it lives as long as the wire's SSL may call it.
  std::unique_ptr<UpstreamVerification> verification;
  std::optional<TlsInfo> tls;
  std::unique_ptr<http::Codec> codec;  // over |wire|; declared after it, destroyed first
  double connect_start = 0;
  double connect_end = 0;
  double tls_end = 0;
  uint64_t responses = 0;     // final responses read so far: the second one is a reuse
  bool peer_closed = false;   // the server closed first
  uint64_t bytes_in_reported = 0;
  uint64_t bytes_out_reported = 0;

  const std::optional<CertInfo>& cert() const;
  // Neither failed nor closed by the server, also while nobody was watching its events.
  // A close_notify ends it before the socket's FIN is read (the kEof went to nobody).
  bool usable() const {
    return wire && wire->error().empty() && !wire->peer_closed() && !wire->eof();
  }
};

// How the core gets and gives back upstream connections.
class Upstreams {
 public:
  using Outcome = std::expected<std::unique_ptr<UpstreamConn>, UpstreamError>;
  using Callback = std::function<void(Outcome)>;
  // Destroying a Pending cancels it: its callback is then never called.
  class Pending {
   public:
    virtual ~Pending() = default;
  };

  virtual ~Upstreams() = default;
  // A connection for |key|, dialed (and TLS verified) for client connection |client_id|.
  // |done| is called later from the loop, never from inside Connect.
  // An idle connection with the same key may be handed out instead of a new one.
  virtual std::unique_ptr<Pending> Connect(const UpstreamKey& key, uint64_t client_id,
                                           Callback done) = 0;
  // An idle connection for |key| at once, or null: what Connect would hand out on the next loop
  // turn, without that turn (a keep-alive client's next request goes straight on).
  virtual std::unique_ptr<UpstreamConn> TakeIdle(const UpstreamKey&) { return nullptr; }
  // Always a new connection (a retry after a reused one failed).
  virtual std::unique_ptr<Pending> ConnectFresh(const UpstreamKey& key, uint64_t client_id,
                                                Callback done) {
    return Connect(key, client_id, std::move(done));
  }
  // The caller is done with |conn|, which closes; |reason| goes to the Connections view.
  virtual void Release(std::unique_ptr<UpstreamConn> conn, std::string_view reason) = 0;
  // |conn| finished an exchange and may carry another: kept for reuse where there is a pool.
  virtual void Return(std::unique_ptr<UpstreamConn> conn) {
    Release(std::move(conn), "not kept: no pool");
  }
  // The servers learned to speak only HTTP/2 (alpn_policy.h), where there is a pool to keep
  // them; null: nothing is learned.
  virtual H2OnlyHosts* h2_only_hosts() { return nullptr; }
};

// Sends the byte counts since the last report to |registry|.
void ReportBytes(ConnectionRegistry& registry, UpstreamConn& conn);
// Reports |conn| closed (who closed first, |reason|) and closes its wire.
void CloseUpstream(ConnectionRegistry& registry, UpstreamConn& conn, std::string_view reason);

// The message for a failed upstream TLS connection, naming mutual TLS when that is the cause.
std::string UpstreamTlsFailure(const UpstreamKey& key, const UpstreamVerification& v,
                               const std::string& tls_error);

// "30 s", "1500 ms": a configured duration in an error message.
std::string DurationText(std::chrono::milliseconds ms);

}  // namespace mitmd::proxy
