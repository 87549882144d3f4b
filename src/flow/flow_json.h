#pragma once
// The JSON schema of a flow (version 1). One object per flow; the session log holds one per line.
//
// {"schema":1,"id":"…","kind":"http"|"tunnel","client":{"conn":7,"addr":"127.0.0.1:5000",
//  "tls":{…}},"server":{"host":"…","port":443,"addr":"…","conn":3,"reused":false,"tls":{…},
//  "cert":{…}},"insecure":false,"request":{…},"response":{…},"error":{"phase":…,"message":…},
//  "timings":{…},"bytes":{"up":…,"down":…},"body_record_cap":1048576,"note":"…"}
// Bodies: {"size":N,"truncated":bool,"encoding":"text"|"base64","content":"…"}; text when the
// recorded bytes are valid UTF-8, base64 otherwise. Headers: [["Name","value"],…] in wire order;
// a name or value that is not UTF-8 (HTTP allows bytes from 0x80 in values) is shown escaped,
// each byte of an ill-formed sequence as \xHH, and kept exactly in a third element:
// ["X-Name","caf\\xe9",{"value_b64":"Y2Fm6Q=="}] ("name_b64" likewise). Readers that take only
// the first two elements see the escaped text.

#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "flow/flow.h"

namespace mitmd {

// The parsed FlowToJsonLine(flow): one writer for the schema.
nlohmann::json FlowToJson(const Flow& flow);
Result<Flow> FlowFromJson(const nlohmann::json& j);

// One line, no trailing newline, written without building a DOM; ill-formed UTF-8 never throws:
// headers keep it as above, bodies go as base64, other strings get one U+FFFD per ill-formed
// subpart (as nlohmann's error_handler_t::replace does).
std::string FlowToJsonLine(const Flow& flow);

// Whether a body's bytes go into the line. kOmit writes the content as "" (size and truncated
// kept): the session store keeps the bytes in a table of their own.
enum class BodyContent { kInclude, kOmit };

// Appends FlowToJsonLine(flow) to |out| (no newline), so a caller can reuse one buffer.
void AppendFlowJsonLine(const Flow& flow, std::string& out,
                        BodyContent content = BodyContent::kInclude);

// Both at once, serializing once: appends the line to |line| and the same line with
// BodyContent::kOmit to |without_bodies| (the session log and the session database's JSON).
void AppendFlowJsonLines(const Flow& flow, std::string& line, std::string& without_bodies);

}  // namespace mitmd
