#pragma once
// ControlApi: the viewer's API for changing traffic (issue 10), apart from the web server's
// plumbing so that it is tested without sockets. Every answer is JSON; errors are
// {"error": "..."} with a message a user can act on.
//
//   GET  /api/rules                   {"rules": [{"kind", "spec", "enabled"}, ...]}
//   PUT  /api/rules                   the same: replaces the list (order is application order),
//                                     persisted in <confdir>/rules.json; 400 names a bad rule
//   GET  /api/hold                    {"request": [FILTER...], "response": [...], "held":
//                                     [{"id", "side", "method", "url", "status"}, ...]}
//   PUT  /api/hold                    {"request": [...], "response": [...]}
//   GET  /api/hold/ID                 a held flow as it was held, bodies included (the editor's)
//   POST /api/hold/resume             resumes every held flow as it is: {"resumed": N}
//   POST /api/flows/ID/resume         optional edit {"request": {"method", "url", "headers":
//                                     [[n, v], ...], "body"}} or {"response": {"status",
//                                     "reason", "headers", "body"}}; 409 when not held
//   POST /api/flows/ID/kill           the client gets an error; the flow is recorded as killed
//   POST /api/flows/ID/replay         optional edit as for resume: {"id": NEW_ID}; the new flow
//                                     has "replay_of": ID
// The web server checks the Host, the token and X-Mitmd: 1 (on POST and PUT) before this.

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "core/result.h"
#include "flow/flow.h"
#include "rules/controls.h"
#include "rules/replay_client.h"

namespace mitmd::web {

struct ApiReply {
  int status = 200;
  nlohmann::json body;
};

// A flow of the current session by id: null when there is none.
using FlowLookup = std::function<Result<std::shared_ptr<const Flow>>(std::string_view id)>;

class ControlApi {
 public:
  // |replayer| may be null: then replay answers 503.
  ControlApi(rules::Controls& controls, rules::Replayer* replayer)
      : controls_(controls), replayer_(replayer) {}

  // nullopt when |path| is not one of this API's.
  std::optional<ApiReply> Handle(std::string_view method, std::string_view path,
                                 std::string_view body, const FlowLookup& lookup);

 private:
  ApiReply Rules(std::string_view method, std::string_view body);
  ApiReply Hold(std::string_view method, std::string_view body);
  ApiReply ResumeAll();
  ApiReply FlowAction(std::string_view id, std::string_view action, std::string_view body,
                      const FlowLookup& lookup);

  rules::Controls& controls_;
  rules::Replayer* replayer_;
};

}  // namespace mitmd::web
