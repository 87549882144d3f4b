#pragma once
// The JSON the viewer's API returns, built without I/O so it can be tested on its own.
//
// A flow summary (one table row; also the data of the live stream's "flow" events):
//   {"seq":12,"id":"…","t":1700000000.12,"kind":"http","method":"GET","scheme":"https",
//    "host":"api.example.com","port":443,"path":"/v1?x=1","status":200,"type":"application/json",
//    "size":1234,"dur":120.5,"tls":"TLSv1.3","alpn":"h2","ver":"HTTP/1.1","conn":7,"up":3,
//    "reused":false,"insecure":false,"trunc":false,"err":"…","state":"done","wire_size":900,
//    "marked":false,"comment":"","source":""}
// status is 0 and dur null when there was no response; err only on failed flows. size is the
// decoded response body size where the store decoded it, wire_size the bytes on the wire.

#include <cstdint>

#include <nlohmann/json.hpp>

#include "flow/flow.h"
#include "store/flow_row.h"

namespace mitmd::web {

nlohmann::json RowSummaryJson(const store::FlowRow& row);
nlohmann::json FlowSummaryJson(const Flow& flow, uint64_t seq);

// The flow in the session-log schema (flow_json.h) plus "seq". With |include_bodies| false the
// body contents are left out (the viewer fetches them decoded from the body endpoints); sizes,
// truncation and encodings stay.
// |row| adds what the store keeps beside the flow (marked, comment, source, decoded size).
nlohmann::json FlowDetailJson(const Flow& flow, uint64_t seq, bool include_bodies);
nlohmann::json FlowDetailJson(const Flow& flow, const store::FlowRow& row, bool include_bodies);

}  // namespace mitmd::web
