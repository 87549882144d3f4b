#pragma once
// ProxyServer: the listening socket shared by N worker loops; each accepted connection becomes
// a ConnectionHandler on the worker that accepted it.

#include <memory>
#include <vector>

#include "core/address.h"
#include "core/result.h"
#include "proxy/proxy_context.h"

namespace mitmd::proxy {

class ProxyServer {
 public:
  // Binds config.listen and starts the workers.
  static Result<std::unique_ptr<ProxyServer>> Start(ProxyContext& ctx);
  ~ProxyServer();

  const HostPort& address() const;
  // Stops accepting, records flows in flight as failed, closes every session, joins workers.
  void Shutdown();

  struct Impl;

 private:
  explicit ProxyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mitmd::proxy
