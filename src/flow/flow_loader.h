#pragma once
// Reading flows back: a JSONL session log (ours, possibly from an earlier run or a colleague) or
// a HAR file (from mitmd, a browser's devtools or another proxy). Used for --load, for showing
// the session log again after a restart, and for files uploaded in the viewer.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "flow/flow.h"

namespace mitmd {

struct LoadedFlows {
  enum class Format { kJsonl, kHar };
  Format format = Format::kJsonl;
  std::vector<Flow> flows;  // in file order
  // Lines or entries that could not be read: a torn last line after a crash, a foreign record.
  size_t skipped = 0;
  // Flows dropped from the front because the file held more than |max_flows|.
  size_t dropped = 0;
};

// Parses |content|, detecting the format: a HAR document is one JSON object with a "log" member;
// anything else is read as JSON lines. Keeps the last |max_flows| flows.
Result<LoadedFlows> LoadFlowsFromText(std::string_view content, size_t max_flows);

// Reads |path| the same way, streaming JSONL line by line so a large log needs memory only for
// the flows kept. A missing file is an error; an empty one is zero flows.
Result<LoadedFlows> LoadFlowsFile(const std::string& path, size_t max_flows);

}  // namespace mitmd
