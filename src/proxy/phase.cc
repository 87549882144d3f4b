#include "proxy/phase.h"

namespace mitmd::proxy {

std::string_view ToString(Phase phase) {
  switch (phase) {
    case Phase::kProxyRequest: return "proxy_request";
    case Phase::kDns: return "dns";
    case Phase::kPolicy: return "policy";
    case Phase::kConnect: return "connect";
    case Phase::kUpstreamTls: return "upstream_tls";
    case Phase::kClientTls: return "client_tls";
    case Phase::kRequest: return "request";
    case Phase::kResponse: return "response";
    case Phase::kTunnel: return "tunnel";
    case Phase::kShutdown: return "shutdown";
    case Phase::kKilled: return "killed";
  }
  return "unknown";
}

Phase PhaseOf(net::DialPhase phase) {
  switch (phase) {
    case net::DialPhase::kDns: return Phase::kDns;
    case net::DialPhase::kPolicy: return Phase::kPolicy;
    case net::DialPhase::kConnect: return Phase::kConnect;
  }
  return Phase::kConnect;
}

}  // namespace mitmd::proxy
