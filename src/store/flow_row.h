#pragma once
// FlowRow: the columns of a flow that the viewer's list shows, sorts and filters on, as the
// session database stores them (one row per flow) and as the live stream sends them. Built once
// from a Flow; the rest of the flow stays in its JSON.

#include <cstdint>
#include <string>

#include "flow/flow.h"

namespace mitmd::store {

struct FlowRow {
  uint64_t seq = 0;  // position in the session, in arrival order
  std::string id;
  double t = 0;  // request start (else accept time), epoch seconds
  std::string kind;   // "http" | "tunnel"
  std::string state;  // "live" | "held" | "done"
  uint64_t revision = 0;
  std::string method, scheme, host;
  int64_t port = 0;
  std::string path, ver;
  int64_t status = 0;
  std::string type;        // response media type without parameters
  int64_t size = 0;        // decoded response body size where known, else wire_size
  int64_t wire_size = 0;   // response body bytes on the wire (tunnels: bytes both ways)
  double dur = -1;         // ms from request start to the end; < 0 unknown
  std::string tls, alpn;   // client side
  std::string up_alpn;     // upstream side
  int64_t conn = 0, up = 0;
  bool reused = false, insecure = false, trunc = false;
  std::string err_phase, err;
  std::string client;  // client address
  // Kept by the store, not taken from the flow.
  bool marked = false;
  std::string comment;
  std::string source;  // where an imported flow came from ("har:file.har"); empty for live ones
};

// The row of |flow|. |decoded_size| is the response body's decoded size when the caller decoded
// it (negative: unknown, the wire size is shown).
FlowRow RowFromFlow(const Flow& flow, uint64_t seq, int64_t decoded_size = -1);

// A flow carrying only what the row holds: enough for every filter term except headers, bodies
// and the client's ALPN offer.
Flow FlowFromRow(const FlowRow& row);

// Milliseconds from request start to response end (or the last thing that happened); negative
// when unknown.
double FlowDurationMs(const Flow& flow);
// The flow's start time: request start, else accept time.
double FlowStartTime(const Flow& flow);

}  // namespace mitmd::store
