#pragma once
// ProxyServer: the listening sockets (one per --mode, or --listen) shared by N worker loops;
// each accepted connection becomes a ConnectionHandler on the worker that accepted it, starting
// with the entry layer of its listener's mode.

#include <memory>
#include <vector>

#include "core/address.h"
#include "core/proxy_mode.h"
#include "core/result.h"
#include "proxy/hooks.h"
#include "proxy/proxy_context.h"

namespace mitmd::proxy {

class ProxyServer {
 public:
  // Binds config.listen and starts the workers.
  static Result<std::unique_ptr<ProxyServer>> Start(ProxyContext& ctx, HookInputs hooks = {});
  ~ProxyServer();

  // The first listener's address.
  const HostPort& address() const;
  struct Listening {
    ProxyMode mode;
    HostPort address;  // with the real port when 0 was asked for
  };
  const std::vector<Listening>& listening() const;
  // Stops accepting, records flows in flight as failed, closes every session, joins workers.
  void Shutdown();

  struct Impl;

 private:
  explicit ProxyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mitmd::proxy
