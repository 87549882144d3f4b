#include "flow/filter.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <optional>
#include <vector>

#include "core/strings.h"
#include "decode/grpc.h"
#include "http/body_decoder.h"
#include "http/headers.h"

namespace mitmd {
namespace {

// Body search decodes at most this much of a recorded body.
constexpr size_t kMaxSearchDecoded = 8 << 20;

// The parser and the matcher recurse once per nesting level; a filter arrives in a URL from any
// web page, so the nesting, the number of terms and the text itself are bounded.
constexpr size_t kMaxDepth = 32;
constexpr size_t kMaxTerms = 256;
constexpr size_t kMaxFilterBytes = 16 << 10;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

enum class Field {
  kWord, kHost, kMethod, kStatus, kType, kPath, kUrl, kHeader, kReqHeader, kResHeader, kBody,
  kReqBody, kResBody, kSize, kDur, kConn, kUpstream, kError, kClient, kId, kIs, kWs,
};

struct FieldName {
  std::string_view name;
  Field field;
};

constexpr FieldName kFields[] = {
    {"host", Field::kHost},        {"method", Field::kMethod},   {"status", Field::kStatus},
    {"type", Field::kType},        {"path", Field::kPath},       {"url", Field::kUrl},
    {"header", Field::kHeader},    {"reqheader", Field::kReqHeader},
    {"resheader", Field::kResHeader}, {"body", Field::kBody},    {"reqbody", Field::kReqBody},
    {"resbody", Field::kResBody},  {"size", Field::kSize},       {"dur", Field::kDur},
    {"conn", Field::kConn},        {"upstream", Field::kUpstream}, {"error", Field::kError},
    {"client", Field::kClient},    {"id", Field::kId},           {"is", Field::kIs},
    {"ws", Field::kWs},
};

enum class Is { kError, kTls, kTunnel, kHttp, kInsecure, kTruncated, kReused, kH2, kWs, kGrpc };

constexpr std::pair<std::string_view, Is> kIsNames[] = {
    {"error", Is::kError},   {"tls", Is::kTls},         {"tunnel", Is::kTunnel},
    {"http", Is::kHttp},     {"insecure", Is::kInsecure}, {"truncated", Is::kTruncated},
    {"reused", Is::kReused}, {"h2", Is::kH2},           {"ws", Is::kWs},
    {"grpc", Is::kGrpc},
};

// A closed or open interval on the number line.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;

  bool Contains(double v) const {
    if (lo_open ? v <= lo : v < lo) return false;
    if (hi_open ? v >= hi : v > hi) return false;
    return true;
  }
};

struct Term {
  Field field = Field::kWord;
  bool contains = false;  // `~` given
  std::string value;      // lower-cased
  std::string header_name;
  std::optional<std::string> header_value;
  Range range;
  Is is = Is::kError;
};

}  // namespace

struct Filter::Node {
  enum class Kind { kAnd, kOr, kNot, kTerm };
  Kind kind = Kind::kTerm;
  std::vector<std::unique_ptr<Node>> children;
  Term term;
};

