#include "rules/rule.h"

#include <re2/re2.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/strings.h"
#include "http/headers.h"

namespace mitmd::rules {
namespace {

// What an @FILE value may hold: a header value or a replacement body.
constexpr size_t kMaxValueFile = 16 << 20;

struct KindName {
  RuleKind kind;
  std::string_view name;
  std::string_view syntax;
};
constexpr KindName kKinds[] = {
    {RuleKind::kMapLocal, "map-local", "|FILTER|LOCAL-PATH"},
    {RuleKind::kMapRemote, "map-remote", "[|FILTER]|URL-REGEX|REPLACEMENT"},
    {RuleKind::kModifyHeaders, "modify-headers", "[|FILTER]|NAME|VALUE"},
    {RuleKind::kModifyBody, "modify-body", "[|FILTER]|REGEX|REPLACEMENT"},
};

std::string_view SyntaxOf(RuleKind kind) {
  for (const KindName& k : kKinds) {
    if (k.kind == kind) return k.syntax;
  }
  return "";
}

// The parts after the separator, splitting at most |max_parts| - 1 times: the last part keeps
// any further separators (a replacement may contain one), as mitmproxy splits.
std::vector<std::string> Split(std::string_view rest, char sep, size_t max_parts) {
  std::vector<std::string> parts;
  while (parts.size() + 1 < max_parts) {
    size_t at = rest.find(sep);
    if (at == std::string_view::npos) break;
    parts.emplace_back(rest.substr(0, at));
    rest.remove_prefix(at + 1);
  }
  parts.emplace_back(rest);
  return parts;
}

Result<std::string> ReadValueFile(std::string_view path, std::string_view what) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return Fail(StrCat(what, ": cannot read '", path, "'"));
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxValueFile) {
      return Fail(StrCat(what, ": '", path, "' is larger than 16 MiB"));
    }
  }
  return data;
}

// Reads the files a map-local rule serves (see LocalFiles), within the caps.
Result<std::shared_ptr<const LocalFiles>> ReadLocalFiles(const std::string& path) {
  namespace fs = std::filesystem;
  auto files = std::make_shared<LocalFiles>();
  size_t total = 0;
  auto read_one = [&](const std::string& file, std::string key) -> Status {
    std::error_code ec;
    uintmax_t size = fs::file_size(file, ec);
    if (ec) return Fail(StrCat("cannot read '", file, "': ", ec.message()));
    if (size > kMapLocalMaxFile) {
      return Fail(StrCat("'", file, "' is ", size, " bytes, more than the ", kMapLocalMaxFile >> 20,
                         " MiB map-local serves"));
    }
    total += size;
    if (total > kMapLocalMaxTotal) {
      return Fail(StrCat("the files under '", path, "' add up to more than the ",
                         kMapLocalMaxTotal >> 20, " MiB map-local reads; name a smaller directory"));
    }
    if (files->files.size() >= kMapLocalMaxFiles) {
      return Fail(StrCat("'", path, "' holds more than ", kMapLocalMaxFiles,
                         " files; name a smaller directory"));
    }
    auto data = ReadValueFile(file, "map-local");
    if (!data) return std::unexpected(data.error());
    files->files.emplace(std::move(key), std::move(*data));
    return {};
  };
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return Fail(StrCat("the local path '", path, "' does not exist"));
  if (fs::is_regular_file(st)) {
    if (auto r = read_one(path, ""); !r) return std::unexpected(r.error());
    return files;
  }
  if (!fs::is_directory(st)) return Fail(StrCat("'", path, "' is not a file or a directory"));
  files->directory = true;
  fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string key = it->path().lexically_relative(path).generic_string();
    if (auto r = read_one(it->path().string(), std::move(key)); !r) {
      return std::unexpected(r.error());
    }
  }
  if (ec) return Fail(StrCat("cannot list '", path, "': ", ec.message()));
  return files;
}

// "@FILE" reads the value from FILE; anything else is the value itself.
Result<std::string> ValueOrFile(const std::string& value, std::string_view what) {
  if (!value.starts_with('@')) return value;
  return ReadValueFile(std::string_view(value).substr(1), what);
}

}  // namespace

