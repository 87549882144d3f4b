#pragma once
// Phase: where an exchange or connection failed, typed. Serialized to the strings the flow
// schema has always used ("dns", "upstream_tls", ...), so recorded flows do not change.

#include <string_view>

#include "net/dialer.h"

namespace mitmd::proxy {

enum class Phase {
  kProxyRequest,  // the request to the proxy itself was malformed, unsupported or refused
  kDns,
  kPolicy,        // --upstream-allow refused the address
  kConnect,
  kUpstreamTls,
  kClientTls,
  kRequest,       // reading the client's request
  kResponse,      // reading the server's response
  kTunnel,
  kShutdown,      // mitmd stopped while the exchange was in flight
  kKilled,        // the user killed it while it was held
};

std::string_view ToString(Phase phase);
Phase PhaseOf(net::DialPhase phase);

}  // namespace mitmd::proxy
