#include "http/h1_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "core/strings.h"

namespace mitmd::http {
namespace {

constexpr std::string_view kHttp10 = "HTTP/1.0";
constexpr std::string_view kHttp11 = "HTTP/1.1";
// Bodies larger than this are not plausible; refusing them keeps the arithmetic far from overflow.
constexpr uint64_t kMaxBodyLength = uint64_t{1} << 62;
// Quoted input in error messages is cut to this length.
constexpr size_t kMaxQuoted = 40;

// Input bytes quoted in an error message: printable ASCII only, and short.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxQuoted; ++i) {
    char c = s[i];
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (s.size() > kMaxQuoted) out.append("...");
  out.push_back('\'');
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool HasControlChar(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

// A decimal Content-Length element: 1*DIGIT, at most kMaxBodyLength. Checked before each step:
// 18446744073709551621 used to wrap to 5, so mitmd and the peer framed the message differently.
bool ParseLength(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    auto digit = static_cast<uint64_t>(c - '0');
    if (v > (kMaxBodyLength - digit) / 10) return false;
    v = v * 10 + digit;
  }
  out = v;
  return true;
}

// Splits a head into lines (without their LF and the CR before it). |rest| shrinks as it goes.
std::string_view NextLine(std::string_view& rest) {
  size_t lf = rest.find('\n');
  std::string_view line = rest.substr(0, lf);
  rest.remove_prefix(lf == std::string_view::npos ? rest.size() : lf + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Lines left in a head (the empty one that ends it included): room for its fields.
size_t CountLines(std::string_view s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

// RFC 9112 authority-form: host ":" port, the host possibly a bracketed IPv6 literal.
bool IsAuthorityForm(std::string_view target) {
  size_t colon = target.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = target.substr(0, colon);
  std::string_view port = target.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), IsDigit)) {
    return false;
  }
  uint64_t port_value = 0;
  if (!ParseLength(port, port_value) || port_value > 65535) return false;
  if (host.find_first_of("/?#@") != std::string_view::npos) return false;
  if (host.front() == '[') {
    return host.size() > 2 && host.back() == ']' &&
           host.find_first_of("[]", 1) == host.size() - 1;
  }
  return host.find_first_of("[]:") == std::string_view::npos;
}

// origin-form ("/..."), absolute-form ("scheme:..."), or "*" for OPTIONS.
bool IsValidTarget(std::string_view method, std::string_view target) {
  if (target.front() == '/') return true;
  if (target == "*") return method == "OPTIONS";
  size_t colon = target.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_alpha(target.front())) return false;
  return std::all_of(target.begin(), target.begin() + colon, [&](char c) {
    return is_alpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.';
  });
}

}  // namespace

// How a message's headers frame its body.
struct Parser::Framing {
  bool has_transfer_encoding = false;
  bool chunked = false;  // chunked is the final transfer coding
  bool has_content_length = false;
  uint64_t content_length = 0;
};

Parser::Parser(Kind kind, ParserLimits limits) : kind_(kind), limits_(limits) {}

