#pragma once
// The viewer's gRPC view of a flow (GET /api/flows/ID/grpc): the call's messages each way,
// split from the recorded bodies, with a schema-less protobuf reading of each, and the call's
// status from grpc-status/grpc-message.

#include <nlohmann/json.hpp>

#include "flow/flow.h"

namespace mitmd::web {

// {"grpc": false} for a flow that is no gRPC call; else {"grpc": true, "service", "method",
//  "request": {...}, "response": {...}, "status": {...} | null} (decode/grpc.h has the parts).
nlohmann::json GrpcViewJson(const Flow& flow);

}  // namespace mitmd::web
