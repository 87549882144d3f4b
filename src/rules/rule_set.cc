#include "rules/rule_set.h"

#include "core/strings.h"
#include "flow/json_fields.h"

namespace mitmd::rules {

Result<std::shared_ptr<const RuleSet>> RuleSet::Create(std::vector<RuleSpec> specs, HoldSpec hold) {
  auto set = std::shared_ptr<RuleSet>(new RuleSet());
  for (size_t i = 0; i < specs.size(); ++i) {
    auto rule = Rule::Parse(specs[i]);
    if (!rule) return Fail(StrCat("rule ", i + 1, ": ", rule.error().message));
    if (specs[i].enabled) set->active_.push_back(std::move(*rule));
  }
  auto parse_all = [](const std::vector<std::string>& texts, std::string_view what,
                      std::vector<Filter>& out) -> Status {
    for (const std::string& text : texts) {
      if (text.empty())
        return Fail(StrCat(what,
                           ": an empty filter would hold every flow; give "
                           "a filter, or clear the list to hold nothing"));
      auto filter = Filter::Parse(text);
      if (!filter) return Fail(StrCat(what, " filter '", text, "': ", filter.error().message));
      out.push_back(std::move(*filter));
    }
    return {};
  };
  if (auto st = parse_all(hold.request, "hold", set->hold_requests_); !st) {
    return std::unexpected(st.error());
  }
  if (auto st = parse_all(hold.response, "hold-response", set->hold_responses_); !st) {
    return std::unexpected(st.error());
  }
  set->specs_ = std::move(specs);
  set->hold_ = std::move(hold);
  return std::shared_ptr<const RuleSet>(std::move(set));
}

std::shared_ptr<const RuleSet> RuleSet::Empty() {
  return std::shared_ptr<const RuleSet>(new RuleSet());
}

bool RuleSet::HoldsRequest(const Flow& flow) const {
  for (const Filter& f : hold_requests_) {
    if (f.Matches(flow)) return true;
  }
  return false;
}

bool RuleSet::HoldsResponse(const Flow& flow) const {
  for (const Filter& f : hold_responses_) {
    if (f.Matches(flow)) return true;
  }
  return false;
}

bool RuleSet::Has(RuleKind kind) const {
  for (const Rule& r : active_) {
    if (r.kind() == kind) return true;
  }
  return false;
}

nlohmann::json RulesToJson(const std::vector<RuleSpec>& specs) {
  nlohmann::json rules = nlohmann::json::array();
  for (const RuleSpec& s : specs) {
    rules.push_back({{"kind", ToString(s.kind)}, {"spec", s.spec}, {"enabled", s.enabled}});
  }
  return {{"rules", std::move(rules)}};
}

Result<std::vector<RuleSpec>> RulesFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Fail("expected a JSON object {\"rules\": [...]}");
  std::string error;
  JsonFields top(j, "", error);
  std::vector<RuleSpec> specs;
  if (!top.Require("rules")) return Fail(error);
  const nlohmann::json* rules = top.Array("rules");
  if (rules == nullptr) return Fail(error);
  for (size_t i = 0; i < rules->size(); ++i) {
    std::string path = StrCat("rules[", i, "]");
    if (!(*rules)[i].is_object()) return Fail(StrCat(path, ": expected an object"));
    JsonFields r = top.Nested((*rules)[i], path);
    RuleSpec spec;
    std::string kind;
    if (r.Require("kind")) r.String("kind", kind);
    if (r.Require("spec")) r.String("spec", spec.spec);
    r.Bool("enabled", spec.enabled);
    if (!error.empty()) return Fail(error);
    auto k = RuleKindFromString(kind);
    if (!k) {
      return Fail(StrCat(path, ".kind: '", kind,
                         "' is not one of map-local, map-remote, modify-headers, modify-body"));
    }
    spec.kind = *k;
    specs.push_back(std::move(spec));
  }
  return specs;
}

nlohmann::json HoldToJson(const HoldSpec& hold) {
  return {{"request", hold.request}, {"response", hold.response}};
}

Result<HoldSpec> HoldFromJson(const nlohmann::json& j) {
  if (!j.is_object())
    return Fail("expected a JSON object {\"request\": [...], \"response\": [...]}");
  std::string error;
  JsonFields top(j, "", error);
  HoldSpec hold;
  top.StringList("request", hold.request);
  top.StringList("response", hold.response);
  if (!error.empty()) return Fail(error);
  return hold;
}

}  // namespace mitmd::rules