Result<size_t> Parser::Feed(std::string_view data, ParserEvents& events) {
  if (state_ == State::kFailed) return Fail(error_);
  size_t pos = 0;
  // Body bytes data[raw_from, pos) not yet reported through OnBodyRaw. Reporting them in runs
  // (always before the payload they carry) gives a relay one write per Feed, not one per chunk.
  size_t raw_from = 0;
  auto flush_raw = [&] {
    if (pos > raw_from) events.OnBodyRaw(data.substr(raw_from, pos - raw_from));
    raw_from = pos;
  };
  while (pos < data.size()) {
    Step step = Step::kContinue;
    switch (state_) {
      case State::kHead:
        step = ConsumeHead(data, pos, events);
        raw_from = pos;
        break;
      case State::kBodyLength: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size() - pos));
        std::string_view payload = data.substr(pos, n);
        pos += n;
        remaining_ -= n;
        flush_raw();
        events.OnBodyData(payload);
        if (remaining_ == 0) step = Step::kComplete;
        break;
      }
      case State::kChunkSize:
        step = ConsumeLine(data, pos, limits_.max_chunk_line);
        if (step == Step::kFailed) {
          Failure(StrCat("chunk size line too long (limit ", limits_.max_chunk_line, " bytes)"));
        } else if (step == Step::kComplete) {
          step = FinishChunkSizeLine();
        }
        break;
      case State::kChunkData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size() - pos));
        std::string_view payload = data.substr(pos, n);
        pos += n;
        remaining_ -= n;
        flush_raw();
        events.OnBodyData(payload);
        if (remaining_ == 0) {
          state_ = State::kChunkDataEnd;
          cr_seen_ = false;
        }
        break;
      }
      case State::kChunkDataEnd: {
        char c = data[pos];
        if (c == '\r' && !cr_seen_) {
          cr_seen_ = true;
          ++pos;
        } else if (c == '\n') {
          ++pos;
          state_ = State::kChunkSize;
        } else {
          step = Failure("missing CRLF after chunk data");
        }
        break;
      }
      case State::kTrailers: {
        size_t limit = limits_.max_head_bytes - std::min(trailer_bytes_, limits_.max_head_bytes);
        step = ConsumeLine(data, pos, limit);
        if (step == Step::kFailed) {
          Failure(StrCat("trailer section larger than ", limits_.max_head_bytes, " bytes"));
        } else if (step == Step::kComplete) {
          step = FinishTrailerLine();
          if (step == Step::kComplete) {
            flush_raw();
            if (!trailers_.empty()) events.OnTrailers(trailers_);
          }
        }
        break;
      }
      case State::kBodyUntilClose: {
        std::string_view payload = data.substr(pos);
        pos = data.size();
        flush_raw();
        events.OnBodyData(payload);
        break;
      }
      case State::kUpgraded:
        return pos;
      case State::kFailed:
        return Fail(error_);
    }
    if (step == Step::kFailed) return Fail(error_);
    if (step == Step::kComplete) {
      flush_raw();
      Complete(events);
      return pos;
    }
  }
  flush_raw();
  return pos;
}

Status Parser::FeedEof(ParserEvents& events) {
  const bool request = kind_ == Kind::kRequest;
  switch (state_) {
    case State::kFailed:
      return Fail(error_);
    case State::kUpgraded:
      return {};
    case State::kHead:
      if (!saw_start_line_ && !in_message_) return {};
      Failure(request ? "connection closed before the request head was complete"
                      : "connection closed before the response head was complete");
      return Fail(error_);
    case State::kBodyUntilClose:
      message_keep_alive_ = false;
      Complete(events);
      return {};
    case State::kBodyLength:
      Failure(StrCat("connection closed before the ", request ? "request" : "response",
                     " body was complete (", remaining_, " bytes missing)"));
      return Fail(error_);
    case State::kChunkSize:
    case State::kChunkData:
    case State::kChunkDataEnd:
    case State::kTrailers:
      Failure(StrCat("connection closed before the chunked ", request ? "request" : "response",
                     " body was complete"));
      return Fail(error_);
  }
  return {};
}

void Parser::ExpectResponseTo(std::string_view method) { expected_methods_.emplace_back(method); }

bool Parser::idle() const { return state_ == State::kHead && head_buf_.empty() && !in_message_; }

bool Parser::upgraded() const { return state_ == State::kUpgraded; }

bool Parser::keep_alive() const { return keep_alive_; }

size_t Parser::buffered_head_bytes() const { return head_buf_.size(); }

Parser::Step Parser::Failure(std::string message) {
  state_ = State::kFailed;
  error_ = std::move(message);
  return Step::kFailed;
}

void Parser::Complete(ParserEvents& events) {
  keep_alive_ = message_keep_alive_ && !pending_upgrade_;
  state_ = pending_upgrade_ ? State::kUpgraded : State::kHead;
  pending_upgrade_ = false;
  in_message_ = false;
  events.OnMessageComplete();
}

void Parser::ResetHead() {
  head_buf_.clear();
  line_start_ = 0;
  start_line_at_ = 0;
  saw_start_line_ = false;
}

