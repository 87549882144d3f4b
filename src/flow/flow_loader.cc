#include "flow/flow_loader.h"

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "flow/flow_json.h"
#include "flow/har.h"

namespace mitmd {
namespace {

using nlohmann::json;

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Collects JSONL records, keeping only the newest |max| flows.
class JsonlReader {
 public:
  explicit JsonlReader(size_t max) : max_(max) {}

  void Line(std::string_view line) {
    line = TrimSpace(line);
    if (line.empty()) return;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      ++skipped_;
      return;
    }
    auto flow = FlowFromJson(j);
    if (!flow) {
      ++skipped_;
      return;
    }
    flows_.push_back(std::move(*flow));
    if (flows_.size() > max_) {
      flows_.pop_front();
      ++dropped_;
    }
  }

  LoadedFlows Finish() {
    LoadedFlows out;
    out.format = LoadedFlows::Format::kJsonl;
    out.flows.assign(std::make_move_iterator(flows_.begin()), std::make_move_iterator(flows_.end()));
    out.skipped = skipped_;
    out.dropped = dropped_;
    return out;
  }

 private:
  size_t max_;
  std::deque<Flow> flows_;
  size_t skipped_ = 0;
  size_t dropped_ = 0;
};

Result<LoadedFlows> FromHar(const json& doc, size_t max_flows) {
  auto imported = FlowsFromHar(doc);
  if (!imported) return std::unexpected(imported.error());
  LoadedFlows out;
  out.format = LoadedFlows::Format::kHar;
  out.skipped = imported->skipped;
  std::vector<Flow>& flows = imported->flows;
  if (flows.size() > max_flows) {
    out.dropped = flows.size() - max_flows;
    flows.erase(flows.begin(), flows.begin() + static_cast<ptrdiff_t>(out.dropped));
  }
  out.flows = std::move(flows);
  return out;
}

bool IsHarObject(const json& j) { return j.is_object() && j.contains("log"); }

}  // namespace

Result<LoadedFlows> LoadFlowsFromText(std::string_view content, size_t max_flows) {
  std::string_view trimmed = TrimSpace(content);
  if (trimmed.empty()) return LoadedFlows{};
  if (trimmed.front() != '{') {
    return Fail("not a session log or HAR file: it does not start with a JSON object");
  }
  // A HAR document spans the whole file; a session log has one flow per line.
  size_t eol = trimmed.find('\n');
  json first = json::parse(trimmed.substr(0, eol), nullptr, false);
  if (first.is_discarded() || IsHarObject(first)) {
    json whole = first.is_discarded() ? json::parse(trimmed, nullptr, false) : std::move(first);
    if (IsHarObject(whole)) return FromHar(whole, max_flows);
    if (whole.is_discarded() && eol == std::string_view::npos) {
      return Fail("not a session log or HAR file: the content is not valid JSON");
    }
  }
  JsonlReader reader(max_flows);
  while (!content.empty()) {
    size_t nl = content.find('\n');
    reader.Line(content.substr(0, nl));
    if (nl == std::string_view::npos) break;
    content.remove_prefix(nl + 1);
  }
  LoadedFlows out = reader.Finish();
  if (out.flows.empty() && out.skipped > 0) {
    return Fail(StrCat("no flow could be read: none of the ", out.skipped,
                       " lines is a mitmd flow record, and the file is not a HAR document"));
  }
  return out;
}

Result<LoadedFlows> LoadFlowsFile(const std::string& path, size_t max_flows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(StrCat("cannot open ", path, ": ", std::strerror(errno)));
  std::string line;
  // Skip leading blank lines to find the first record.
  while (std::getline(in, line) && TrimSpace(line).empty()) {
  }
  if (TrimSpace(line).empty()) return LoadedFlows{};
  json first = json::parse(TrimSpace(line), nullptr, false);
  bool jsonl = !first.is_discarded() && !IsHarObject(first);
  if (!jsonl) {
    // A HAR document (or something that is not ours): read it whole.
    std::ostringstream rest;
    rest << line << '\n' << in.rdbuf();
    auto loaded = LoadFlowsFromText(rest.str(), max_flows);
    if (!loaded) return Fail(StrCat(path, ": ", loaded.error().message));
    return loaded;
  }
  JsonlReader reader(max_flows);
  reader.Line(line);
  while (std::getline(in, line)) reader.Line(line);
  if (in.bad()) return Fail(StrCat("cannot read ", path, ": ", std::strerror(errno)));
  LoadedFlows out = reader.Finish();
  if (out.flows.empty() && out.skipped > 0) {
    return Fail(StrCat(path, ": no line is a mitmd flow record (", out.skipped, " unreadable)"));
  }
  return out;
}

}  // namespace mitmd
