#pragma once
// Applying a rule set to one exchange's messages. Sans-I/O (map-local aside, which reads the
// file it serves): the exchange passes its flow (what the filters match) and the parts a rule may
// change, and every change is appended to |mods| for the flow's modified_by.
//
// As in mitmproxy, modify-headers and modify-body apply to the request (the flow has no response
// yet, so a filter such as status:200 matches responses only) and again to the response.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flow/flow.h"
#include "rules/rule_set.h"

namespace mitmd::rules {

enum class Side { kRequest, kResponse };

// The first enabled map-local rule matching |flow|, or null.
const Rule* FindMapLocal(const RuleSet& set, const Flow& flow);

// What a map-local rule answers for a request path ("/a/b.js?x=1").
struct LocalAnswer {
  int status = 200;  // 200, or 404/403 with |body| saying why
  std::string content_type;
  std::string body;
  std::string file;  // the file served, for the flow's note; empty when none
};
// A rule naming a file serves it for every path; a directory serves DIR/PATH (the query left
// out, index.html for a path ending in /). A path with a ".." segment is refused: the rule
// never serves outside its directory. The files come from memory (read when the rule was
// parsed): the worker never waits on the disk.
LocalAnswer ServeLocal(const Rule& rule, std::string_view path);

// map-remote: every matching rule rewrites the URL in turn. The new URL when it changed.
std::optional<std::string> MapRemote(const RuleSet& set, const Flow& flow, const std::string& url,
                                     std::vector<Modification>& mods);

// modify-headers on one side's headers. True when something changed.
bool ModifyHeaders(const RuleSet& set, const Flow& flow, Side side, HeaderList& headers,
                   std::vector<Modification>& mods);

// Whether a modify-body rule matches |flow| on |side|: the body must then be buffered whole.
bool WantsBody(const RuleSet& set, const Flow& flow);

// modify-body on a whole (decoded) body. True when it changed.
bool ModifyBody(const RuleSet& set, const Flow& flow, Side side, std::string& body,
                std::vector<Modification>& mods);

// A body as a Modification shows it: the text up to kModificationCap, or a size for binary.
std::string BodyForModification(std::string_view body);

// "request" / "response".
std::string_view ToString(Side side);

}  // namespace mitmd::rules