std::string_view ToString(RuleKind kind) {
  for (const KindName& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

std::optional<RuleKind> RuleKindFromString(std::string_view text) {
  for (const KindName& k : kKinds) {
    if (k.name == text) return k.kind;
  }
  return std::nullopt;
}

std::string Rule::Written() const { return StrCat(ToString(spec_.kind), " ", spec_.spec); }

Result<Rule> Rule::Parse(const RuleSpec& spec) {
  std::string_view name = ToString(spec.kind);
  auto bad = [&](std::string_view why) {
    return Fail(StrCat(name, " '", spec.spec, "': ", why, " (the form is ", SyntaxOf(spec.kind),
                       ", where | is any separator character)"));
  };
  if (spec.spec.size() < 2) return bad("too short");
  char sep = spec.spec[0];
  if (std::isalnum(static_cast<unsigned char>(sep))) {
    return bad(StrCat("the first character is the separator, and '", std::string(1, sep),
                      "' is a letter or digit"));
  }
  std::string_view rest = std::string_view(spec.spec).substr(1);
  bool map_local = spec.kind == RuleKind::kMapLocal;
  std::vector<std::string> parts = Split(rest, sep, map_local ? 2 : 3);
  if (parts.size() < 2) return bad("too few parts");
  if (!map_local && parts.size() == 2) parts.insert(parts.begin(), "");  // no filter: all flows

  Rule rule;
  rule.spec_ = spec;
  auto filter = Filter::Parse(parts[0]);
  if (!filter)
    return bad(StrCat("the filter '", parts[0], "' is invalid: ", filter.error().message));
  rule.filter_ = std::make_shared<const Filter>(std::move(*filter));
  rule.subject_ = parts[1];

  switch (spec.kind) {
    case RuleKind::kMapLocal: {
      if (rule.subject_.empty()) return bad("the local path is empty");
      auto files = ReadLocalFiles(rule.subject_);
      if (!files) return bad(files.error().message);
      rule.local_ = std::move(*files);
      return rule;
    }
    case RuleKind::kModifyHeaders: {
      if (!IsValidHeaderName(rule.subject_)) {
        return bad(StrCat("'", rule.subject_, "' is not a valid header name"));
      }
      auto value = ValueOrFile(parts[2], name);
      if (!value) return std::unexpected(value.error());
      // A value read from a file usually ends with a line break the user did not mean.
      while (!value->empty() && (value->back() == '\n' || value->back() == '\r')) value->pop_back();
      if (!IsValidHeaderValue(*value)) {
        return bad("the value holds a line break or another control character");
      }
      rule.replacement_ = std::move(*value);
      return rule;
    }
    case RuleKind::kMapRemote:
    case RuleKind::kModifyBody: {
      if (rule.subject_.empty()) return bad("the regular expression is empty");
      RE2::Options options;
      options.set_log_errors(false);
      options.set_dot_nl(true);  // as mitmproxy's re.DOTALL: bodies span lines
      auto re = std::make_shared<const RE2>(rule.subject_, options);
      if (!re->ok()) {
        return bad(
            StrCat("the regular expression '", rule.subject_, "' is invalid: ", re->error()));
      }
      std::string replacement = parts[2];
      if (spec.kind == RuleKind::kModifyBody) {
        if (replacement.starts_with('@')) {
          // A file's content is taken literally: its backslashes are not group references.
          auto value = ReadValueFile(std::string_view(replacement).substr(1), name);
          if (!value) return std::unexpected(value.error());
          replacement.clear();
          for (char c : *value) {
            if (c == '\\') replacement.push_back('\\');
            replacement.push_back(c);
          }
        }
      }
      std::string rewrite_error;
      if (!re->CheckRewriteString(replacement, &rewrite_error)) {
        return bad(StrCat("the replacement is invalid: ", rewrite_error));
      }
      rule.pattern_ = std::move(re);
      rule.replacement_ = std::move(replacement);
      return rule;
    }
  }
  return bad("unknown kind");
}

}  // namespace mitmd::rules
