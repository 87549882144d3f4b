#pragma once
// RuleSet: the rules and hold filters in force, parsed once and immutable. An exchange takes the
// current set once when it starts (a shared_ptr snapshot), so a set swapped mid-exchange never
// shows it half old, half new. Controls (controls.h) swaps sets atomically.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/result.h"
#include "flow/filter.h"
#include "rules/rule.h"

namespace mitmd::rules {

// Which requests and responses are held for the user (each list: any filter matching holds).
struct HoldSpec {
  std::vector<std::string> request;
  std::vector<std::string> response;
  bool operator==(const HoldSpec&) const = default;
};

class RuleSet {
 public:
  // Parses every spec, disabled ones included, so that a bad rule is refused when it is set
  // rather than when it is enabled. The error names the rule by its position (1-based).
  static Result<std::shared_ptr<const RuleSet>> Create(std::vector<RuleSpec> specs,
                                                       HoldSpec hold = {});
  // No rules and no hold filters.
  static std::shared_ptr<const RuleSet> Empty();

  const std::vector<RuleSpec>& specs() const { return specs_; }
  const HoldSpec& hold() const { return hold_; }
  // The enabled rules, in order.
  const std::vector<Rule>& active() const { return active_; }
  bool HoldsRequest(const Flow& flow) const;
  bool HoldsResponse(const Flow& flow) const;
  // Nothing to apply and nothing to hold: the exchange takes its fast path.
  bool empty() const {
    return active_.empty() && hold_requests_.empty() && hold_responses_.empty();
  }
  // Whether an enabled rule of |kind| exists at all (cheap pre-check before matching filters).
  bool Has(RuleKind kind) const;

 private:
  RuleSet() = default;

  std::vector<RuleSpec> specs_;
  HoldSpec hold_;
  std::vector<Rule> active_;
  std::vector<Filter> hold_requests_;
  std::vector<Filter> hold_responses_;
};

// {"rules": [{"kind": "map-local", "spec": "|…", "enabled": true}, …]}: the API's and rules.json's
// form.
nlohmann::json RulesToJson(const std::vector<RuleSpec>& specs);
// Validated member by member; the error names the bad member ("rules[2].kind: …").
Result<std::vector<RuleSpec>> RulesFromJson(const nlohmann::json& j);

// {"request": ["FILTER", …], "response": [...]}.
nlohmann::json HoldToJson(const HoldSpec& hold);
Result<HoldSpec> HoldFromJson(const nlohmann::json& j);

}  // namespace mitmd::rules
