#pragma once
// Controls: what the user changes at runtime, shared by the web thread (which sets it) and the
// proxy workers (which read it).
//  - The rule set and hold filters: an immutable RuleSet swapped atomically; each exchange takes
//    the current one once when it starts. Rules persist in <confdir>/rules.json.
//  - FlowControl: held flows by id, so that the web thread can resume or kill one. The web
//    thread never touches a worker's memory: it posts (flow id, command) to the worker that owns
//    the flow, which finds the exchange, if it is still there, and acts on its own thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "flow/flow.h"
#include "rules/edit.h"
#include "rules/rule_set.h"

namespace mitmd::rules {

struct Command {
  enum class Action { kResume, kKill };
  Action action = Action::kResume;
  Edit edit;  // for kResume; empty: as it is
};

// A held exchange, as its worker sees it. Called on the worker thread only.
class Holdable {
 public:
  virtual ~Holdable() = default;
  // Acts on the command; an error (an edit that does not apply) leaves the exchange held.
  virtual Status Control(Command command) = 0;
};

// What the viewer lists about a held flow before it opens it.
struct HeldInfo {
  std::string id;
  std::string side;  // "request" or "response"
  std::string method;
  std::string url;
  int status = 0;                    // of a held response
  std::shared_ptr<const Flow> flow;  // as held, bodies included: what the editor starts from
};

class FlowControl {
 public:
  // Runs a function on the worker that owns a flow (net::Worker::Post).
  using Post = std::function<void(std::function<void()>)>;

  // Worker side, on the owning worker's thread: |target| is held until Unhold (which its
  // destructor must call, also on that thread).
  void Hold(const std::string& flow_id, Holdable* target, Post post, HeldInfo info = {});
  void Unhold(const std::string& flow_id);

  // Web side: delivers |command| to the flow's worker and waits (at most |wait|) for its answer.
  // Errors say why nothing happened: the flow is not held (done, never held, or its client left
  // first), the edit does not apply, the worker did not answer.
  Status Send(const std::string& flow_id, Command command,
              std::chrono::milliseconds wait = std::chrono::seconds(5));
  std::vector<std::string> HeldIds() const;
  // The held flows, oldest first.
  std::vector<HeldInfo> Held() const;
  // One held flow as it was held; null when it is not held.
  std::shared_ptr<const Flow> HeldFlow(const std::string& flow_id) const;

 private:
  struct Entry {
    Holdable* target;  // dereferenced only on the owning worker, inside a posted function
    Post post;
    HeldInfo info;
    uint64_t order;
  };
  // Shared with posted functions, which may run after this object is gone at shutdown.
  struct Table {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> held;
    uint64_t next_order = 0;
  };
  std::shared_ptr<Table> table_ = std::make_shared<Table>();
};

class Controls {
 public:
  // Loads <|rules_path|> when it exists (empty: nothing persisted), then appends the rules from
  // the command line that it does not hold yet. A bad file or rule is an error naming it.
  static Result<std::unique_ptr<Controls>> Open(std::string rules_path,
                                                const std::vector<RuleSpec>& from_options,
                                                HoldSpec hold);
  // No rules, no hold filters, nothing persisted.
  Controls();

  // The set in force; an exchange keeps it for its whole life.
  std::shared_ptr<const RuleSet> Current() const { return current_.load(); }
  // Parses, persists (written to a temporary file, then renamed) and swaps in the new rules.
  Status SetRules(std::vector<RuleSpec> specs);
  Status SetHold(HoldSpec hold);
  FlowControl& flows() { return flows_; }
  // Random per run: lets mitmd's own replays choose their flow's id through the proxy
  // (proxy/hooks.h, kReplayHeader), which no other client can.
  const std::string& replay_token() const { return replay_token_; }

 private:
  Status Save(const std::vector<RuleSpec>& specs) const;

  std::string rules_path_;
  std::mutex write_mu_;  // one writer at a time: read, modify, swap
  std::atomic<std::shared_ptr<const RuleSet>> current_;
  FlowControl flows_;
  std::string replay_token_;
};

}  // namespace mitmd::rules
