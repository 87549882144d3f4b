#pragma once
// ExchangeHost: what an Exchange needs from the layer that reads its client's requests. The
// HTTP/1 layer (layers/http_layer.h) hosts one exchange at a time; a multiplexed layer (HTTP/2)
// hosts one per stream through the same seam, over its own codec.

#include <memory>
#include <optional>
#include <string>

#include "flow/flow.h"
#include "http/codec.h"
#include "http/headers.h"
#include "proxy/client_hello.h"
#include "proxy/connection_handler.h"
#include "proxy/hooks.h"
#include "proxy/phase.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

// Where the requests of a CONNECT tunnel go, and what intercepting its TLS learned.
struct TunnelTarget {
  std::string host;  // as in the CONNECT request
  uint16_t port = 0;
  UpstreamKey key;   // the upstream connection its requests use
  std::optional<ClientHelloInfo> hello;  // set when mitmd terminated the client's TLS
  std::optional<TlsInfo> client_tls;
  double client_tls_end = 0;
  std::unique_ptr<UpstreamConn> upstream;       // connected during the ClientHello pause
  std::optional<UpstreamError> upstream_error;  // ... or why that failed
  // Reverse mode with --rewrite-host: the Host (HTTP/2 :authority) every request gets, the
  // server's own; empty: as the client sent it.
  std::string rewrite_host;
};

// Applies |tunnel|'s rewrite_host to a request's head and target (nothing when empty).
inline void RewriteHost(const TunnelTarget& tunnel, http::Request& request, Target& target) {
  if (tunnel.rewrite_host.empty()) return;
  target.host = tunnel.host;
  for (auto& [name, value] : request.head.headers) {
    if (name == ":authority" || EqualsIgnoreCase(name, "host")) value = tunnel.rewrite_host;
  }
  request.raw.clear();  // the head goes out as changed, not as received
}

class ExchangeHost {
 public:
  virtual ~ExchangeHost() = default;

  virtual ConnectionHandler& conn() = 0;
  // The client connection's server-side codec: the exchange answers its stream on it.
  virtual http::Codec& codec() = 0;
  // The tunnel the requests arrived through (empty host for plain proxy requests).
  virtual const TunnelTarget& tunnel() const = 0;
  // An upstream connection made for this client connection and not used yet, when its key is
  // |key|; else null (the exchange asks the pool).
  virtual std::unique_ptr<UpstreamConn> TakeIdleUpstream(const UpstreamKey& key) = 0;
  // Reads what the client has sent so far (the rest of a request body).
  virtual void ReadClient() = 0;
  // Answers stream |id| with a response mitmd made and records |flow| with it (failed when
  // |error| is set, else with |message| as its note). HTTP/1 then closes the connection.
  virtual void RespondLocally(http::StreamId id, std::unique_ptr<Flow> flow,
                              const LocalResponse& response, std::optional<Phase> error,
                              const std::string& message, bool head_only = false) = 0;
  // The exchange on |id| recorded its flow. |upstream| (may be null) goes back to the pool,
  // or into a tunnel when the response switched protocols. The host may free the exchange.
  virtual void OnExchangeDone(http::StreamId id, std::unique_ptr<UpstreamConn> upstream,
                              bool keep_alive, bool upgraded) = 0;
};

}  // namespace mitmd::proxy