Parser::Step Parser::ConsumeHead(std::string_view data, size_t& pos, ParserEvents& events) {
  while (pos < data.size()) {
    const char* begin = data.data() + pos;
    size_t avail = data.size() - pos;
    const void* lf = std::memchr(begin, '\n', avail);
    size_t take = lf ? static_cast<size_t>(static_cast<const char*>(lf) - begin) + 1 : avail;
    if (head_buf_.size() + take > limits_.max_head_bytes) {
      return Failure(StrCat(kind_ == Kind::kRequest ? "request" : "response",
                            " head larger than ", limits_.max_head_bytes, " bytes"));
    }
    head_buf_.append(begin, take);
    pos += take;
    if (!lf) return Step::kContinue;
    size_t line_len = head_buf_.size() - line_start_;
    bool empty = line_len == 1 || (line_len == 2 && head_buf_[line_start_] == '\r');
    size_t line_at = line_start_;
    line_start_ = head_buf_.size();
    if (!empty) {
      if (!saw_start_line_ && kind_ == Kind::kRequest) {
        // An HTTP/0.9 request is its request line alone, without a version: its client waits
        // for an answer that a head which never ends would not give. Refused at once.
        std::string_view rest = std::string_view(head_buf_).substr(line_at);
        std::string_view line = NextLine(rest);
        size_t sp = line.find(' ');
        if (sp != std::string_view::npos && line.find(' ', sp + 1) == std::string_view::npos) {
          return Failure(StrCat("HTTP/0.9 request ", Quote(line),
                                " (no HTTP version): mitmd speaks HTTP/1.0 and later"));
        }
      }
      saw_start_line_ = true;
      continue;
    }
    if (!saw_start_line_) {
      // RFC 9112 section 2.2: empty lines before a start line are ignored (kept in the raw head).
      start_line_at_ = head_buf_.size();
      continue;
    }
    return FinishHead(events);
  }
  return Step::kContinue;
}

Parser::Step Parser::FinishHead(ParserEvents& events) {
  return kind_ == Kind::kRequest ? FinishRequestHead(events) : FinishResponseHead(events);
}

bool Parser::ParseField(std::string_view line, HeaderList& out) {
  if (line.front() == ' ' || line.front() == '\t') {
    Failure("obsolete line folding in headers is not allowed");
    return false;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    Failure(StrCat("malformed header line ", Quote(line), " (no colon)"));
    return false;
  }
  std::string_view name = line.substr(0, colon);
  if (name.empty()) {
    Failure("empty header name");
    return false;
  }
  if (name.back() == ' ' || name.back() == '\t') {
    Failure(StrCat("whitespace before colon in header ", Quote(TrimOws(name))));
    return false;
  }
  if (!IsValidHeaderName(name)) {
    Failure(StrCat("invalid character in header name ", Quote(name)));
    return false;
  }
  std::string_view value = TrimOws(line.substr(colon + 1));
  if (!IsValidHeaderValue(value)) {
    Failure(StrCat("invalid character in the value of header ", Quote(name)));
    return false;
  }
  if (out.size() >= limits_.max_headers) {
    Failure(StrCat("too many headers (limit ", limits_.max_headers, ")"));
    return false;
  }
  out.emplace_back(std::string(name), std::string(value));
  return true;
}

bool Parser::AnalyzeFraming(const HeaderList& headers, Framing& framing) {
  const char* what = kind_ == Kind::kRequest ? "request" : "response";
  bool twice = false;
  bool content_length_ok = true;
  bool conflicting = false;
  std::string_view bad_length;
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      framing.has_transfer_encoding = true;
      bool any = false;
      ForEachListElement(value, [&](std::string_view coding) {
        any = true;
        if (framing.chunked && EqualsIgnoreCase(coding, "chunked")) twice = true;
        framing.chunked = EqualsIgnoreCase(coding, "chunked");
        return true;
      });
      if (!any) {
        Failure(StrCat("empty Transfer-Encoding in the ", what));
        return false;
      }
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      bool any = false;
      ForEachListElement(value, [&](std::string_view element) {
        any = true;
        uint64_t length = 0;
        if (!ParseLength(element, length)) {
          content_length_ok = false;
          bad_length = element;
          return false;
        }
        if (framing.has_content_length && length != framing.content_length) conflicting = true;
        framing.has_content_length = true;
        framing.content_length = length;
        return true;
      });
      if (!any) {
        content_length_ok = false;
        bad_length = value;
      }
      if (!content_length_ok) {
        Failure(StrCat("invalid Content-Length ", Quote(bad_length), " in the ", what));
        return false;
      }
    }
  }
  if (conflicting) {
    Failure(StrCat("conflicting Content-Length values in the ", what));
    return false;
  }
  if (twice) {
    Failure(StrCat("chunked transfer coding applied more than once in the ", what));
    return false;
  }
  if (framing.has_transfer_encoding && framing.has_content_length) {
    Failure(StrCat("both Transfer-Encoding and Content-Length in the ", what));
    return false;
  }
  return true;
}

