// Fuzzes the HTTP/1.1 parser in both directions. The first input byte chooses how the rest is
// cut into Feed calls and which request methods the response parser expects; the rest is fed to
// a request parser and to a response parser. Besides the sanitizers' checks it aborts when an
// invariant of the parser's contract breaks: the raw bytes it reports must be exactly the input
// it consumed (less a head still buffered), Feed must make progress unless upgraded, and payload never exceeds raw bytes.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/h1_parser.h"

namespace {

using mitmd::http::Parser;
using mitmd::http::ParserEvents;
using mitmd::http::RequestHead;
using mitmd::http::ResponseHead;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "h1_parser_fuzz: invariant broken: %s\n", what);
  std::abort();
}

class Checker : public ParserEvents {
 public:
  void OnRequestHead(const RequestHead& head, std::string_view raw) override {
    if (head.method.empty() || head.target.empty()) Die("empty method or target");
    Head(raw);
  }
  void OnResponseHead(const ResponseHead& head, std::string_view raw) override {
    if (head.status < 100 || head.status > 999) Die("status out of range");
    Head(raw);
  }
  void OnBodyRaw(std::string_view raw) override {
    if (!in_message_) Die("body outside a message");
    if (raw.empty()) Die("empty raw span");
    raw_.append(raw);
    body_raw_ += raw.size();
  }
  void OnBodyData(std::string_view data) override {
    if (!in_message_) Die("payload outside a message");
    payload_ += data.size();
    if (payload_ > body_raw_) Die("payload reported before its raw bytes");
  }
  void OnTrailers(const mitmd::HeaderList& trailers) override {
    if (trailers.empty()) Die("empty trailers reported");
  }
  void OnMessageComplete() override {
    if (!in_message_) Die("completion without a head");
    in_message_ = false;
  }

  const std::string& raw() const { return raw_; }

 private:
  void Head(std::string_view raw) {
    if (raw.empty()) Die("empty raw head");
    raw_.append(raw);
    in_message_ = true;
    body_raw_ = 0;
    payload_ = 0;
  }

  std::string raw_;
  bool in_message_ = false;
  size_t body_raw_ = 0;
  size_t payload_ = 0;
};

void Drive(Parser::Kind kind, uint8_t control, std::string_view input) {
  mitmd::http::ParserLimits limits;
  if (control & 0x80) limits = {.max_head_bytes = 256, .max_headers = 8, .max_chunk_line = 16};
  Parser parser(kind, limits);
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "CONNECT", "POST"};
  for (int i = 0; i < 8; ++i) parser.ExpectResponseTo(kMethods[(control + i * (i + 1)) % 4]);

  Checker checker;
  // Piece sizes from a small generator seeded by the control byte: 1..64 bytes, or all at once.
  uint32_t state = control * 2654435761u + 1;
  size_t pos = 0;
  size_t consumed = 0;
  bool failed = false;
  while (pos < input.size() && !failed && !parser.upgraded()) {
    state = state * 1103515245u + 12345u;
    size_t piece = (control & 0x40) ? input.size() : 1 + (state >> 16) % 64;
    std::string_view chunk = input.substr(pos, piece);
    pos += chunk.size();
    while (!chunk.empty()) {
      auto fed = parser.Feed(chunk, checker);
      if (!fed) {
        failed = true;
        break;
      }
      if (*fed > chunk.size()) Die("consumed more than fed");
      if (*fed == 0) {
        if (!parser.upgraded()) Die("no progress");
        break;
      }
      chunk.remove_prefix(*fed);
      consumed += *fed;
    }
  }
  if (!input.starts_with(checker.raw())) Die("raw bytes differ from the input");
  if (!failed) {
    // Consumed bytes of an unfinished head are buffered, not yet reported.
    if (parser.buffered_head_bytes() > consumed ||
        checker.raw() != input.substr(0, consumed - parser.buffered_head_bytes())) {
      Die("raw bytes are not the consumed input");
    }
    if (parser.upgraded()) {
      auto fed = parser.Feed(input.substr(consumed), checker);
      if (!fed || *fed != 0) Die("upgraded parser consumed bytes");
    }
    (void)parser.FeedEof(checker);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Drive(Parser::Kind::kRequest, data[0], input);
  Drive(Parser::Kind::kResponse, data[0], input);
  return 0;
}
