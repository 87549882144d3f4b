#pragma once
// The viewer's HTTP server (libevent evhttp): the page compiled from web/, a JSON API over the
// flows, a live event stream, HAR export, the root-certificate page, optional TLS.
//
// API (all JSON unless noted; "filter" is the language of flow/filter.h). The flows come from the
// session database (store/session_db.h): nothing is held in memory per flow.
//   GET  /api/info                              version, addresses, counts, the store's state
//                                               (store.log_error/db_error when recording fails)
//   GET  /api/flows?filter=&sort=&order=&before=SEQ&offset=N&limit=N
//                                               summaries; time order pages by seq (next_before),
//                                               other sorts (method host path status type size
//                                               dur) by offset (next_offset); a filter that must
//                                               read bodies scans a bounded number of flows per
//                                               call and a budget of time (timed_out)
//   GET  /api/flows/ID[?bodies=1]               one flow in the session-log schema
//   GET  /api/flows/ID/{request|response}/body[?decode=1][&download=1]
//                                               the body bytes with the flow's Content-Type;
//                                               decode=1 undoes Content-Encoding
//   POST /api/flows/ID/mark {"marked":bool}, POST /api/flows/ID/comment {"comment":"…"},
//   DELETE /api/flows/ID                        the user's edits, persisted
//   POST /api/clear  (DELETE /api/flows)        clears the session: {"undo":TOKEN}; POST
//                                               /api/clear/undo {"undo":TOKEN} restores within 30 s
//   POST /api/import                            a JSONL session log or HAR file as the body
//                                               (X-Mitmd-Filename names its source); flows
//                                               already in the session are not added again
//   GET  /api/sessions                          {"current", "sessions":[{name, flows, bytes,
//                                               created, modified, first, last}]}
//   GET  /api/events?filter=&conns=1&flows=0    server-sent events: hello, flow (every snapshot
//                                               of a flow; replace the row by id), clear, delete,
//                                               conns (with conns=1), dropped
//   GET  /api/export.har?filter=                HAR 1.2 download, streamed from the database
//   GET  /api/connections                       open and recently closed connections
//   GET  /api/filter?q=                         {"ok":true}, or 400 {"ok":false,"error":…}
//   GET  /api/passthrough                       hosts tunnelled per client by auto-passthrough
//                                               {"auto","ttl","ignore","entries":[{client, host,
//                                               reason, since, until, seconds_left}]}
//   DELETE /api/passthrough[?client=&host=]     clears those pins (all without parameters):
//                                               {"cleared": N}
//   GET  /ca, /ca/mitmd-ca.pem, /ca/mitmd-ca.cer, /ca/<hash>.0   trusting the root
// Every read of flows takes ?session=NAME to look at another session (read-only); recording
// always goes to the current one.
// POSTs need the header "X-Mitmd: 1" (a cross-site form cannot send it).
//
// Security: on loopback, requests must name a loopback Host (stops DNS rebinding). Beyond
// loopback a token is required: "Authorization: Bearer TOKEN", or "?token=TOKEN" once, which
// sets an HttpOnly cookie; /proxy.pac needs none, and /ca none for --allow-clients networks (a
// phone setting itself up). A request's body is read only after its head passed these checks
// (gate_filter.h). Bodies are served with a sandboxing CSP, so a captured HTML or SVG
// body can never run script in the viewer's origin.
//
// Threading: everything runs on the event_base passed to Start (one thread), with its own
// connection to the session database. Flows recorded on worker threads reach its live stream
// through a bounded queue and an eventfd; the proxy never waits for the viewer. A viewer that does not keep up (more than WebOptions::max_viewer_backlog unsent for
// viewer_stall_seconds, or more than max_viewer_buffer at any time) is disconnected; its page
// reconnects and reloads.

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ca/authority.h"
#include <nlohmann/json.hpp>

#include "core/address.h"
#include "core/log.h"
#include "core/result.h"
#include "flow/connection_registry.h"
#include "flow/flow.h"
#include "flow/flow_store.h"
#include "rules/controls.h"
#include "rules/replay_client.h"

namespace mitmd::web {

// Auto-passthrough's pins (proxy/passthrough.h) for GET/DELETE /api/passthrough, as callbacks so
// the viewer does not depend on the proxy. Called on the viewer's thread; the policy locks.
struct PassthroughAccess {
  std::function<nlohmann::json()> list;  // {"auto", "ttl", "ignore": [...], "entries": [...]}
  // Clears the pins of |client| for |host| (empty: any); returns how many.
  std::function<size_t(const std::string& client, const std::string& host)> clear;
};

struct WebOptions {
  HostPort listen{"127.0.0.1", 8081};
  bool tls = false;           // serve HTTPS with a leaf minted from mitmd's root
  std::string token;          // required when |listen| is beyond loopback
  // The sessions (NAME.sqlite) the viewer can list and open with ?session=, and the current one
  // (the FlowStore's).
  std::string sessions_dir;
  std::string session_name = "default";
  std::string version = "0.1.0";
  std::string proxy_address;  // shown in the page, e.g. "127.0.0.1:8080"
  std::string confdir;        // shown on the /ca page (keep it private)
  // Clients from these networks open /ca without the token (--allow-clients).
  std::vector<Cidr> allow_clients;
  std::string session_log;    // shown in the page
  size_t max_viewer_backlog = 8 << 20;   // unsent bytes of one event stream that count as stalled
  double viewer_stall_seconds = 5;       // how long a stream may stay stalled
  size_t max_viewer_buffer = 64 << 20;   // unsent bytes that drop a stream at once
  size_t max_import_bytes = 256 << 20;
  size_t max_pending_flows = 100'000;   // recorded flows waiting for the web thread
  int heartbeat_seconds = 15;           // event-stream keep-alive comment
  // Hold, rules and replay (control_api.h); null: those endpoints are absent (404).
  rules::Controls* controls = nullptr;
  rules::Replayer* replayer = nullptr;
  // Unset: /api/passthrough answers 404.
  PassthroughAccess passthrough;
};

class WebServer {
 public:
  // Binds |opts.listen| (port 0 picks one) on |base| and starts serving once the loop runs.
  // Fails when the address cannot be bound, when a non-loopback address has no token, or when
  // TLS was asked for and no certificate can be minted. |store|, |ca|, |conns| and |log| must
  // outlive the server.
  static Result<std::unique_ptr<WebServer>> Start(event_base* base, WebOptions opts,
                                                  FlowStore& store, ca::Authority& ca,
                                                  ConnectionRegistry& conns, Logger& log);
  // Destroy on the loop's thread, or after the loop has stopped.
  ~WebServer();

  HostPort address() const;
  // "http://127.0.0.1:8081/" (https with TLS); carries ?token= when a token is required.
  std::string url() const;
  size_t viewer_count() const;
  uint64_t dropped_viewers() const;

  struct Impl;

 private:
  explicit WebServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mitmd::web
