#pragma once
// The JSON the viewer's API returns, built without I/O so it can be tested on its own.
//
// A flow summary (one table row; also the data of the live stream's "flow" events):
//   {"seq":12,"id":"…","t":1700000000.12,"kind":"http","method":"GET","scheme":"https",
//    "host":"api.example.com","port":443,"path":"/v1?x=1","status":200,"type":"application/json",
//    "size":1234,"dur":120.5,"tls":"TLSv1.3","alpn":"h2","ver":"HTTP/1.1","conn":7,"up":3,
//    "reused":false,"insecure":false,"trunc":false,"err":"…"}
// status is 0 and dur null when there was no response; err only on failed flows.

#include <cstdint>

#include <nlohmann/json.hpp>

#include "flow/flow.h"

namespace mitmd::web {

nlohmann::json FlowSummaryJson(const Flow& flow, uint64_t seq);

// The flow in the session-log schema (flow_json.h) plus "seq". With |include_bodies| false the
// body contents are left out (the viewer fetches them decoded from the body endpoints); sizes,
// truncation and encodings stay.
nlohmann::json FlowDetailJson(const Flow& flow, uint64_t seq, bool include_bodies);

// The flow's start time: request start, else accept time.
double FlowStartTime(const Flow& flow);
// Milliseconds from request start to response end (or the last thing that happened); negative
// when unknown.
double FlowDurationMs(const Flow& flow);

}  // namespace mitmd::web
