#include "web/control_api.h"

#include "core/strings.h"
#include "flow/flow_json.h"

namespace mitmd::web {
namespace {

using nlohmann::json;

ApiReply Error(int status, std::string message) {
  return {status, {{"error", std::move(message)}}};
}

// The request body as JSON: empty is null (no edit), anything else must parse.
Result<json> ParseBody(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json();
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Fail("the request body is not valid JSON");
  return j;
}

bool IsFlowId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

}  // namespace

std::optional<ApiReply> ControlApi::Handle(std::string_view method, std::string_view path,
                                           std::string_view body, const FlowLookup& lookup) {
  if (path == "/api/rules") return Rules(method, body);
  if (path == "/api/hold") return Hold(method, body);
  constexpr std::string_view kHeld = "/api/hold/";
  if (path.starts_with(kHeld) && path != "/api/hold/resume") {
    if (method != "GET") return Error(405, "use GET");
    auto flow = controls_.flows().HeldFlow(std::string(path.substr(kHeld.size())));
    if (!flow) return Error(404, "that flow is not held (any more)");
    return ApiReply{200, FlowToJson(*flow)};
  }
  if (path == "/api/hold/resume") {
    if (method != "POST") return Error(405, "use POST");
    return ResumeAll();
  }
  constexpr std::string_view kFlows = "/api/flows/";
  if (!path.starts_with(kFlows)) return std::nullopt;
  std::string_view rest = path.substr(kFlows.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view id = rest.substr(0, slash);
  std::string_view action = rest.substr(slash + 1);
  if (action != "resume" && action != "kill" && action != "replay") return std::nullopt;
  if (method != "POST") return Error(405, "use POST");
  if (!IsFlowId(id)) return Error(400, "not a flow id");
  return FlowAction(id, action, body, lookup);
}

ApiReply ControlApi::Rules(std::string_view method, std::string_view body) {
  if (method == "GET") return {200, rules::RulesToJson(controls_.Current()->specs())};
  if (method != "PUT") return Error(405, "use GET or PUT");
  auto j = ParseBody(body);
  if (!j) return Error(400, j.error().message);
  auto specs = rules::RulesFromJson(*j);
  if (!specs) return Error(400, specs.error().message);
  if (auto st = controls_.SetRules(std::move(*specs)); !st) return Error(400, st.error().message);
  return {200, rules::RulesToJson(controls_.Current()->specs())};
}

ApiReply ControlApi::Hold(std::string_view method, std::string_view body) {
  if (method == "GET") {
    json j = rules::HoldToJson(controls_.Current()->hold());
    json held = json::array();
    for (const rules::HeldInfo& h : controls_.flows().Held()) {
      json item = {{"id", h.id}, {"side", h.side}, {"method", h.method}, {"url", h.url}};
      if (h.status != 0) item["status"] = h.status;
      held.push_back(std::move(item));
    }
    j["held"] = std::move(held);
    return {200, std::move(j)};
  }
  if (method != "PUT") return Error(405, "use GET or PUT");
  auto j = ParseBody(body);
  if (!j) return Error(400, j.error().message);
  auto hold = rules::HoldFromJson(*j);
  if (!hold) return Error(400, hold.error().message);
  if (auto st = controls_.SetHold(std::move(*hold)); !st) return Error(400, st.error().message);
  return {200, rules::HoldToJson(controls_.Current()->hold())};
}

ApiReply ControlApi::ResumeAll() {
  size_t resumed = 0;
  json errors = json::array();
  for (const std::string& id : controls_.flows().HeldIds()) {
    auto st = controls_.flows().Send(id, rules::Command{});
    if (st) {
      ++resumed;
    } else {
      errors.push_back({{"id", id}, {"error", st.error().message}});
    }
  }
  json reply = {{"resumed", resumed}};
  if (!errors.empty()) reply["errors"] = std::move(errors);
  return {200, std::move(reply)};
}

ApiReply ControlApi::FlowAction(std::string_view id, std::string_view action, std::string_view body,
                                const FlowLookup& lookup) {
  auto j = ParseBody(body);
  if (!j) return Error(400, j.error().message);
  auto edit = rules::EditFromJson(*j);
  if (!edit) return Error(400, edit.error().message);
  if (action == "replay") {
    if (replayer_ == nullptr) {
      return Error(503,
                   "replay needs a proxy listener (--mode regular or upstream): this mitmd has "
                   "only reverse or transparent ones");
    }
    if (edit->response) return Error(400, "a replay sends a request: edit \"request\"");
    auto flow = lookup(id);
    if (!flow) return Error(500, flow.error().message);
    if (*flow == nullptr) return Error(404, "no such flow (it may have been cleared or deleted)");
    auto new_id = replayer_->Replay(**flow, *edit);
    if (!new_id) return Error(409, new_id.error().message);
    return {200, {{"id", *new_id}}};
  }
  rules::Command command;
  command.action =
      action == "kill" ? rules::Command::Action::kKill : rules::Command::Action::kResume;
  if (command.action == rules::Command::Action::kKill && !edit->empty()) {
    return Error(400, "kill takes no edit");
  }
  command.edit = std::move(*edit);
  auto st = controls_.flows().Send(std::string(id), std::move(command));
  if (!st) return Error(409, st.error().message);
  return {200, {{"ok", true}}};
}

}  // namespace mitmd::web
