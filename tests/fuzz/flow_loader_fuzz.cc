// Fuzzes reading flow files: session-log lines and HAR documents (as uploaded to /api/import,
// given to --load, or left in the session log). Any input loads or fails with a message; no
// exception escapes, and at most the asked number of flows is kept.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "flow/flow_json.h"
#include "flow/flow_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = mitmd::LoadFlowsFromText(text, 8);
  if (loaded) {
    if (loaded->flows.size() > 8) {
      std::fprintf(stderr, "flow_loader_fuzz: kept more flows than asked\n");
      std::abort();
    }
    // What was read is written again without throwing.
    for (const auto& f : loaded->flows) (void)mitmd::FlowToJsonLine(f);
  } else if (loaded.error().message.empty()) {
    std::fprintf(stderr, "flow_loader_fuzz: an error without a message\n");
    std::abort();
  }
  return 0;
}
