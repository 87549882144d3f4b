#include "store/filter_sql.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include "core/strings.h"

namespace mitmd::store {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// |text| as a LIKE pattern body: %, _ and the escape character escaped; with |globs|, * and ?
// become % and _.
std::string LikeEscape(std::string_view text, bool globs) {
  std::string out;
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (globs && c == '*') {
      out.push_back('%');
    } else if (globs && c == '?') {
      out.push_back('_');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<int> Int(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// status:404, 4xx, >=400, >400, <=499, <500, 500-599 as [lo, hi]; nullopt for anything else.
std::optional<std::pair<int, int>> StatusRange(std::string_view v) {
  if (v.size() == 3 && std::isdigit(static_cast<unsigned char>(v[0])) && (v.substr(1) == "xx")) {
    int d = v[0] - '0';
    return std::pair{d * 100, d * 100 + 99};
  }
  if (auto n = Int(v)) return std::pair{*n, *n};
  if (v.starts_with(">=")) { if (auto n = Int(v.substr(2))) return std::pair{*n, 1 << 30}; }
  else if (v.starts_with("<=")) { if (auto n = Int(v.substr(2))) return std::pair{0, *n}; }
  else if (v.starts_with(">")) { if (auto n = Int(v.substr(1))) return std::pair{*n + 1, 1 << 30}; }
  else if (v.starts_with("<")) { if (auto n = Int(v.substr(1))) return std::pair{0, *n - 1}; }
  size_t dash = v.find('-');
  if (dash != std::string_view::npos) {
    auto lo = Int(v.substr(0, dash));
    auto hi = Int(v.substr(dash + 1));
    if (lo && hi) return std::pair{*lo, *hi};
  }
  return std::nullopt;
}

}  // namespace

std::string ReversedHost(std::string_view host) {
  std::string out = Lower(host);
  std::reverse(out.begin(), out.end());
  return out;
}

SqlPrefilter CompilePrefilter(std::string_view text) {
  SqlPrefilter out;
  std::string lower = Lower(text);
  for (const char* field : {"header:", "body:", "client:", "ws:", "is:ws", "is:h2", "is:grpc"}) {
    if (lower.find(field) != std::string::npos) out.needs_full_flow = true;
  }
  // Only a plain conjunction of terms: OR, grouping and quoting are left to the filter.
  if (text.find_first_of("()|\"") != std::string_view::npos) return out;
  std::vector<std::string_view> terms;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) terms.push_back(text.substr(start, i - start));
  }
  bool exact = !terms.empty();
  std::vector<std::string> conditions;
  for (std::string_view term : terms) {
    if (term == "OR" || term == "AND") return SqlPrefilter{"", {}, out.needs_full_flow, false};
    size_t colon = term.find(':');
    if (term.starts_with('-') || term.starts_with('~') || colon == std::string_view::npos) {
      exact = false;
      continue;
    }
    std::string field = Lower(term.substr(0, colon));
    std::string_view value = term.substr(colon + 1);
    if (value.empty()) {
      exact = false;
      continue;
    }
    if (field == "status") {
      if (auto r = StatusRange(value); r && r->first == r->second) {
        // Equality pages in seq order: a scan of the narrow list table, or in a file from
        // before schema 5 the status index it keeps (keyset paging over the matches only).
        conditions.push_back(StrCat("status=", r->first));
      } else if (r) {
        conditions.push_back(StrCat("status BETWEEN ", std::max(r->first, 1), " AND ", r->second));
      } else {
        exact = false;
      }
    } else if (field == "method") {
      out.args.push_back(std::string(value));
      conditions.push_back(StrCat("method=?", out.args.size(), " COLLATE NOCASE"));
    } else if (field == "host") {
      // host:H is H itself or a subdomain of it, with glob wildcards: the host ends with H. The
      // part of H after its last wildcard, reversed, is a prefix of rhost: the range [P, P+1)
      // finds it (a superset where H has wildcards or P is followed by a character other than
      // '.'; the LIKE and then the filter itself decide). Files created before schema 7 walk
      // an index on rhost; newer ones test the range while they scan the narrow list table.
      std::string_view literal = value.substr(value.find_last_of("*?") + 1);
      if (!literal.empty()) {
        std::string lo = ReversedHost(literal);
        std::string hi = lo;
        hi.back() = static_cast<char>(static_cast<unsigned char>(hi.back()) + 1);
        if (static_cast<unsigned char>(lo.back()) != 0xFF) {
          out.args.push_back(lo);
          out.args.push_back(hi);
          conditions.push_back(StrCat("rhost>=?", out.args.size() - 1, " AND rhost<?", out.args.size()));
        }
      }
      out.args.push_back(StrCat("%", LikeEscape(value, true)));
      conditions.push_back(StrCat("host LIKE ?", out.args.size(), " ESCAPE '\\'"));
      exact = false;
    } else if (field == "path") {
      out.args.push_back(StrCat(LikeEscape(value, true), "%"));
      conditions.push_back(StrCat("path LIKE ?", out.args.size(), " ESCAPE '\\'"));
      exact = false;
    } else if (field == "body" || field == "reqbody" || field == "resbody") {
      // The search index (temp.search_fts, a view SessionDb makes of the index file it attaches:
      // its own file since schema 8) holds the decoded text bodies (trigrams; case-insensitive).
      // What it does not hold yet (temp.search_pending: the bodies past its cursor and the
      // flows fts_pending lists that it has not taken) are all candidates; the filter, which
      // needs the full flow for body:, decides on every candidate, so a search never misses a
      // flow that is recorded but not indexed, and text the index still holds for a deleted or
      // rewritten flow matches nothing the flow itself does not.
      // No ESCAPE: FTS5 is handed a two-argument LIKE only (with ESCAPE it read every document,
      // 2.5 s for a million flows). A % or _ in the value then matches more, never less: a
      // superset the filter narrows.
      out.args.push_back(StrCat("%", value, "%"));
      conditions.push_back(StrCat("(seq IN (SELECT rowid FROM temp.search_fts WHERE body LIKE ?", out.args.size(),
                                  ") OR seq IN (SELECT seq FROM temp.search_pending))"));
      exact = false;
    } else {
      exact = false;
    }
  }
  for (size_t i = 0; i < conditions.size(); ++i) {
    if (i > 0) out.where += " AND ";
    out.where += conditions[i];
  }
  out.exact = exact && !out.needs_full_flow;
  return out;
}

}  // namespace mitmd::store
