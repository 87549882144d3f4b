#pragma once
// DialingUpstreams: the Upstreams of one worker loop over real sockets. Connect resolves and
// dials (net::Dialer), then runs the TLS handshake with full verification (UpstreamTls) within
// the handshake timeout; each step that fails is an UpstreamError with its phase. In upstream
// mode every connection is dialed to the next proxy and opened with CONNECT through it (plain
// HTTP too), the next proxy's refusals passed on as it gave them.

#include <memory>

#include "core/proxy_mode.h"
#include "net/conn.h"
#include "net/dialer.h"
#include "proxy/proxy_context.h"
#include "proxy/timers.h"
#include "proxy/upstream/upstream_conn.h"

namespace mitmd::proxy {

class DialingUpstreams : public Upstreams {
 public:
  // Everything borrowed outlives this object (all belong to the worker). |via| (an upstream
  // mode, may be null: direct) is the next proxy.
  DialingUpstreams(ProxyContext& ctx, event_base* base, net::Dialer& dialer,
                   net::ConnGraveyard& graveyard, Timers& timers, const ProxyMode* via = nullptr)
      : ctx_(ctx), base_(base), dialer_(dialer), graveyard_(graveyard), timers_(timers),
        via_(via) {}

  std::unique_ptr<Pending> Connect(const UpstreamKey& key, uint64_t client_id,
                                   Callback done) override;
  void Release(std::unique_ptr<UpstreamConn> conn, std::string_view reason) override;

 private:
  class Attempt;

  ProxyContext& ctx_;
  event_base* base_;
  net::Dialer& dialer_;
  net::ConnGraveyard& graveyard_;
  Timers& timers_;
  const ProxyMode* via_;
};

}  // namespace mitmd::proxy
