#pragma once
// What every connection shares: read-only configuration and thread-safe services. Passed in,
// never reached through globals.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "ca/authority.h"
#include "config/config.h"
#include "core/log.h"
#include "flow/connection_registry.h"
#include "flow/flow_sink.h"
#include "proxy/client_certs.h"
#include "proxy/client_tls.h"
#include "proxy/passthrough.h"
#include "proxy/upstream_tls.h"
#include "http/static_response.h"
#include "rules/controls.h"

namespace mitmd::proxy {

struct ProxyContext {
  const Config& config;
  Logger& log;
  ca::Authority& ca;
  FlowSink& flows;  // Publish while an exchange runs, Record once when it ends
  const UpstreamTls& upstream_tls;
  const ClientTls& client_tls;
  ConnectionRegistry& connections;  // hands out connection ids; feeds the Connections view
  PassthroughPolicy& passthrough;
  const ClientCertStore& client_certs;
  std::function<double()> now;      // wall clock, epoch seconds
  // Answers http://mitmd.cert/<path> through the proxy (the root's page and downloads, like
  // mitmproxy's mitm.it); nullopt for an unknown path. May be empty: then nothing is served.
  std::function<std::optional<http::StaticResponse>(std::string_view path)> cert_page = {};
  // The port the viewer is bound to once it listens (0 until then, or without a viewer), for
  // refusing requests to it through the proxy; null: the configured --web port.
  const std::atomic<uint16_t>* viewer_port = nullptr;
  // The rules and hold filters the user sets at runtime, and the held flows (src/rules). Null:
  // no rules, nothing held.
  rules::Controls* controls = nullptr;
};

}  // namespace mitmd::proxy