namespace {

using Node = Filter::Node;

// ---- lexing --------------------------------------------------------------------------------

struct Token {
  enum class Kind { kWord, kOpen, kClose, kOr, kAnd, kEnd };
  Kind kind = Kind::kEnd;
  std::string text;  // unquoted
  size_t column = 0; // 1-based
  bool negated = false;
  bool negates_group = false;  // "-(": applies to the group that follows
};

Result<std::vector<Token>> Lex(std::string_view in) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') { ++i; continue; }
    Token t;
    t.column = i + 1;
    if (c == '(') { t.kind = Token::Kind::kOpen; ++i; out.push_back(t); continue; }
    if (c == ')') { t.kind = Token::Kind::kClose; ++i; out.push_back(t); continue; }
    if (c == '|') { t.kind = Token::Kind::kOr; ++i; out.push_back(t); continue; }
    t.kind = Token::Kind::kWord;
    if (c == '-' && i + 1 < in.size() && in[i + 1] != ' ' && in[i + 1] != '\t') {
      t.negated = true;
      ++i;
      // "-(" negates a group: a negated word with no text marks it.
      if (in[i] == '(') {
        t.negates_group = true;
        out.push_back(t);
        continue;
      }
    }
    bool raw_plain = true;  // no quotes: eligible to be the OR/AND keyword
    while (i < in.size()) {
      char d = in[i];
      if (d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == '(' || d == ')') break;
      if (d == '"') {
        raw_plain = false;
        size_t open = i;
        ++i;
        bool closed = false;
        while (i < in.size()) {
          if (in[i] == '\\' && i + 1 < in.size()) {
            t.text.push_back(in[i + 1]);
            i += 2;
            continue;
          }
          if (in[i] == '"') { closed = true; ++i; break; }
          t.text.push_back(in[i++]);
        }
        if (!closed) return Fail(StrCat("column ", open + 1, ": the quote is never closed"));
        continue;
      }
      t.text.push_back(d);
      ++i;
    }
    if (raw_plain && !t.negated && t.text == "OR") t.kind = Token::Kind::kOr;
    else if (raw_plain && !t.negated && t.text == "AND") t.kind = Token::Kind::kAnd;
    out.push_back(std::move(t));
  }
  Token end;
  end.column = in.size() + 1;
  out.push_back(end);
  return out;
}

// ---- term parsing --------------------------------------------------------------------------

std::string KnownFields() {
  std::string s;
  for (const auto& f : kFields) s += StrCat(s.empty() ? "" : ", ", f.name);
  return s;
}

Result<double> ParseNumber(std::string_view text, Field field, std::string_view term) {
  double scale = 1;
  std::string_view digits = text;
  auto ends_with = [&](std::string_view suffix) {
    if (digits.size() > suffix.size() && LowerCopy(digits.substr(digits.size() - suffix.size())) == suffix) {
      digits.remove_suffix(suffix.size());
      return true;
    }
    return false;
  };
  if (field == Field::kSize) {
    if (ends_with("k") || ends_with("kb")) scale = 1 << 10;
    else if (ends_with("m") || ends_with("mb")) scale = 1 << 20;
    else if (ends_with("g") || ends_with("gb")) scale = 1 << 30;
    else if (ends_with("b")) scale = 1;
  } else if (field == Field::kDur) {
    if (ends_with("ms")) scale = 1;
    else if (ends_with("s")) scale = 1000;
    else if (ends_with("m")) scale = 60000;
  }
  // Decimal digits with at most one point (no sign, exponent, inf or nan), read with strtod:
  // libc++ (the fuzzing build) has no floating-point from_chars.
  bool decimal = !digits.empty() && digits.size() <= 32 &&
                 digits.find_first_not_of("0123456789.") == std::string_view::npos &&
                 digits.find_first_of("0123456789") != std::string_view::npos &&
                 std::count(digits.begin(), digits.end(), '.') <= 1;
  if (!decimal) return Fail(StrCat("'", term, "': '", text, "' is not a number"));
  return std::strtod(std::string(digits).c_str(), nullptr) * scale;
}

Result<Range> ParseRange(std::string_view v, Field field, std::string_view term) {
  Range r;
  if (v.empty()) return Fail(StrCat("'", term, "' needs a value"));
  // 4xx: a whole status class.
  if (field == Field::kStatus && v.size() == 3 && v[0] >= '1' && v[0] <= '5' &&
      Lower(v[1]) == 'x' && Lower(v[2]) == 'x') {
    r.lo = (v[0] - '0') * 100;
    r.hi = r.lo + 99;
    return r;
  }
  std::string_view op;
  for (std::string_view candidate : {">=", "<=", ">", "<", "="}) {
    if (v.starts_with(candidate)) { op = candidate; break; }
  }
  if (!op.empty()) {
    auto n = ParseNumber(v.substr(op.size()), field, term);
    if (!n) return std::unexpected(n.error());
    if (op == ">=") r.lo = *n;
    else if (op == ">") { r.lo = *n; r.lo_open = true; }
    else if (op == "<=") r.hi = *n;
    else if (op == "<") { r.hi = *n; r.hi_open = true; }
    else r.lo = r.hi = *n;
    return r;
  }
  if (size_t dash = v.find('-'); dash != std::string_view::npos && dash > 0) {
    auto lo = ParseNumber(v.substr(0, dash), field, term);
    if (!lo) return std::unexpected(lo.error());
    auto hi = ParseNumber(v.substr(dash + 1), field, term);
    if (!hi) return std::unexpected(hi.error());
    r.lo = *lo;
    r.hi = *hi;
    return r;
  }
  auto n = ParseNumber(v, field, term);
  if (!n) return std::unexpected(n.error());
  r.lo = r.hi = *n;
  return r;
}

