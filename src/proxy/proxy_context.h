#pragma once
// What every Session shares: read-only configuration and thread-safe services. Passed in,
// never reached through globals.

#include <atomic>
#include <cstdint>
#include <functional>

#include "ca/authority.h"
#include "core/config.h"
#include "core/log.h"
#include "flow/flow_store.h"
#include "proxy/client_tls.h"
#include "proxy/upstream_tls.h"

namespace mitmd::proxy {

struct ProxyContext {
  const Config& config;
  Logger& log;
  ca::Authority& ca;
  FlowStore& flows;
  const UpstreamTls& upstream_tls;
  const ClientTls& client_tls;
  std::atomic<uint64_t>& next_conn_id;  // client and upstream connection ids share one sequence
  std::function<double()> now;          // wall clock, epoch seconds
};

}  // namespace mitmd::proxy
