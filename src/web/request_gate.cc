#include "web/request_gate.h"

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "http/status.h"

namespace mitmd::web {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// evhttp ends a line at "\n" with or without a "\r" before it; so do we.
std::string_view NextLine(std::string_view& rest) {
  size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Where the head ends (just past its empty line), or npos.
size_t HeadEnd(std::string_view data) {
  size_t pos = 0;
  while (true) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) return std::string_view::npos;
    std::string_view line = data.substr(pos, nl - pos);
    if (pos > 0 && (line.empty() || line == "\r")) return nl + 1;
    pos = nl + 1;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ':') return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> RequestHead::Find(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return std::nullopt;
}

std::string RefusalResponse(const Refusal& refusal) {
  std::string body = nlohmann::json{{"error", refusal.message}}.dump(
                         -1, ' ', false, nlohmann::json::error_handler_t::replace) +
                     "\n";
  return StrCat("HTTP/1.1 ", refusal.status, " ", http::ReasonPhrase(refusal.status),
                "\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ",
                body.size(),
                "\r\nConnection: close\r\nCache-Control: no-store\r\n"
                "X-Content-Type-Options: nosniff\r\n\r\n",
                body);
}

std::string_view RequestGate::ToString(State s) {
  switch (s) {
    case State::kHead: return "head";
    case State::kBody: return "body";
    case State::kRefused: return "refused";
  }
  return "?";
}

RequestGate::Step RequestGate::Refuse(int status, std::string message) {
  state_ = State::kRefused;
  return Step{Step::Kind::kRefuse, 0, Refusal{status, std::move(message)}};
}

RequestGate::Step RequestGate::Next(std::string_view front, size_t available) {
  switch (state_) {
    case State::kRefused:
      return Step{};
    case State::kBody: {
      if (available == 0) return Step{};
      size_t n = static_cast<size_t>(std::min<uint64_t>(body_left_, available));
      body_left_ -= n;
      if (body_left_ == 0) state_ = State::kHead;
      return Step{Step::Kind::kPass, n, {}};
    }
    case State::kHead:
      break;
  }
  size_t end = HeadEnd(front.substr(0, max_head_ + 2));
  if (end == std::string_view::npos) {
    if (available > max_head_) {
      return Refuse(431, StrCat("a request head is at most ", max_head_ / 1024, " KiB"));
    }
    return Step{};
  }
  Step step = OnHead(front.substr(0, end));
  if (step.kind == Step::Kind::kPass) step.bytes = end;
  return step;
}

RequestGate::Step RequestGate::OnHead(std::string_view text) {
  RequestHead head;
  std::string_view rest = text;
  std::string_view line = NextLine(rest);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/")) {
    return Refuse(400, "the request line is not METHOD TARGET HTTP/VERSION");
  }
  head.method = line.substr(0, sp1);
  head.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  bool framed = false;  // methods evhttp reads a body for; it ignores a HEAD's Content-Length
  if (head.method == "GET" || head.method == "POST" || head.method == "PUT" ||
      head.method == "DELETE") {
    framed = true;
  } else if (head.method != "HEAD") {
    return Refuse(405, "the viewer answers GET, POST, PUT and DELETE");
  }
  std::optional<std::string_view> length;
  while (!rest.empty()) {
    line = NextLine(rest);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      return Refuse(400, "folded header lines are not accepted");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Refuse(400, "a header line is not NAME: VALUE");
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      return Refuse(411, "send the body with a Content-Length");
    }
    if (EqualsIgnoreCase(name, "Content-Length")) {
      if (length) return Refuse(400, "more than one Content-Length");
      length = value;
    }
    head.headers.emplace_back(name, value);
  }
  if (length) {
    if (length->empty() || length->size() > 18 ||
        length->find_first_not_of("0123456789") != std::string_view::npos) {
      return Refuse(400, "Content-Length is not a number of bytes");
    }
    for (char c : *length) head.content_length = head.content_length * 10 + (c - '0');
  }
  if (!framed || head.content_length == 0) return Step{Step::Kind::kPass, 0, {}};
  if (auto refusal = decide_(head)) return Refuse(refusal->status, std::move(refusal->message));
  state_ = State::kBody;
  body_left_ = head.content_length;
  return Step{Step::Kind::kPass, 0, {}};
}

}  // namespace mitmd::web
