#include "rules/controls.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

#include "core/fd_io.h"
#include "core/strings.h"

namespace mitmd::rules {

void FlowControl::Hold(const std::string& flow_id, Holdable* target, Post post, HeldInfo info) {
  info.id = flow_id;
  std::lock_guard lock(table_->mu);
  table_->held[flow_id] = Entry{target, std::move(post), std::move(info), table_->next_order++};
}

void FlowControl::Unhold(const std::string& flow_id) {
  std::lock_guard lock(table_->mu);
  table_->held.erase(flow_id);
}

std::vector<std::string> FlowControl::HeldIds() const {
  std::vector<std::string> ids;
  for (HeldInfo& info : Held()) ids.push_back(std::move(info.id));
  return ids;
}

std::shared_ptr<const Flow> FlowControl::HeldFlow(const std::string& flow_id) const {
  std::lock_guard lock(table_->mu);
  auto it = table_->held.find(flow_id);
  return it == table_->held.end() ? nullptr : it->second.info.flow;
}

std::vector<HeldInfo> FlowControl::Held() const {
  std::vector<std::pair<uint64_t, HeldInfo>> entries;
  {
    std::lock_guard lock(table_->mu);
    for (const auto& [id, entry] : table_->held) entries.emplace_back(entry.order, entry.info);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<HeldInfo> out;
  for (auto& [order, info] : entries) out.push_back(std::move(info));
  return out;
}

Status FlowControl::Send(const std::string& flow_id, Command command,
                         std::chrono::milliseconds wait) {
  Post post;
  {
    std::lock_guard lock(table_->mu);
    auto it = table_->held.find(flow_id);
    if (it == table_->held.end()) {
      return Fail(StrCat("flow ", flow_id,
                         " is not held: it was never held, it already went on, or its client "
                         "left; nothing was done"));
    }
    post = it->second.post;
  }
  auto answer = std::make_shared<std::promise<Status>>();
  std::future<Status> result = answer->get_future();
  post([table = table_, flow_id, command = std::move(command), answer]() mutable {
    Holdable* target = nullptr;
    {
      std::lock_guard lock(table->mu);
      auto it = table->held.find(flow_id);
      if (it != table->held.end()) target = it->second.target;
    }
    if (target == nullptr) {
      answer->set_value(Fail(StrCat("flow ", flow_id,
                                    " is no longer held (its client left or it went on first); "
                                    "nothing was done")));
      return;
    }
    // On the owning worker: the exchange unholds itself on this thread before it goes away.
    answer->set_value(target->Control(std::move(command)));
  });
  if (result.wait_for(wait) != std::future_status::ready) {
    return Fail(StrCat("the proxy worker holding flow ", flow_id, " did not answer within ",
                       wait.count(), " ms (is mitmd stopping?)"));
  }
  return result.get();
}

Controls::Controls() : current_(RuleSet::Empty()) {
  unsigned char random[16];
  RAND_bytes(random, sizeof(random));
  replay_token_ = HexEncode(random, sizeof(random));
}

Result<std::unique_ptr<Controls>> Controls::Open(std::string rules_path,
                                                 const std::vector<RuleSpec>& from_options,
                                                 HoldSpec hold) {
  std::vector<RuleSpec> specs;
  if (!rules_path.empty()) {
    std::ifstream in(rules_path);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        return Fail(StrCat(rules_path,
                           " is not valid JSON: fix or remove it (it holds the rules "
                           "set in the viewer)"));
      }
      auto loaded = RulesFromJson(j);
      if (!loaded) return Fail(StrCat(rules_path, ": ", loaded.error().message));
      specs = std::move(*loaded);
    }
  }
  for (const RuleSpec& s : from_options) {
    bool known = false;
    for (const RuleSpec& have : specs) known |= have.kind == s.kind && have.spec == s.spec;
    if (!known) specs.push_back(s);
  }
  auto set = RuleSet::Create(specs, std::move(hold));
  if (!set) {
    return Fail(StrCat(set.error().message,
                       rules_path.empty()
                           ? ""
                           : StrCat(" (rules come from ", rules_path, " and the command line)")));
  }
  auto controls = std::make_unique<Controls>();
  controls->rules_path_ = std::move(rules_path);
  controls->current_.store(std::move(*set));
  return controls;
}

Status Controls::SetRules(std::vector<RuleSpec> specs) {
  std::lock_guard lock(write_mu_);
  auto set = RuleSet::Create(specs, Current()->hold());
  if (!set) return std::unexpected(set.error());
  if (auto st = Save(specs); !st) return st;
  current_.store(std::move(*set));
  return {};
}

Status Controls::SetHold(HoldSpec hold) {
  std::lock_guard lock(write_mu_);
  auto set = RuleSet::Create(Current()->specs(), std::move(hold));
  if (!set) return std::unexpected(set.error());
  current_.store(std::move(*set));
  return {};
}

Status Controls::Save(const std::vector<RuleSpec>& specs) const {
  if (rules_path_.empty()) return {};
  std::string tmp = rules_path_ + ".tmp";
  std::string text =
      RulesToJson(specs).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  text += "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  bool ok = WriteAll(fd, text) && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), rules_path_.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    return Fail(StrCat("cannot save the rules to ", rules_path_, ": ", std::strerror(saved)));
  }
  return {};
}

}  // namespace mitmd::rules