Parser::Step Parser::FinishRequestHead(ParserEvents& events) {
  std::string_view rest = std::string_view(head_buf_).substr(start_line_at_);
  std::string_view line = NextLine(rest);
  RequestHead head;
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos ||
      HasControlChar(line)) {
    return Failure(StrCat("malformed request line ", Quote(line)));
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsValidHeaderName(method)) return Failure(StrCat("invalid method ", Quote(method)));
  if (version != kHttp11 && version != kHttp10) {
    if (version.starts_with("HTTP/")) {
      return Failure(StrCat("unsupported HTTP version ", Quote(version)));
    }
    return Failure(StrCat("malformed request line ", Quote(line)));
  }
  if (target.empty()) return Failure(StrCat("malformed request line ", Quote(line)));
  const bool connect = method == "CONNECT";
  // host:port with a method other than CONNECT is well-formed but meaningless: it is the
  // application's to refuse (a proxy answers 405), not a framing error.
  if (connect ? !IsAuthorityForm(target)
              : !(IsValidTarget(method, target) || IsAuthorityForm(target))) {
    return Failure(connect ? StrCat("CONNECT target must be host:port, not ", Quote(target))
                           : StrCat("invalid request target ", Quote(target)));
  }
  head.method.assign(method);
  head.target.assign(target);
  head.version.assign(version);
  head.headers.reserve(std::min(CountLines(rest), limits_.max_headers));
  while (!rest.empty()) {
    std::string_view field = NextLine(rest);
    if (field.empty()) break;
    if (!ParseField(field, head.headers)) return Step::kFailed;
  }
  Framing framing;
  if (!AnalyzeFraming(head.headers, framing)) return Step::kFailed;
  const bool http11 = version == kHttp11;
  if (framing.has_transfer_encoding) {
    if (!http11) return Failure("Transfer-Encoding is not allowed in an HTTP/1.0 request");
    if (!framing.chunked) {
      return Failure("unsupported Transfer-Encoding in the request (chunked must be the final "
                     "coding)");
    }
  }
  message_keep_alive_ = http11 ? !HeaderHasToken(head.headers, "Connection", "close")
                               : HeaderHasToken(head.headers, "Connection", "keep-alive") &&
                                     !HeaderHasToken(head.headers, "Connection", "close");
  events.OnRequestHead(head, head_buf_);
  ResetHead();
  if (connect) {
    pending_upgrade_ = true;
    return Step::kComplete;
  }
  StartBody(framing, /*close_delimited_allowed=*/false);
  return state_ == State::kHead ? Step::kComplete : Step::kContinue;
}

Parser::Step Parser::FinishResponseHead(ParserEvents& events) {
  std::string_view rest = std::string_view(head_buf_).substr(start_line_at_);
  std::string_view line = NextLine(rest);
  ResponseHead head;
  size_t sp = line.find(' ');
  std::string_view version = line.substr(0, sp);
  if (version != kHttp11 && version != kHttp10) {
    if (version.starts_with("HTTP/") && sp != std::string_view::npos) {
      return Failure(StrCat("unsupported HTTP version ", Quote(version)));
    }
    return Failure(StrCat("malformed status line ", Quote(line)));
  }
  std::string_view after = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  if (after.size() < 3 || !IsDigit(after[0]) || after[0] == '0' || !IsDigit(after[1]) ||
      !IsDigit(after[2]) || (after.size() > 3 && after[3] != ' ')) {
    return Failure(StrCat("invalid status code in status line ", Quote(line)));
  }
  std::string_view reason = after.size() > 3 ? after.substr(4) : std::string_view();
  if (!IsValidHeaderValue(reason)) {
    return Failure(StrCat("invalid character in status line ", Quote(line)));
  }
  head.version.assign(version);
  head.status = (after[0] - '0') * 100 + (after[1] - '0') * 10 + (after[2] - '0');
  head.reason.assign(reason);
  head.headers.reserve(std::min(CountLines(rest), limits_.max_headers));
  while (!rest.empty()) {
    std::string_view field = NextLine(rest);
    if (field.empty()) break;
    if (!ParseField(field, head.headers)) return Step::kFailed;
  }
  const int status = head.status;
  if (status < 200 && status != 101) {
    // Interim: the final response to the same request follows.
    events.OnResponseHead(head, head_buf_);
    ResetHead();
    in_message_ = true;
    return Step::kContinue;
  }
  std::string method;
  if (!expected_methods_.empty()) {
    method = std::move(expected_methods_.front());
    expected_methods_.pop_front();
  }
  if (status == 101 || (method == "CONNECT" && status >= 200 && status < 300)) {
    events.OnResponseHead(head, head_buf_);
    ResetHead();
    pending_upgrade_ = true;
    return Step::kComplete;
  }
  Framing framing;
  if (!AnalyzeFraming(head.headers, framing)) return Step::kFailed;
  const bool http11 = version == kHttp11;
  if (framing.has_transfer_encoding && !http11) {
    return Failure("Transfer-Encoding is not allowed in an HTTP/1.0 response");
  }
  message_keep_alive_ = http11 ? !HeaderHasToken(head.headers, "Connection", "close")
                               : HeaderHasToken(head.headers, "Connection", "keep-alive") &&
                                     !HeaderHasToken(head.headers, "Connection", "close");
  events.OnResponseHead(head, head_buf_);
  ResetHead();
  if (method == "HEAD" || status == 204 || status == 304) return Step::kComplete;
  StartBody(framing, /*close_delimited_allowed=*/true);
  return state_ == State::kHead ? Step::kComplete : Step::kContinue;
}

