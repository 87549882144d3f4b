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

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// A HAR document opens with {"log": (browsers, mitmd, other proxies, pretty or minified). A
// session-log line opens with another member, so the first bytes decide without parsing a
// possibly huge file twice.
bool StartsLikeHar(std::string_view text) {
  text = TrimSpace(text);
  if (!text.starts_with('{')) return false;
  text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  return text.starts_with("\"log\"");
}

bool IsHarObject(const json& j) { return j.is_object() && j.contains("log"); }

// Collects JSONL records, keeping only the newest |max| flows.
class JsonlReader {
 public:
  explicit JsonlReader(size_t max) : max_(max) {}

  void Line(std::string_view line) {
    ++line_number_;
    line = TrimSpace(line);
    if (line.empty()) return;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Skip("not valid JSON (a torn or foreign line)");
    auto flow = FlowFromJson(j);
    if (!flow) return Skip(flow.error().message);
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
    out.warnings = std::move(warnings_);
    return out;
  }

 private:
  void Skip(std::string_view why) {
    ++skipped_;
    if (warnings_.size() < kMaxLoadWarnings) warnings_.push_back(StrCat("line ", line_number_, ": ", why));
  }

  size_t max_;
  std::deque<Flow> flows_;
  size_t line_number_ = 0;
  size_t skipped_ = 0;
  size_t dropped_ = 0;
  std::vector<std::string> warnings_;
};

Result<LoadedFlows> FromHar(std::string_view text, size_t max_flows) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Fail("the HAR document is not valid JSON");
  auto imported = FlowsFromHar(doc);
  if (!imported) return std::unexpected(imported.error());
  LoadedFlows out;
  out.format = LoadedFlows::Format::kHar;
  out.skipped = imported->skipped;
  out.warnings = std::move(imported->warnings);
  std::vector<Flow>& flows = imported->flows;
  if (flows.size() > max_flows) {
    out.dropped = flows.size() - max_flows;
    flows.erase(flows.begin(), flows.begin() + static_cast<ptrdiff_t>(out.dropped));
  }
  out.flows = std::move(flows);
  return out;
}

// A one-line JSON object with a "log" member that does not open with it.
bool IsOneLineHar(std::string_view text) {
  if (text.find('\n') != std::string_view::npos) return false;
  return IsHarObject(json::parse(text, nullptr, /*allow_exceptions=*/false));
}

Status NothingRead(const LoadedFlows& loaded) {
  if (!loaded.flows.empty() || loaded.skipped == 0) return {};
  std::string why = loaded.warnings.empty() ? "" : StrCat(" (", loaded.warnings.front(), ")");
  return Fail(StrCat("no flow could be read: none of the ", loaded.skipped,
                     " lines is a mitmd flow record, and the file is not a HAR document", why));
}

}  // namespace

Result<LoadedFlows> LoadFlowsFromText(std::string_view content, size_t max_flows) {
  std::string_view trimmed = TrimSpace(content);
  if (trimmed.empty()) return LoadedFlows{};
  if (StartsLikeHar(trimmed) || IsOneLineHar(trimmed)) return FromHar(trimmed, max_flows);
  JsonlReader reader(max_flows);
  while (!content.empty()) {
    size_t nl = content.find('\n');
    reader.Line(content.substr(0, nl));
    if (nl == std::string_view::npos) break;
    content.remove_prefix(nl + 1);
  }
  LoadedFlows out = reader.Finish();
  if (auto st = NothingRead(out); !st) return std::unexpected(st.error());
  return out;
}

Result<LoadedFlows> LoadFlowsFile(const std::string& path, size_t max_flows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(StrCat("cannot open ", path, ": ", std::strerror(errno)));
  // Whitespace and "{" may come on lines of their own before "log" (a pretty-printed HAR).
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (TrimSpace(head).empty() && in.eof()) return LoadedFlows{};
  in.clear();
  in.seekg(0);
  std::string line;
  size_t blank = 0;
  while (std::getline(in, line) && TrimSpace(line).empty()) ++blank;
  if (TrimSpace(line).empty()) return LoadedFlows{};
  if (StartsLikeHar(head) || IsOneLineHar(TrimSpace(line))) {
    std::ostringstream rest;
    rest << line << '\n' << in.rdbuf();
    auto loaded = FromHar(rest.str(), max_flows);
    if (!loaded) return Fail(StrCat(path, ": ", loaded.error().message));
    return loaded;
  }
  JsonlReader reader(max_flows);
  for (size_t i = 0; i < blank; ++i) reader.Line({});
  reader.Line(line);
  while (std::getline(in, line)) reader.Line(line);
  if (in.bad()) return Fail(StrCat("cannot read ", path, ": ", std::strerror(errno)));
  LoadedFlows out = reader.Finish();
  if (auto st = NothingRead(out); !st) return Fail(StrCat(path, ": ", st.error().message));
  return out;
}

}  // namespace mitmd
