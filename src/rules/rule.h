#pragma once
// Rules that change traffic, written with mitmproxy's option syntax so that users bring their
// habits: the first character is the separator, FILTER is mitmd's filter language (flow/filter.h)
// and may be left out where mitmproxy allows it (it then matches every flow).
//
//   map-local       |FILTER|LOCAL-PATH            serve a file, or a directory's files by path
//   map-remote      [|FILTER]|URL-REGEX|REPLACEMENT   send the request elsewhere
//   modify-headers  [|FILTER]|NAME|VALUE           set NAME (empty VALUE removes it; @FILE reads
//   it) modify-body     [|FILTER]|REGEX|REPLACEMENT    rewrite bodies (@FILE reads the replacement)
//
// Regular expressions are RE2 (Python-like syntax, linear time whatever the input: a body a peer
// sends cannot make a rule hang or overflow the stack, as std::regex does past ~100 KB).
// Replacements refer to groups as \1 .. \9. Sans-I/O but for @FILE and map-local, which read
// the file system when parsed, never when a rule applies: a worker must not wait on the disk.

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "flow/filter.h"

namespace re2 {
class RE2;
}

namespace mitmd::rules {

enum class RuleKind { kMapLocal, kMapRemote, kModifyHeaders, kModifyBody };

// "map-local", "map-remote", "modify-headers", "modify-body": the API's and the options' names.
std::string_view ToString(RuleKind kind);
std::optional<RuleKind> RuleKindFromString(std::string_view text);

// What map-local reads when its rule is parsed: a file up to kMapLocalMaxFile bytes; a
// directory's regular files (recursively) up to kMapLocalMaxTotal bytes and kMapLocalMaxFiles
// files in all. A larger tree is refused with a message saying so.
constexpr size_t kMapLocalMaxFile = 16 << 20;
constexpr size_t kMapLocalMaxTotal = 64 << 20;
constexpr size_t kMapLocalMaxFiles = 10000;

// The files a map-local rule serves, as they were when the rule was parsed (set the rules again
// to read them anew).
struct LocalFiles {
  bool directory = false;
  // A file rule: one entry, "". A directory rule: each file by its path under the directory
  // ("app.js", "img/logo.png").
  std::map<std::string, std::string, std::less<>> files;
};

// A rule as the user wrote it.
struct RuleSpec {
  RuleKind kind = RuleKind::kModifyHeaders;
  std::string spec;  // "|host:a.test|X-Env|dev"
  bool enabled = true;
  bool operator==(const RuleSpec&) const = default;
};

// A parsed rule. Immutable and shared by every exchange that uses the rule set it belongs to.
class Rule {
 public:
  // The error says what is wrong in words that name the part of the spec.
  static Result<Rule> Parse(const RuleSpec& spec);

  RuleKind kind() const { return spec_.kind; }
  const RuleSpec& spec() const { return spec_; }
  // "modify-headers |host:a.test|X-Env|dev": how a flow's modified_by names it.
  std::string Written() const;
  bool Matches(const Flow& flow) const { return filter_->Matches(flow); }

  // map-local: the file or directory to serve from, and what it held when parsed.
  const std::string& local_path() const { return subject_; }
  const LocalFiles& local_files() const { return *local_; }
  // modify-headers: the header and its value (empty: remove it).
  const std::string& header_name() const { return subject_; }
  const std::string& header_value() const { return replacement_; }
  // map-remote and modify-body: the pattern and its replacement.
  const re2::RE2& pattern() const { return *pattern_; }
  const std::string& replacement() const { return replacement_; }

 private:
  Rule() = default;

  RuleSpec spec_;
  std::shared_ptr<const Filter> filter_;  // shared: a Filter is move-only, a Rule is copied
  std::string subject_;
  std::string replacement_;
  std::shared_ptr<const re2::RE2> pattern_;
  std::shared_ptr<const LocalFiles> local_;
};

}  // namespace mitmd::rules
