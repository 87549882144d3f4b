#pragma once
// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) export of flows, and the reverse for
// opening HAR files in the viewer. Sans-I/O.
//
// Export: one entry per flow, in the order given. Bodies are decoded (content.text is what the
// server meant, content.compression what the coding saved); binary bodies are base64. Timings
// come from the flow's timestamps: connect and ssl only when the flow opened its upstream
// connection, blocked is the wait between that and the request, send/wait/receive the request
// and response phases. Tunnels become CONNECT entries. mitmd-specific facts ride in "_"-prefixed
// fields: _flowId, _clientConnection, _upstreamConnection, _upstreamReused, _error, _tls.
// Import keeps what a browser's export says beyond the exchange (pageref and its page,
// _initiator, _resourceType) in Flow::har, and export writes it back.

#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "flow/flow.h"

namespace mitmd {

struct HarOptions {
  std::string creator_version = "0.1.0";
  // Decoded bodies larger than this are cut (and marked with a comment).
  size_t max_decoded_body = 16 << 20;
};

nlohmann::json BuildHarEntry(const Flow& flow, const HarOptions& options);
nlohmann::json BuildHar(const std::vector<std::shared_ptr<const Flow>>& flows,
                        const HarOptions& options);

// A HAR document written piece by piece, for exports of any size: Head(), then AppendEntry for
// each flow in order, then Tail(). The pages of imported flows (HarContext) are collected on the
// way and written in the tail, each once, in the order first seen (at most kMaxPages).
class HarStream {
 public:
  static constexpr size_t kMaxPages = 10000;
  explicit HarStream(HarOptions options);
  std::string Head() const;
  void AppendEntry(const Flow& flow, std::string& out);
  std::string Tail() const;
  size_t entries() const { return entries_; }

 private:
  HarOptions options_;
  size_t entries_ = 0;
  std::vector<nlohmann::json> pages_;
  std::unordered_set<std::string> seen_pages_;
};

// ISO 8601 UTC with milliseconds: 2024-05-01T12:00:00.123Z.
std::string IsoTimeMillis(double epoch_seconds);
// Parses what IsoTimeMillis writes and the offsets other tools write (+02:00). 0 on failure.
double ParseIsoTime(std::string_view text);

// Flows from a parsed HAR document. An entry without a request, or with a member of the wrong
// type anywhere, is skipped and counted; the first few reasons are kept, naming the entry
// ("entry 3: request.headers[0].name: expected a string, got number").
inline constexpr size_t kMaxLoadWarnings = 20;
struct HarImport {
  std::vector<Flow> flows;
  size_t skipped = 0;
  std::vector<std::string> warnings;  // at most kMaxLoadWarnings
};
Result<HarImport> FlowsFromHar(const nlohmann::json& har);

}  // namespace mitmd