Result<Term> ParseTerm(std::string_view word) {
  Term t;
  std::string_view rest = word;
  if (rest.starts_with('~')) {
    t.contains = true;
    rest.remove_prefix(1);
  }
  size_t colon = rest.find(':');
  // A pasted URL ("https://...") is a search word, not a field.
  bool looks_like_url = colon != std::string_view::npos && rest.substr(colon + 1).starts_with("//");
  if (colon == std::string_view::npos || looks_like_url) {
    if (t.contains) return Fail(StrCat("'", word, "': '~' goes before a field, as in ~host:example"));
    t.field = Field::kWord;
    t.value = LowerCopy(rest);
    return t;
  }
  std::string name = LowerCopy(rest.substr(0, colon));
  std::string_view value = rest.substr(colon + 1);
  const FieldName* found = nullptr;
  for (const auto& f : kFields) {
    if (f.name == name) found = &f;
  }
  if (found == nullptr) {
    return Fail(StrCat("'", word, "': unknown field '", name, "' (fields: ", KnownFields(), ")"));
  }
  t.field = found->field;
  switch (t.field) {
    case Field::kStatus:
    case Field::kSize:
    case Field::kDur:
    case Field::kConn:
    case Field::kUpstream: {
      if (t.contains) return Fail(StrCat("'", word, "': '~' does not apply to numbers"));
      auto r = ParseRange(value, t.field, word);
      if (!r) return std::unexpected(r.error());
      t.range = *r;
      return t;
    }
    case Field::kIs: {
      if (t.contains) return Fail(StrCat("'", word, "': '~' does not apply to is:"));
      std::string v = LowerCopy(value);
      for (const auto& [n, k] : kIsNames) {
        if (n == v) {
          t.is = k;
          return t;
        }
      }
      std::string names;
      for (const auto& [n, k] : kIsNames) names += StrCat(names.empty() ? "" : ", ", n);
      return Fail(StrCat("'", word, "': is: takes one of ", names));
    }
    case Field::kHeader:
    case Field::kReqHeader:
    case Field::kResHeader: {
      size_t eq = value.find('=');
      t.header_name = LowerCopy(value.substr(0, eq));
      if (eq != std::string_view::npos) t.header_value = LowerCopy(value.substr(eq + 1));
      if (t.header_name.empty()) return Fail(StrCat("'", word, "' needs a header name"));
      return t;
    }
    default:
      break;
  }
  if (value.empty()) return Fail(StrCat("'", word, "' needs a value after the colon"));
  t.value = LowerCopy(value);
  return t;
}

