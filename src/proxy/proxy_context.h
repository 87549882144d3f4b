#pragma once
// What every connection shares: read-only configuration and thread-safe services. Passed in,
// never reached through globals. The per-worker services (timers, the upstream pool, the hooks)
// are ConnectionHandler's Services; what only the hooks read (the viewer's port, the rules, the
// cert page) is theirs (HookInputs), not every connection's.

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
};

}  // namespace mitmd::proxy
