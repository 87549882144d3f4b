#include "rules/apply.h"

#include <re2/re2.h>

#include "core/strings.h"

namespace mitmd::rules {
namespace {

struct TypeByExtension {
  std::string_view ext;
  std::string_view type;
};
constexpr TypeByExtension kTypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".xml", "application/xml"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".wasm", "application/wasm"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".pdf", "application/pdf"},
    {".map", "application/json"},
};

std::string ContentTypeOf(std::string_view file) {
  size_t slash = file.rfind('/');
  std::string_view name = slash == std::string_view::npos ? file : file.substr(slash + 1);
  size_t dot = name.rfind('.');
  if (dot != std::string_view::npos) {
    std::string ext(name.substr(dot));
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const TypeByExtension& t : kTypes) {
      if (t.ext == ext) return std::string(t.type);
    }
  }
  return "application/octet-stream";
}

LocalAnswer Refuse(int status, std::string message) {
  LocalAnswer a;
  a.status = status;
  a.content_type = "text/plain; charset=utf-8";
  a.body = std::move(message) + "\n";
  return a;
}

bool HasDotDotSegment(std::string_view path) {
  while (!path.empty()) {
    size_t slash = path.find('/');
    if (path.substr(0, slash) == "..") return true;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return false;
}

void Add(std::vector<Modification>& mods, const Rule& rule, std::string what, std::string before,
         std::string after) {
  mods.push_back(
      Modification{rule.Written(), std::move(what), std::move(before), std::move(after)});
}

}  // namespace

std::string_view ToString(Side side) { return side == Side::kRequest ? "request" : "response"; }

const Rule* FindMapLocal(const RuleSet& set, const Flow& flow) {
  for (const Rule& r : set.active()) {
    if (r.kind() == RuleKind::kMapLocal && r.Matches(flow)) return &r;
  }
  return nullptr;
}

LocalAnswer ServeLocal(const Rule& rule, std::string_view path) {
  const LocalFiles& local = rule.local_files();
  std::string file = rule.local_path();
  auto found = local.files.end();
  if (!local.directory) {
    found = local.files.find("");
  } else {
    std::string_view rel = path.substr(0, path.find_first_of("?#"));
    while (rel.starts_with('/')) rel.remove_prefix(1);
    if (HasDotDotSegment(rel)) {
      return Refuse(403, StrCat("map-local: the path '", path,
                                "' has a .. segment; only files inside '", file, "' are served"));
    }
    std::string key(rel);
    if (key.empty() || key.ends_with('/')) key += "index.html";
    found = local.files.find(key);
    if (found == local.files.end()) found = local.files.find(StrCat(key, "/index.html"));
    if (!file.ends_with('/')) file += '/';
    if (found == local.files.end()) {
      return Refuse(404, StrCat("map-local: no file '", file, key, "' for ", path,
                                " (files are read when the rule is set)"));
    }
    file += found->first;
  }
  LocalAnswer a;
  a.body = found->second;
  a.content_type = ContentTypeOf(file);
  a.file = std::move(file);
  return a;
}

std::optional<std::string> MapRemote(const RuleSet& set, const Flow& flow, const std::string& url,
                                     std::vector<Modification>& mods) {
  std::string current = url;
  for (const Rule& r : set.active()) {
    if (r.kind() != RuleKind::kMapRemote || !r.Matches(flow)) continue;
    std::string next = current;
    if (RE2::GlobalReplace(&next, r.pattern(), r.replacement()) > 0 && next != current) {
      Add(mods, r, "request url", current, next);
      current = std::move(next);
    }
  }
  if (current == url) return std::nullopt;
  return current;
}

bool ModifyHeaders(const RuleSet& set, const Flow& flow, Side side, HeaderList& headers,
                   std::vector<Modification>& mods) {
  bool changed = false;
  for (const Rule& r : set.active()) {
    if (r.kind() != RuleKind::kModifyHeaders || !r.Matches(flow)) continue;
    const std::string& name = r.header_name();
    const std::string* old = FindHeader(headers, name);
    std::string before = old ? *old : std::string();
    bool had = old != nullptr;
    // As mitmproxy: every header of that name goes, then the new value is added at the end.
    RemoveHeader(headers, name);
    if (!r.header_value().empty()) headers.emplace_back(name, r.header_value());
    if (had || !r.header_value().empty()) {
      if (before != r.header_value() || !had) {
        Add(mods, r, StrCat(ToString(side), " header ", name), before, r.header_value());
      }
      changed = true;
    }
  }
  return changed;
}

bool WantsBody(const RuleSet& set, const Flow& flow) {
  for (const Rule& r : set.active()) {
    if (r.kind() == RuleKind::kModifyBody && r.Matches(flow)) return true;
  }
  return false;
}

bool ModifyBody(const RuleSet& set, const Flow& flow, Side side, std::string& body,
                std::vector<Modification>& mods) {
  bool changed = false;
  for (const Rule& r : set.active()) {
    if (r.kind() != RuleKind::kModifyBody || !r.Matches(flow)) continue;
    std::string before = body;
    if (RE2::GlobalReplace(&body, r.pattern(), r.replacement()) > 0 && body != before) {
      Add(mods, r, StrCat(ToString(side), " body"), BodyForModification(before),
          BodyForModification(body));
      changed = true;
    }
  }
  return changed;
}

std::string BodyForModification(std::string_view body) {
  if (!IsValidUtf8(body)) return StrCat("(", body.size(), " bytes of binary data)");
  if (body.size() <= kModificationCap) return std::string(body);
  std::string_view cut = body.substr(0, kModificationCap);
  // Do not end inside a UTF-8 sequence.
  while (!cut.empty() && (static_cast<unsigned char>(cut.back()) & 0xC0) == 0x80) {
    cut.remove_suffix(1);
  }
  if (!cut.empty() && static_cast<unsigned char>(cut.back()) >= 0xC0) cut.remove_suffix(1);
  return StrCat(cut, "… (", body.size(), " bytes in all)");
}

}  // namespace mitmd::rules