// ---- expression parsing --------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<std::unique_ptr<Node>> ParseAll() {
    auto e = ParseOr();
    if (!e) return e;
    if (Peek().kind != Token::Kind::kEnd) {
      return Fail(StrCat("column ", Peek().column, ": unexpected ')'"));
    }
    return e;
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }

  Result<std::unique_ptr<Node>> ParseOr() {
    auto first = ParseAnd();
    if (!first) return first;
    if (Peek().kind != Token::Kind::kOr) return first;
    auto node = std::make_unique<Node>();
    node->kind = Node::Kind::kOr;
    node->children.push_back(std::move(*first));
    while (Peek().kind == Token::Kind::kOr) {
      size_t col = Peek().column;
      ++pos_;
      if (!StartsUnary()) return Fail(StrCat("column ", col, ": OR needs a term on both sides"));
      auto next = ParseAnd();
      if (!next) return next;
      node->children.push_back(std::move(*next));
    }
    return node;
  }

  bool StartsUnary() const {
    return Peek().kind == Token::Kind::kWord || Peek().kind == Token::Kind::kOpen;
  }

  Result<std::unique_ptr<Node>> ParseAnd() {
    if (!StartsUnary()) {
      if (Peek().kind == Token::Kind::kEnd) return Fail("the filter ends where a term was expected");
      return Fail(StrCat("column ", Peek().column, ": expected a term"));
    }
    auto node = std::make_unique<Node>();
    node->kind = Node::Kind::kAnd;
    while (true) {
      if (Peek().kind == Token::Kind::kAnd) {
        size_t col = Peek().column;
        ++pos_;
        if (!StartsUnary()) return Fail(StrCat("column ", col, ": AND needs a term on both sides"));
      }
      if (!StartsUnary()) break;
      auto u = ParseUnary();
      if (!u) return u;
      node->children.push_back(std::move(*u));
    }
    if (node->children.size() == 1) return std::move(node->children[0]);
    return node;
  }

  // Entering a group or a negation: one level deeper, within kMaxDepth.
  std::optional<Error> Descend(size_t column) {
    if (++depth_ <= kMaxDepth) return std::nullopt;
    return Error{StrCat("column ", column, ": groups and negations nest deeper than ", kMaxDepth,
                        " levels")};
  }

  Result<std::unique_ptr<Node>> ParseUnary() {
    const Token& t = Peek();
    if (t.kind == Token::Kind::kOpen) {
      size_t col = t.column;
      if (auto e = Descend(col)) return std::unexpected(*e);
      ++pos_;
      auto inner = ParseOr();
      if (!inner) return inner;
      if (Peek().kind != Token::Kind::kClose) {
        return Fail(StrCat("column ", col, ": the parenthesis is never closed"));
      }
      ++pos_;
      --depth_;
      return inner;
    }
    // kWord
    Token word = tokens_[pos_++];
    if (word.negates_group) {
      // "-(" : negate the following group.
      if (auto e = Descend(word.column)) return std::unexpected(*e);
      auto inner = ParseUnary();
      if (!inner) return inner;
      --depth_;
      return Negate(std::move(*inner));
    }
    if (++terms_ > kMaxTerms) {
      return Fail(StrCat("column ", word.column, ": more than ", kMaxTerms, " terms"));
    }
    auto term = ParseTerm(word.text);
    if (!term) return Fail(StrCat("column ", word.column, ": ", term.error().message));
    auto node = std::make_unique<Node>();
    node->kind = Node::Kind::kTerm;
    node->term = std::move(*term);
    if (word.negated) return Negate(std::move(node));
    return node;
  }

  static std::unique_ptr<Node> Negate(std::unique_ptr<Node> inner) {
    auto n = std::make_unique<Node>();
    n->kind = Node::Kind::kNot;
    n->children.push_back(std::move(inner));
    return n;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  size_t depth_ = 0;
  size_t terms_ = 0;
};

// ---- matching ------------------------------------------------------------------------------

std::string_view MediaType(const HeaderList& headers) {
  const std::string* ct = FindHeader(headers, "content-type");
  if (ct == nullptr) return {};
  std::string_view v = *ct;
  v = v.substr(0, v.find(';'));
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return v;
}

std::string FlowMediaType(const Flow& f) {
  if (f.response) return LowerCopy(MediaType(f.response->headers));
  if (f.request) return LowerCopy(MediaType(f.request->headers));
  return {};
}

bool TypeMatches(const std::string& type, const std::string& want) {
  if (type.empty()) return false;
  auto has = [&](std::string_view s) { return type.find(s) != std::string::npos; };
  if (want == "image" || want == "video" || want == "audio" || want == "text" || want == "font") {
    if (type.starts_with(want + "/")) return true;
    if (want == "font") return has("font") || has("woff");
    return false;
  }
  if (want == "json") return has("json");
  if (want == "xml") return has("xml");
  if (want == "html") return type == "text/html" || type == "application/xhtml+xml";
  if (want == "js" || want == "javascript" || want == "script") {
    return has("javascript") || has("ecmascript");
  }
  if (want == "css") return type == "text/css";
  if (want == "media") return type.starts_with("video/") || type.starts_with("audio/");
  if (want == "form") {
    return type == "application/x-www-form-urlencoded" || type == "multipart/form-data";
  }
  if (want.find('/') != std::string::npos) return type == want;
  size_t slash = type.find('/');
  return slash != std::string::npos && type.substr(slash + 1) == want;
}