void Parser::StartBody(const Framing& framing, bool close_delimited_allowed) {
  if (framing.chunked) {
    state_ = State::kChunkSize;
    line_buf_.clear();
    trailers_.clear();
    trailer_bytes_ = 0;
  } else if (framing.has_transfer_encoding && close_delimited_allowed) {
    // A response whose final coding is not chunked ends when the connection closes.
    state_ = State::kBodyUntilClose;
    message_keep_alive_ = false;
  } else if (framing.has_content_length && framing.content_length > 0) {
    state_ = State::kBodyLength;
    remaining_ = framing.content_length;
  } else if (!framing.has_content_length && close_delimited_allowed) {
    state_ = State::kBodyUntilClose;
    message_keep_alive_ = false;
  } else {
    state_ = State::kHead;
  }
}

Parser::Step Parser::ConsumeLine(std::string_view data, size_t& pos, size_t limit) {
  const char* begin = data.data() + pos;
  size_t avail = data.size() - pos;
  const void* lf = std::memchr(begin, '\n', avail);
  size_t take = lf ? static_cast<size_t>(static_cast<const char*>(lf) - begin) + 1 : avail;
  if (line_buf_.size() + take > limit) return Step::kFailed;
  line_buf_.append(begin, take);
  pos += take;
  return lf ? Step::kComplete : Step::kContinue;
}

Parser::Step Parser::FinishChunkSizeLine() {
  std::string_view line = line_buf_;
  line.remove_suffix(1);  // LF
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  uint64_t size = 0;
  size_t i = 0;
  for (; i < line.size(); ++i) {
    int digit = HexValue(line[i]);
    if (digit < 0) break;
    if (size > (kMaxBodyLength >> 4)) {
      return Failure(StrCat("invalid chunk size ", Quote(line), " (too large)"));
    }
    size = (size << 4) | static_cast<uint64_t>(digit);
  }
  if (i == 0) return Failure(StrCat("invalid chunk size ", Quote(line)));
  // Whitespace is allowed only before an extension (BWS ";"): "5 " alone is a known smuggling
  // discrepancy between parsers.
  std::string_view ext = line.substr(i);
  while (!ext.empty() && (ext.front() == ' ' || ext.front() == '\t')) ext.remove_prefix(1);
  if (i < line.size() && (ext.empty() || ext.front() != ';' || !IsValidHeaderValue(ext))) {
    return Failure(StrCat("invalid chunk size ", Quote(line)));
  }
  line_buf_.clear();
  if (size == 0) {
    state_ = State::kTrailers;
  } else {
    state_ = State::kChunkData;
    remaining_ = size;
  }
  return Step::kContinue;
}

Parser::Step Parser::FinishTrailerLine() {
  trailer_bytes_ += line_buf_.size();
  std::string_view line = line_buf_;
  line.remove_suffix(1);  // LF
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const bool last = line.empty();
  if (!last && !ParseField(line, trailers_)) return Step::kFailed;
  line_buf_.clear();
  return last ? Step::kComplete : Step::kContinue;
}

}  // namespace mitmd::http
