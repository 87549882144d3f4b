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
#include "flow/har.h"

namespace mitmd {

struct LoadedFlows {
  enum class Format { kJsonl, kHar };
  Format format = Format::kJsonl;
  std::vector<Flow> flows;  // in file order
  // Lines or entries that could not be read: a torn last line after a crash, a foreign record,
  // a member of the wrong type. The first kMaxLoadWarnings reasons, each naming its line or entry
  // ("line 3: schema: expected an integer …, got string").
  size_t skipped = 0;
  std::vector<std::string> warnings;
  // Flows dropped from the front because the file held more than |max_flows|.
  size_t dropped = 0;
};

// Parses |content|, detecting the format: a HAR document is one JSON object whose first member is
// "log" (or a one-line object with a "log" member); anything else is read as JSON lines, where
// any line (the first included) that is not a flow record is skipped. Keeps the last |max_flows|
// flows. Fails only when nothing could be read from non-empty content.
Result<LoadedFlows> LoadFlowsFromText(std::string_view content, size_t max_flows);

// Reads |path| the same way, streaming JSONL line by line so a large log needs memory only for
// the flows kept (a HAR file is read whole). A missing file is an error; an empty one is zero
// flows.
Result<LoadedFlows> LoadFlowsFile(const std::string& path, size_t max_flows);

}  // namespace mitmd