std::string FlowHost(const Flow& f) {
  if (f.request && !f.request->host.empty()) return f.request->host;
  return f.server_host;
}

bool HostMatches(std::string_view host, const std::string& want) {
  std::string h = LowerCopy(host);
  if (want.find_first_of("*?") != std::string::npos) return GlobMatch(want, h);
  if (h == want) return true;
  return h.size() > want.size() && h.ends_with(want) && h[h.size() - want.size() - 1] == '.';
}

bool HeaderMatches(const HeaderList& headers, const Term& t) {
  for (const auto& [name, value] : headers) {
    if (!EqualsIgnoreCase(name, t.header_name)) continue;
    if (!t.header_value || ContainsIgnoreCase(value, *t.header_value)) return true;
  }
  return false;
}

bool BodyContains(const BodyRecord& body, const HeaderList& headers, const std::string& needle) {
  if (ContainsIgnoreCase(body.content, needle)) return true;
  if (FindHeader(headers, "content-encoding") == nullptr) return false;
  auto decoded = DecodeBodyForHeaders(body.content, headers, kMaxSearchDecoded);
  return decoded && ContainsIgnoreCase(decoded->data, needle);
}

std::optional<double> DurationMs(const Flow& f) {
  const Timings& t = f.timings;
  double start = t.request_start > 0 ? t.request_start : t.accepted;
  double end = t.response_end;
  if (end <= 0) {
    end = std::max({t.response_start, t.request_end, t.upstream_tls_end, t.upstream_connect_end,
                    t.client_tls_end});
  }
  if (start <= 0 || end <= 0 || end < start) return std::nullopt;
  return (end - start) * 1000.0;
}

bool IsMatches(const Flow& f, Is is) {
  switch (is) {
    case Is::kError: return f.error.has_value();
    case Is::kTls: return f.client_tls.has_value();
    case Is::kTunnel: return f.kind == Flow::Kind::kTunnel;
    case Is::kHttp: return f.kind == Flow::Kind::kHttp;
    case Is::kInsecure: return f.insecure;
    case Is::kTruncated:
      return (f.request && f.request->body.truncated) || (f.response && f.response->body.truncated);
    case Is::kReused: return f.upstream_reused;
    case Is::kH2:
      return f.stream_id != 0 || (f.request && f.request->version == "HTTP/2") ||
             (f.response && f.response->version == "HTTP/2") ||
             (f.client_tls && f.client_tls->alpn == "h2") || (f.server_tls && f.server_tls->alpn == "h2");
    case Is::kWs: return f.websocket.has_value();
    case Is::kGrpc: {
      const std::string* type = f.request ? FindHeader(f.request->headers, "content-type") : nullptr;
      return type && decode::IsGrpcContentType(*type);
    }
  }
  return false;
}

