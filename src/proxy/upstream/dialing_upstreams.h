#pragma once
// DialingUpstreams: the Upstreams of one worker loop over real sockets. Connect resolves and
// dials (net::Dialer), then runs the TLS handshake with full verification (UpstreamTls) within
// the handshake timeout; each step that fails is an UpstreamError with its phase. In upstream
// mode every connection is dialed to the next proxy and opened through it (plain HTTP too):
// CONNECT, over TLS to the proxy for https://, or SOCKS5; the next proxy's refusals are passed
// on as it gave them.

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
  // mode, may be null: direct) is the next proxy; |hop_tls| (required when |via| is https://)
  // verifies it.
  DialingUpstreams(ProxyContext& ctx, event_base* base, net::Dialer& dialer,
                   net::ConnGraveyard& graveyard, Timers& timers, const ProxyMode* via = nullptr,
                   const UpstreamTls* hop_tls = nullptr)
      : ctx_(ctx), base_(base), dialer_(dialer), graveyard_(graveyard), timers_(timers),
        via_(via), hop_tls_(hop_tls) {}

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
  const UpstreamTls* hop_tls_;
};

}  // namespace mitmd::proxy
