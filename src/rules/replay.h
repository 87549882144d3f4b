#pragma once
// Replay: a recorded flow's request, as it was or edited, made into the bytes a client sends to
// mitmd's proxy port, so that it goes the way live traffic goes (the pool, upstream
// verification, the rules) and is recorded as a new flow. Sans-I/O; replay_client.h sends it.
//
// The request is absolute-form ("GET https://host/path HTTP/1.1"), which mitmd's proxy takes for
// https too: no CONNECT, no TLS between the replaying client and mitmd. Hop-by-hop headers are
// dropped, the body is framed by Content-Length, the connection closes after the response, and
// kReplayHeader (below) tells mitmd which flow it replays (never forwarded).

#include <string>
#include <string_view>

#include "core/result.h"
#include "flow/flow.h"
#include "rules/edit.h"

namespace mitmd::rules {

// The header a replayed request carries through the proxy: "ORIGINAL-ID", or "TOKEN ORIGINAL-ID
// NEW-ID" from mitmd's own replay (which alone may choose the new flow's id). Never forwarded.
inline constexpr std::string_view kReplayHeader = "X-Mitmd-Replay";

// |replay_header| is kReplayHeader's value. Fails, saying why, for a flow without an HTTP request
// (a tunnel, a refused CONNECT) or whose request body was cut at --max-body-record (unless
// |edit| gives a new body): sending the cut body would not be a replay.
Result<std::string> BuildReplayRequest(const Flow& flow, const Edit& edit,
                                       std::string_view replay_header);

}  // namespace mitmd::rules