bool TermMatches(const Term& t, const Flow& f) {
  const HttpRequest* req = f.request ? &*f.request : nullptr;
  const HttpResponse* resp = f.response ? &*f.response : nullptr;
  switch (t.field) {
    case Field::kWord:
      if (req) return ContainsIgnoreCase(req->Url(), t.value);
      return ContainsIgnoreCase(StrCat(f.server_host, ":", f.server_port), t.value);
    case Field::kHost: {
      std::string host = FlowHost(f);
      return t.contains ? ContainsIgnoreCase(host, t.value) : HostMatches(host, t.value);
    }
    case Field::kMethod:
      if (!req) return false;
      return t.contains ? ContainsIgnoreCase(req->method, t.value)
                        : EqualsIgnoreCase(req->method, t.value);
    case Field::kStatus:
      return resp && t.range.Contains(resp->status);
    case Field::kType: {
      std::string type = FlowMediaType(f);
      return t.contains ? ContainsIgnoreCase(type, t.value) : TypeMatches(type, t.value);
    }
    case Field::kPath: {
      if (!req) return false;
      if (t.contains) return ContainsIgnoreCase(req->path, t.value);
      std::string path = LowerCopy(req->path);
      if (t.value.find_first_of("*?") != std::string::npos) return GlobMatch(t.value, path);
      return path.starts_with(t.value);
    }
    case Field::kUrl:
      return req && ContainsIgnoreCase(req->Url(), t.value);
    case Field::kHeader:
      return (req && HeaderMatches(req->headers, t)) || (resp && HeaderMatches(resp->headers, t));
    case Field::kReqHeader:
      return req && HeaderMatches(req->headers, t);
    case Field::kResHeader:
      return resp && HeaderMatches(resp->headers, t);
    case Field::kBody:
      return (req && BodyContains(req->body, req->headers, t.value)) ||
             (resp && BodyContains(resp->body, resp->headers, t.value));
    case Field::kReqBody:
      return req && BodyContains(req->body, req->headers, t.value);
    case Field::kResBody:
      return resp && BodyContains(resp->body, resp->headers, t.value);
    case Field::kSize: {
      double size = resp ? static_cast<double>(resp->body.size)
                         : static_cast<double>(f.bytes_up + f.bytes_down);
      return (resp || f.kind == Flow::Kind::kTunnel) && t.range.Contains(size);
    }
    case Field::kDur: {
      auto d = DurationMs(f);
      return d && t.range.Contains(*d);
    }
    case Field::kConn:
      return t.range.Contains(static_cast<double>(f.client_conn_id));
    case Field::kUpstream:
      return f.upstream_conn_id != 0 && t.range.Contains(static_cast<double>(f.upstream_conn_id));
    case Field::kError:
      return f.error &&
             (ContainsIgnoreCase(f.error->phase, t.value) || ContainsIgnoreCase(f.error->message, t.value));
    case Field::kClient:
      return ContainsIgnoreCase(f.client_addr, t.value);
    case Field::kId:
      return LowerCopy(f.id).starts_with(t.value);
    case Field::kIs:
      return IsMatches(f, t.is);
    case Field::kWs:
      if (!f.websocket) return false;
      for (const WebSocketMessage& m : f.websocket->messages) {
        if (ContainsIgnoreCase(m.content, t.value)) return true;
      }
      return false;
  }
  return false;
}

bool NodeMatches(const Node& n, const Flow& f) {
  switch (n.kind) {
    case Node::Kind::kAnd:
      for (const auto& c : n.children) {
        if (!NodeMatches(*c, f)) return false;
      }
      return true;
    case Node::Kind::kOr:
      for (const auto& c : n.children) {
        if (NodeMatches(*c, f)) return true;
      }
      return false;
    case Node::Kind::kNot:
      return !NodeMatches(*n.children[0], f);
    case Node::Kind::kTerm:
      return TermMatches(n.term, f);
  }
  return false;
}

}  // namespace

Filter::Filter() = default;
Filter::~Filter() = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

Result<Filter> Filter::Parse(std::string_view text) {
  if (text.size() > kMaxFilterBytes) {
    return Fail(StrCat("the filter is ", text.size(), " bytes long; the limit is ", kMaxFilterBytes));
  }
  Filter f;
  f.text_ = std::string(text);
  auto tokens = Lex(text);
  if (!tokens) return std::unexpected(tokens.error());
  if (tokens->size() == 1) return f;  // only the end token: empty filter
  Parser parser(std::move(*tokens));
  auto root = parser.ParseAll();
  if (!root) return std::unexpected(root.error());
  f.root_ = std::move(*root);
  return f;
}

bool Filter::Matches(const Flow& flow) const { return root_ == nullptr || NodeMatches(*root_, flow); }

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matching with one backtrack point: linear in practice, never exponential.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || Lower(pattern[p]) == Lower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return Lower(a) == Lower(b); });
  return it != haystack.end();
}

}  // namespace mitmd
