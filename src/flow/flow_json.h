#pragma once
// The JSON schema of a flow (version 1). One object per flow; the session log holds one per line.
//
// {"schema":1,"id":"…","kind":"http"|"tunnel","client":{"conn":7,"addr":"127.0.0.1:5000",
//  "tls":{…}},"server":{"host":"…","port":443,"addr":"…","conn":3,"reused":false,"tls":{…},
//  "cert":{…}},"insecure":false,"request":{…},"response":{…},"error":{"phase":…,"message":…},
//  "timings":{…},"bytes":{"up":…,"down":…},"body_record_cap":1048576,"note":"…"}
// Bodies: {"size":N,"truncated":bool,"encoding":"text"|"base64","content":"…"}; text when the
// recorded bytes are valid UTF-8, base64 otherwise. Headers: [["Name","value"],…] in wire order.

#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "flow/flow.h"

namespace mitmd {

nlohmann::json FlowToJson(const Flow& flow);
Result<Flow> FlowFromJson(const nlohmann::json& j);

// One line, no trailing newline; invalid UTF-8 in headers is replaced, never thrown.
// Written without building the DOM; the text is what FlowToJson(flow).dump() with
// error_handler_t::replace prints (each ill-formed UTF-8 subpart becomes one U+FFFD).
std::string FlowToJsonLine(const Flow& flow);

// Appends FlowToJsonLine(flow) to |out| (no newline), so a caller can reuse one buffer.
void AppendFlowJsonLine(const Flow& flow, std::string& out);

}  // namespace mitmd
