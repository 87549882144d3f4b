#include "http/h1_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mitmd::http {
namespace {

using Kind = Parser::Kind;
using namespace std::string_literals;

// One head seen by the parser and what followed it.
struct Message {
  std::optional<RequestHead> request;
  std::optional<ResponseHead> response;
  std::string raw_head;
  std::string body_raw;
  std::string payload;
  std::optional<HeaderList> trailers;
  bool complete = false;
  bool keep_alive = false;
  bool upgraded = false;
};

class Recorder : public ParserEvents {
 public:
  explicit Recorder(const Parser& parser) : parser_(parser) {}

  void OnRequestHead(const RequestHead& head, std::string_view raw) override {
    Message& m = messages.emplace_back();
    m.request = head;
    m.raw_head.assign(raw);
    all_raw.append(raw);
  }
  void OnResponseHead(const ResponseHead& head, std::string_view raw) override {
    Message& m = messages.emplace_back();
    m.response = head;
    m.raw_head.assign(raw);
    all_raw.append(raw);
  }
  void OnBodyRaw(std::string_view raw) override {
    ASSERT_FALSE(messages.empty()) << "body before a head";
    EXPECT_FALSE(raw.empty()) << "empty raw span";
    messages.back().body_raw.append(raw);
    all_raw.append(raw);
  }
  void OnBodyData(std::string_view data) override {
    ASSERT_FALSE(messages.empty()) << "body before a head";
    Message& m = messages.back();
    m.payload.append(data);
    // The raw bytes that carry a payload are reported before it.
    EXPECT_LE(m.payload.size(), m.body_raw.size());
  }
  void OnTrailers(const HeaderList& trailers) override {
    ASSERT_FALSE(messages.empty());
    EXPECT_FALSE(messages.back().trailers.has_value()) << "trailers reported twice";
    messages.back().trailers = trailers;
  }
  void OnMessageComplete() override {
    ASSERT_FALSE(messages.empty());
    Message& m = messages.back();
    EXPECT_FALSE(m.complete) << "completed twice";
    m.complete = true;
    m.keep_alive = parser_.keep_alive();
    m.upgraded = parser_.upgraded();
  }

  std::vector<Message> messages;
  std::string all_raw;

 private:
  const Parser& parser_;
};

struct Options {
  std::vector<std::string> methods;  // for responses: ExpectResponseTo, in order
  bool eof = false;                  // call FeedEof after the input
  ParserLimits limits;
};

struct Outcome {
  std::vector<Message> messages;
  std::string raw;        // every raw head and body span, concatenated
  size_t consumed = 0;    // sum of successful Feed results
  std::optional<std::string> error;
  bool upgraded = false;
  bool idle = false;
  size_t buffered = 0;    // head bytes consumed but not yet reported
};

// Feeds |input| cut at |cuts| (ascending offsets), re-feeding after each early stop.
Outcome Run(Kind kind, std::string_view input, const std::vector<size_t>& cuts,
            const Options& opts) {
  Parser parser(kind, opts.limits);
  for (const auto& m : opts.methods) parser.ExpectResponseTo(m);
  Recorder rec(parser);
  Outcome out;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    std::string_view piece = input.substr(from, end - from);
    from = end;
    while (!piece.empty() && !out.error && !parser.upgraded()) {
      auto fed = parser.Feed(piece, rec);
      if (!fed) {
        out.error = fed.error().message;
        break;
      }
      EXPECT_LE(*fed, piece.size());
      if (*fed == 0) {
        ADD_FAILURE() << "Feed made no progress and the parser is not upgraded";
        out.error = "no progress";
        break;
      }
      piece.remove_prefix(*fed);
      out.consumed += *fed;
    }
    if (out.error || parser.upgraded()) break;
  }
  if (opts.eof && !out.error) {
    auto st = parser.FeedEof(rec);
    if (!st) out.error = st.error().message;
  }
  out.messages = std::move(rec.messages);
  out.raw = std::move(rec.all_raw);
  out.upgraded = parser.upgraded();
  out.idle = parser.idle();
  out.buffered = parser.buffered_head_bytes();
  return out;
}

std::vector<size_t> RandomCuts(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> cuts;
  if (size < 2) return cuts;
  std::uniform_int_distribution<size_t> count_dist(1, std::min<size_t>(size - 1, 12));
  std::uniform_int_distribution<size_t> pos_dist(1, size - 1);
  size_t count = count_dist(rng);
  for (size_t i = 0; i < count; ++i) cuts.push_back(pos_dist(rng));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

void ExpectSameHead(const Message& a, const Message& b) {
  ASSERT_EQ(a.request.has_value(), b.request.has_value());
  if (a.request) {
    EXPECT_EQ(a.request->method, b.request->method);
    EXPECT_EQ(a.request->target, b.request->target);
    EXPECT_EQ(a.request->version, b.request->version);
    EXPECT_EQ(a.request->headers, b.request->headers);
  } else {
    EXPECT_EQ(a.response->status, b.response->status);
    EXPECT_EQ(a.response->reason, b.response->reason);
    EXPECT_EQ(a.response->version, b.response->version);
    EXPECT_EQ(a.response->headers, b.response->headers);
  }
}

// Parses |input| in one piece, byte by byte and in random splits. Every run must agree, and on
// success the raw heads and spans must be exactly the consumed input. Returns the one-piece run.
Outcome ParseAll(Kind kind, std::string_view input, const Options& opts = {}) {
  std::vector<std::pair<std::string, std::vector<size_t>>> splits;
  splits.emplace_back("one piece", std::vector<size_t>{});
  std::vector<size_t> bytes;
  for (size_t i = 1; i < input.size(); ++i) bytes.push_back(i);
  splits.emplace_back("byte by byte", bytes);
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    splits.emplace_back("random seed " + std::to_string(seed), RandomCuts(input.size(), seed));
  }
  Outcome first;
  for (size_t i = 0; i < splits.size(); ++i) {
    SCOPED_TRACE(splits[i].first);
    Outcome o = Run(kind, input, splits[i].second, opts);
    EXPECT_TRUE(input.starts_with(o.raw)) << "raw bytes differ from the input";
    if (!o.error) {
      EXPECT_LE(o.buffered, o.consumed);
      EXPECT_EQ(o.raw, input.substr(0, o.consumed - std::min(o.buffered, o.consumed)));
    }
    if (i == 0) {
      first = std::move(o);
      continue;
    }
    EXPECT_EQ(o.error, first.error);
    EXPECT_EQ(o.upgraded, first.upgraded);
    if (o.error) continue;  // how much of a broken message was reported may vary
    EXPECT_EQ(o.consumed, first.consumed);
    EXPECT_EQ(o.messages.size(), first.messages.size());
    for (size_t m = 0; m < std::min(o.messages.size(), first.messages.size()); ++m) {
      const Message& a = first.messages[m];
      const Message& b = o.messages[m];
      ExpectSameHead(a, b);
      EXPECT_EQ(a.raw_head, b.raw_head);
      EXPECT_EQ(a.body_raw, b.body_raw);
      EXPECT_EQ(a.payload, b.payload);
      EXPECT_EQ(a.trailers, b.trailers);
      EXPECT_EQ(a.complete, b.complete);
      EXPECT_EQ(a.keep_alive, b.keep_alive);
      EXPECT_EQ(a.upgraded, b.upgraded);
    }
  }
  return first;
}

std::string ErrorOf(Kind kind, std::string_view input, const Options& opts = {}) {
  Outcome o = ParseAll(kind, input, opts);
  return o.error.value_or("(no error)");
}

// ---------------------------------------------------------------------------------------------
// Requests

TEST(H1RequestTest, GetWithoutBody) {
  const std::string in = "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  const Message& m = o.messages[0];
  EXPECT_EQ(m.request->method, "GET");
  EXPECT_EQ(m.request->target, "/a?b=c");
  EXPECT_EQ(m.request->version, "HTTP/1.1");
  EXPECT_EQ(m.raw_head, in);
  EXPECT_TRUE(m.complete);
  EXPECT_TRUE(m.keep_alive);
  EXPECT_EQ(m.payload, "");
  EXPECT_EQ(o.consumed, in.size());
  EXPECT_TRUE(o.idle);
}

TEST(H1RequestTest, HeaderOrderCaseAndDuplicatesKept) {
  const std::string in =
      "GET / HTTP/1.1\r\nhost: h\r\nX-B: 1\r\nx-a:2\r\nX-B:   3  \r\nX-Empty:\r\n"
      "X-Tab:\tv\t\r\nX-Obs: caf\xc3\xa9\r\n\r\n";
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  HeaderList want = {{"host", "h"},    {"X-B", "1"},     {"x-a", "2"},
                     {"X-B", "3"},     {"X-Empty", ""},  {"X-Tab", "v"},
                     {"X-Obs", "caf\xc3\xa9"}};
  EXPECT_EQ(o.messages[0].request->headers, want);
  EXPECT_EQ(o.messages[0].raw_head, in);
}

TEST(H1RequestTest, ContentLengthBody) {
  const std::string in =
      "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].payload, "hello world");
  EXPECT_EQ(o.messages[0].body_raw, "hello world");
  EXPECT_TRUE(o.messages[0].complete);
  EXPECT_EQ(o.raw, in);
}

TEST(H1RequestTest, ContentLengthAtTheLimitIsAccepted) {
  // 2^62, the largest length the parser takes; leading zeros do not count against it.
  Outcome o = ParseAll(Kind::kRequest,
                       "POST / HTTP/1.1\r\nContent-Length: 0004611686018427387904\r\n\r\nab");
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].payload, "ab");
  EXPECT_FALSE(o.messages[0].complete);
}

TEST(H1RequestTest, ContentLengthZeroAndRepeatedEqualValues) {
  Outcome zero = ParseAll(Kind::kRequest, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  ASSERT_FALSE(zero.error) << *zero.error;
  ASSERT_EQ(zero.messages.size(), 1u);
  EXPECT_TRUE(zero.messages[0].complete);

  Outcome same = ParseAll(
      Kind::kRequest,
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3, 003\r\n\r\nabc");
  ASSERT_FALSE(same.error) << *same.error;
  EXPECT_EQ(same.messages[0].payload, "abc");
}

TEST(H1RequestTest, ChunkedBodyWithTrailers) {
  const std::string body =
      "5;name=value\r\nhello\r\n6\r\n world\r\nA \t;x\r\n0123456789\r\n0\r\n"
      "X-Checksum: abc\r\nx-other:  d \r\n\r\n";
  const std::string in =
      "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body;
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  const Message& m = o.messages[0];
  EXPECT_EQ(m.payload, "hello world0123456789");
  EXPECT_EQ(m.body_raw, body);
  ASSERT_TRUE(m.trailers.has_value());
  EXPECT_EQ(*m.trailers, (HeaderList{{"X-Checksum", "abc"}, {"x-other", "d"}}));
  EXPECT_TRUE(m.complete);
  EXPECT_EQ(o.raw, in);
}

TEST(H1RequestTest, ChunkedWithoutTrailersAndOtherCodings) {
  const std::string in =
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
      "1f\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n";
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].payload, "0123456789abcdef0123456789abcde");
  EXPECT_FALSE(o.messages[0].trailers.has_value());
  EXPECT_TRUE(o.messages[0].complete);
}

TEST(H1RequestTest, BareLineFeedsAreAcceptedAndKeptRaw) {
  const std::string in =
      "POST /lf HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\nabc\n0\nT: v\n\n"
      "GET /next HTTP/1.1\r\nHost: h\n\r\n";
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].payload, "abc");
  EXPECT_EQ(*o.messages[0].trailers, (HeaderList{{"T", "v"}}));
  EXPECT_EQ(o.messages[0].request->headers,
            (HeaderList{{"Host", "h"}, {"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(o.messages[1].request->target, "/next");
  EXPECT_EQ(o.raw, in);
}

TEST(H1RequestTest, LeadingEmptyLinesAreToleratedAndReported) {
  const std::string in = "\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].request->method, "GET");
  EXPECT_EQ(o.messages[0].raw_head, in);
}

TEST(H1RequestTest, PipelinedRequestsInOneBuffer) {
  const std::string a = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string b = "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
  const std::string c =
      "PUT /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
  const std::string d = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string in = a + b + c + d;

  // Feed stops right after each message.
  Parser parser(Kind::kRequest);
  Recorder rec(parser);
  auto fed = parser.Feed(in, rec);
  ASSERT_TRUE(fed) << fed.error().message;
  EXPECT_EQ(*fed, a.size());
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_TRUE(parser.idle());
  fed = parser.Feed(std::string_view(in).substr(a.size()), rec);
  ASSERT_TRUE(fed);
  EXPECT_EQ(*fed, b.size());

  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 4u);
  EXPECT_EQ(o.messages[0].request->target, "/1");
  EXPECT_EQ(o.messages[1].payload, "body");
  EXPECT_EQ(o.messages[2].payload, "ok");
  EXPECT_EQ(o.messages[3].request->target, "*");
  for (const Message& m : o.messages) EXPECT_TRUE(m.complete);
  EXPECT_EQ(o.raw, in);
}

TEST(H1RequestTest, AbsoluteFormTargetForPlainHttpProxying) {
  Outcome o = ParseAll(Kind::kRequest,
                       "GET http://example.com:8080/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_FALSE(o.error) << *o.error;
  EXPECT_EQ(o.messages[0].request->target, "http://example.com:8080/x?y");
}

TEST(H1RequestTest, ConnectCompletesAfterHeadAndUpgrades) {
  const std::string head = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
  const std::string tls = "\x16\x03\x01\x02\x00\x01"s;
  Parser parser(Kind::kRequest);
  Recorder rec(parser);
  auto fed = parser.Feed(head + tls, rec);
  ASSERT_TRUE(fed) << fed.error().message;
  EXPECT_EQ(*fed, head.size());
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_EQ(rec.messages[0].request->target, "example.com:443");
  EXPECT_TRUE(rec.messages[0].complete);
  EXPECT_TRUE(rec.messages[0].upgraded);
  EXPECT_FALSE(rec.messages[0].keep_alive);
  EXPECT_TRUE(parser.upgraded());
  fed = parser.Feed(tls, rec);
  ASSERT_TRUE(fed);
  EXPECT_EQ(*fed, 0u);
  EXPECT_TRUE(parser.FeedEof(rec));

  Outcome o = ParseAll(Kind::kRequest, head + tls);
  ASSERT_FALSE(o.error) << *o.error;
  EXPECT_TRUE(o.upgraded);
  EXPECT_EQ(o.consumed, head.size());

  Outcome v6 = ParseAll(Kind::kRequest, "CONNECT [::1]:8443 HTTP/1.1\r\n\r\n");
  ASSERT_FALSE(v6.error) << *v6.error;
  EXPECT_EQ(v6.messages[0].request->target, "[::1]:8443");
}

TEST(H1RequestTest, KeepAlive) {
  struct Case {
    std::string head;
    bool keep_alive;
  } cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.head);
    Outcome o = ParseAll(Kind::kRequest, c.head);
    ASSERT_FALSE(o.error) << *o.error;
    ASSERT_EQ(o.messages.size(), 1u);
    EXPECT_EQ(o.messages[0].keep_alive, c.keep_alive);
  }
}

TEST(H1RequestTest, IdleAndBufferedHeadBytes) {
  Parser parser(Kind::kRequest);
  Recorder rec(parser);
  EXPECT_TRUE(parser.idle());
  EXPECT_TRUE(parser.keep_alive());
  ASSERT_TRUE(parser.Feed("GET / HT", rec));
  EXPECT_FALSE(parser.idle());
  EXPECT_EQ(parser.buffered_head_bytes(), 8u);
  ASSERT_TRUE(parser.Feed("TP/1.1\r\nContent-Length: 2\r\n\r\n", rec));
  EXPECT_EQ(parser.buffered_head_bytes(), 0u);
  EXPECT_FALSE(parser.idle());  // the body is due
  ASSERT_TRUE(parser.Feed("hi", rec));
  EXPECT_TRUE(parser.idle());
}

TEST(H1RequestTest, AnUnfinishedHeadIsConsumedButNotYetReported) {
  const std::string partial = "GET /next HTTP/1.1\r\nHo";
  const std::string in = "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok" + partial;
  Outcome o = ParseAll(Kind::kRequest, in);
  ASSERT_FALSE(o.error) << *o.error;
  EXPECT_EQ(o.consumed, in.size());
  EXPECT_EQ(o.buffered, partial.size());
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_FALSE(o.idle);
}

TEST(H1RequestTest, BodySpansPointIntoTheInput) {
  const std::string in =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
  struct SpanCheck : ParserEvents {
    std::string_view input;
    int spans = 0;
    void Check(std::string_view s) {
      EXPECT_GE(s.data(), input.data());
      EXPECT_LE(s.data() + s.size(), input.data() + input.size());
      ++spans;
    }
    void OnBodyRaw(std::string_view s) override { Check(s); }
    void OnBodyData(std::string_view s) override { Check(s); }
  } events;
  events.input = in;
  Parser parser(Kind::kRequest);
  auto fed = parser.Feed(in, events);
  ASSERT_TRUE(fed);
  EXPECT_EQ(*fed, in.size());
  EXPECT_GE(events.spans, 2);
}

TEST(H1RequestTest, EofHandling) {
  // Between messages: fine.
  Outcome clean = ParseAll(Kind::kRequest, "GET / HTTP/1.1\r\n\r\n", {.eof = true});
  EXPECT_FALSE(clean.error);
  EXPECT_FALSE(ParseAll(Kind::kRequest, "", {.eof = true}).error);

  EXPECT_EQ(ErrorOf(Kind::kRequest, "GET / HTTP/1.1\r\nHost:", {.eof = true}),
            "connection closed before the request head was complete");
  EXPECT_EQ(ErrorOf(Kind::kRequest, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
                    {.eof = true}),
            "connection closed before the request body was complete (7 bytes missing)");
  EXPECT_EQ(ErrorOf(Kind::kRequest,
                    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                    {.eof = true}),
            "connection closed before the chunked request body was complete");
  EXPECT_EQ(ErrorOf(Kind::kRequest,
                    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n",
                    {.eof = true}),
            "connection closed before the chunked request body was complete");
}

struct Malformed {
  std::string input;
  std::string reason;  // a substring of the error
};

TEST(H1ParserTest, AuthorityFormWithOtherMethodsIsLeftToTheApplication) {
  Parser parser(Parser::Kind::kRequest);
  struct : ParserEvents {
    RequestHead head;
    void OnRequestHead(const RequestHead& h, std::string_view) override { head = h; }
  } events;
  const std::string input = "POST 127.0.0.1:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  auto used = parser.Feed(input, events);
  ASSERT_TRUE(used) << used.error().message;
  EXPECT_EQ(*used, input.size());
  EXPECT_EQ(events.head.method, "POST");
  EXPECT_EQ(events.head.target, "127.0.0.1:443");
  EXPECT_FALSE(parser.upgraded());
}

TEST(H1RequestTest, MalformedRequestsAreRejectedWithAReason) {
  const Malformed cases[] = {
      // Request smuggling shapes.
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       "both Transfer-Encoding and Content-Length in the request"},
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
       "conflicting Content-Length values"},
      {"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", "conflicting Content-Length values"},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length '-1'"},
      {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", "invalid Content-Length '+5'"},
      {"POST / HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n", "invalid Content-Length '12abc'"},
      {"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", "invalid Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", "invalid Content-Length ''"},
      {"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", "invalid Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
       "invalid Content-Length"},
      // 2^64 + 5 wrapped to 5; 2^62 + 1 is past the limit.
      {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551621\r\n\r\n",
       "invalid Content-Length '18446744073709551621'"},
      {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
       "invalid Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 5, 18446744073709551621\r\n\r\n",
       "invalid Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 4611686018427387905\r\n\r\n",
       "invalid Content-Length"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
       "chunked must be the final coding"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       "chunked must be the final coding"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
       "chunked must be the final coding"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       "chunked transfer coding applied more than once"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n", "empty Transfer-Encoding"},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
       "Transfer-Encoding is not allowed in an HTTP/1.0 request"},
      {"GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n", "obsolete line folding"},
      {"GET / HTTP/1.1\r\n\tX-A: 1\r\n\r\n", "obsolete line folding"},
      {"GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
       "whitespace before colon in header 'Transfer-Encoding'"},
      {"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", "whitespace before colon"},
      {"GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", "invalid character in header name 'Ho(st'"},
      {"GET / HTTP/1.1\r\nX\x01Y: h\r\n\r\n", "invalid character in header name 'X?Y'"},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", "malformed header line 'NoColon' (no colon)"},
      {"GET / HTTP/1.1\r\n: v\r\n\r\n", "empty header name"},
      {"GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", "invalid character in the value of header 'X'"},
      {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "invalid character in the value of header 'X'"},
      {"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s, "invalid character in the value"},
      {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", "invalid character in the value"},
      // Request line.
      {"GET / HTTP/2.0\r\n\r\n", "unsupported HTTP version 'HTTP/2.0'"},
      {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "unsupported HTTP version 'HTTP/2.0'"},
      {"GET / HTTP/1.2\r\n\r\n", "unsupported HTTP version 'HTTP/1.2'"},
      {"GET / http/1.1\r\n\r\n", "malformed request line"},
      {"GET /\r\n\r\n", "HTTP/0.9 request 'GET /'"},
      {"GET  / HTTP/1.1\r\n\r\n", "malformed request line"},
      {"GET / HTTP/1.1 \r\n\r\n", "malformed request line"},
      {"GET /a b HTTP/1.1\r\n\r\n", "malformed request line"},
      {"GET /\tx HTTP/1.1\r\n\r\n", "malformed request line"},
      {"GET /\rx HTTP/1.1\r\n\r\n", "malformed request line"},
      {"G(T / HTTP/1.1\r\n\r\n", "invalid method 'G(T'"},
      {" / HTTP/1.1\r\n\r\n", "invalid method"},
      {"GET foo HTTP/1.1\r\n\r\n", "invalid request target 'foo'"},
      {"GET * HTTP/1.1\r\n\r\n", "invalid request target '*'"},
      {"GET 1http://x/ HTTP/1.1\r\n\r\n", "invalid request target"},
      {"CONNECT example.com HTTP/1.1\r\n\r\n",
       "CONNECT target must be host:port, not 'example.com'"},
      {"CONNECT /x:1 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT example.com:99999 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT example.com: HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT :443 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT a@b:443 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT []:443 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT [::1]]:443 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT [::1/x]:443 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      {"CONNECT ::1:443 HTTP/1.1\r\n\r\n", "CONNECT target must be host:port"},
      // Chunked framing.
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size 'zz'"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "invalid chunk size ''"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", "invalid chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n", "invalid chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n", "invalid chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\n", "invalid chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", "invalid chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r\n", "invalid chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\n", "invalid chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
       "invalid chunk size 'fffffffffffffffffff' (too large)"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n",
       "missing CRLF after chunk data"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\r\n",
       "missing CRLF after chunk data"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad : t\r\n\r\n",
       "whitespace before colon in header 'Bad'"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n folded\r\n\r\n",
       "obsolete line folding"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    std::string error = ErrorOf(Kind::kRequest, c.input);
    EXPECT_NE(error.find(c.reason), std::string::npos) << "error was: " << error;
  }
}

TEST(H1RequestTest, Http09RequestLineIsRefusedWithoutWaitingForTheHeadToEnd) {
  Parser parser(Kind::kRequest);
  Recorder rec(parser);
  auto fed = parser.Feed("GET /index.html\r\n", rec);  // an HTTP/0.9 client now waits
  ASSERT_FALSE(fed);
  EXPECT_NE(fed.error().message.find("HTTP/0.9 request 'GET /index.html'"), std::string::npos)
      << fed.error().message;
  Parser ok(Kind::kRequest);
  EXPECT_TRUE(ok.Feed("GET /index.html HTTP/1.0\r\n", rec));  // the rest of the head may follow
}

TEST(H1RequestTest, MalformedHeadEmitsNoEventsAndTheParserStaysFailed) {
  Parser parser(Kind::kRequest);
  Recorder rec(parser);
  auto fed = parser.Feed(
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", rec);
  ASSERT_FALSE(fed);
  EXPECT_TRUE(rec.messages.empty());
  auto again = parser.Feed("GET / HTTP/1.1\r\n\r\n", rec);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, fed.error().message);
  EXPECT_FALSE(parser.FeedEof(rec));
  EXPECT_TRUE(rec.messages.empty());
}

TEST(H1RequestTest, HeadSizeLimit) {
  const std::string big(70 * 1024, 'a');
  EXPECT_EQ(ErrorOf(Kind::kRequest, "GET / HTTP/1.1\r\nX-Big: " + big + "\r\n\r\n"),
            "request head larger than 65536 bytes");

  // A head of exactly the limit passes; one byte more does not.
  const std::string head = "GET / HTTP/1.1\r\nX: 12345\r\n\r\n";
  Options exact{.limits = {.max_head_bytes = head.size()}};
  EXPECT_FALSE(ParseAll(Kind::kRequest, head, exact).error);
  Options under{.limits = {.max_head_bytes = head.size() - 1}};
  EXPECT_EQ(ErrorOf(Kind::kRequest, head, under),
            "request head larger than " + std::to_string(head.size() - 1) + " bytes");
  // Without a line end the limit still applies (no unbounded buffering).
  Options small{.limits = {.max_head_bytes = 32}};
  EXPECT_EQ(ErrorOf(Kind::kRequest, std::string(100, 'G'), small),
            "request head larger than 32 bytes");
  EXPECT_EQ(ErrorOf(Kind::kRequest, std::string(100, '\n'), small),
            "request head larger than 32 bytes");
}

TEST(H1RequestTest, HeaderCountLimit) {
  Options opts{.limits = {.max_headers = 3}};
  EXPECT_FALSE(ParseAll(Kind::kRequest, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", opts)
                   .error);
  EXPECT_EQ(ErrorOf(Kind::kRequest, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
                    opts),
            "too many headers (limit 3)");
  EXPECT_EQ(ErrorOf(Kind::kRequest,
                    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n"
                    "C: 3\r\nD: 4\r\n\r\n",
                    opts),
            "too many headers (limit 3)");
}

TEST(H1RequestTest, ChunkLineAndTrailerLimits) {
  Options opts{.limits = {.max_head_bytes = 64, .max_chunk_line = 16}};
  const std::string prefix = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_FALSE(ParseAll(Kind::kRequest, prefix + "1;abcdefghijkl\r\nx\r\n0\r\n\r\n", opts).error);
  EXPECT_EQ(ErrorOf(Kind::kRequest, prefix + "1;abcdefghijklm\r\nx\r\n0\r\n\r\n", opts),
            "chunk size line too long (limit 16 bytes)");
  EXPECT_EQ(ErrorOf(Kind::kRequest, prefix + "1" + std::string(40, '0'), opts),
            "chunk size line too long (limit 16 bytes)");
  EXPECT_EQ(ErrorOf(Kind::kRequest,
                    prefix + "0\r\nA: " + std::string(30, 'a') + "\r\nB: " +
                        std::string(30, 'b') + "\r\n\r\n",
                    opts),
            "trailer section larger than 64 bytes");
}

TEST(H1RequestTest, LargeBodiesStreamWithoutBuffering) {
  const std::string payload(1 << 20, 'x');
  const std::string in = "POST / HTTP/1.1\r\nContent-Length: " +
                         std::to_string(payload.size()) + "\r\n\r\n" + payload;
  Parser parser(Kind::kRequest);
  Recorder rec(parser);
  constexpr size_t kPiece = 16 * 1024;
  size_t pos = 0;
  while (pos < in.size()) {
    auto fed = parser.Feed(std::string_view(in).substr(pos, kPiece), rec);
    ASSERT_TRUE(fed) << fed.error().message;
    pos += *fed;
    EXPECT_LE(parser.buffered_head_bytes(), 64u);
  }
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_EQ(rec.messages[0].payload.size(), payload.size());
  EXPECT_TRUE(rec.messages[0].complete);
}

// ---------------------------------------------------------------------------------------------
// Responses

TEST(H1ResponseTest, ContentLength) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
  Outcome o = ParseAll(Kind::kResponse, in, {.methods = {"GET"}});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  const Message& m = o.messages[0];
  EXPECT_EQ(m.response->version, "HTTP/1.1");
  EXPECT_EQ(m.response->status, 200);
  EXPECT_EQ(m.response->reason, "OK");
  EXPECT_EQ(m.response->headers,
            (HeaderList{{"Content-Type", "text/plain"}, {"Content-Length", "5"}}));
  EXPECT_EQ(m.payload, "hello");
  EXPECT_TRUE(m.complete);
  EXPECT_TRUE(m.keep_alive);
  EXPECT_EQ(o.raw, in);
}

TEST(H1ResponseTest, ChunkedWithTrailers) {
  const std::string in =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
      "4\r\nWiki\r\n5\r\npedia\r\ne\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
  Outcome o = ParseAll(Kind::kResponse, in, {.methods = {"GET"}});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].payload, "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(*o.messages[0].trailers, (HeaderList{{"X-T", "1"}}));
  EXPECT_TRUE(o.messages[0].keep_alive);
  EXPECT_EQ(o.raw, in);
}

TEST(H1ResponseTest, CloseDelimitedEndsAtEof) {
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>until close";
  Outcome o = ParseAll(Kind::kResponse, in, {.methods = {"GET"}, .eof = true});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].payload, "<html>until close");
  EXPECT_TRUE(o.messages[0].complete);
  EXPECT_FALSE(o.messages[0].keep_alive);
  EXPECT_EQ(o.raw, in);

  // Without EOF it is still going.
  Outcome open = ParseAll(Kind::kResponse, in, {.methods = {"GET"}});
  ASSERT_FALSE(open.error);
  EXPECT_FALSE(open.messages[0].complete);
  EXPECT_EQ(open.consumed, in.size());

  // A response whose final coding is not chunked is read until close too.
  Outcome gzip = ParseAll(Kind::kResponse,
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b...",
                          {.methods = {"GET"}, .eof = true});
  ASSERT_FALSE(gzip.error) << *gzip.error;
  EXPECT_EQ(gzip.messages[0].payload, "\x1f\x8b...");
  EXPECT_FALSE(gzip.messages[0].keep_alive);

  // An empty close-delimited body.
  Outcome empty = ParseAll(Kind::kResponse, "HTTP/1.0 200 OK\r\n\r\n", {.eof = true});
  ASSERT_FALSE(empty.error) << *empty.error;
  EXPECT_TRUE(empty.messages[0].complete);
  EXPECT_EQ(empty.messages[0].payload, "");
}

TEST(H1ResponseTest, HeadResponseHasNoBodyEvenWithContentLength) {
  const std::string head_resp = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
  const std::string get_resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  Outcome o = ParseAll(Kind::kResponse, head_resp + get_resp, {.methods = {"HEAD", "GET"}});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_TRUE(o.messages[0].complete);
  EXPECT_EQ(o.messages[0].payload, "");
  EXPECT_EQ(o.messages[0].raw_head, head_resp);
  EXPECT_EQ(o.messages[1].payload, "ok");
  EXPECT_EQ(o.raw, head_resp + get_resp);

  // HEAD with chunked: still no body.
  Outcome chunked = ParseAll(
      Kind::kResponse, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", {.methods = {"HEAD"}});
  ASSERT_FALSE(chunked.error);
  EXPECT_TRUE(chunked.messages[0].complete);
  EXPECT_TRUE(chunked.idle);
}

TEST(H1ResponseTest, NoContentAndNotModifiedHaveNoBody) {
  const std::string in =
      "HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  Outcome o = ParseAll(Kind::kResponse, in, {.methods = {"GET", "GET", "GET"}});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 3u);
  EXPECT_EQ(o.messages[0].response->status, 204);
  EXPECT_EQ(o.messages[0].response->reason, "No Content");
  EXPECT_TRUE(o.messages[0].complete);
  EXPECT_EQ(o.messages[1].response->status, 304);
  EXPECT_TRUE(o.messages[1].complete);
  EXPECT_EQ(o.messages[1].payload, "");
  EXPECT_EQ(o.messages[2].payload, "abc");
  EXPECT_EQ(o.raw, in);
}

TEST(H1ResponseTest, InterimContinueThenFinal) {
  const std::string in =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nid";
  Outcome o = ParseAll(Kind::kResponse, in, {.methods = {"POST"}});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 3u);
  EXPECT_EQ(o.messages[0].response->status, 100);
  EXPECT_FALSE(o.messages[0].complete);
  EXPECT_EQ(o.messages[1].response->status, 103);
  EXPECT_EQ(o.messages[1].response->headers, (HeaderList{{"Link", "</s.css>; rel=preload"}}));
  EXPECT_FALSE(o.messages[1].complete);
  EXPECT_EQ(o.messages[2].response->status, 201);
  EXPECT_EQ(o.messages[2].payload, "id");
  EXPECT_TRUE(o.messages[2].complete);
  EXPECT_EQ(o.raw, in);

  // The interim response does not consume the queued method: HEAD still frames the final one.
  Outcome head = ParseAll(Kind::kResponse,
                          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                          {.methods = {"HEAD"}});
  ASSERT_FALSE(head.error) << *head.error;
  ASSERT_EQ(head.messages.size(), 2u);
  EXPECT_TRUE(head.messages[1].complete);

  // Between the interim and the final response the parser is not idle, and EOF is an error.
  Parser parser(Kind::kResponse);
  Recorder rec(parser);
  parser.ExpectResponseTo("POST");
  ASSERT_TRUE(parser.Feed("HTTP/1.1 100 Continue\r\n\r\n", rec));
  EXPECT_FALSE(parser.idle());
  auto eof = parser.FeedEof(rec);
  ASSERT_FALSE(eof);
  EXPECT_EQ(eof.error().message, "connection closed before the response head was complete");
}

TEST(H1ResponseTest, SwitchingProtocolsUpgrades) {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string frames = "\x81\x05hello";
  Outcome o = ParseAll(Kind::kResponse, head + frames, {.methods = {"GET"}});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_TRUE(o.messages[0].complete);
  EXPECT_TRUE(o.messages[0].upgraded);
  EXPECT_TRUE(o.upgraded);
  EXPECT_EQ(o.consumed, head.size());
}

TEST(H1ResponseTest, ConnectSuccessUpgradesButFailureHasABody) {
  const std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
  Outcome o = ParseAll(Kind::kResponse, ok + "\x16\x03\x03", {.methods = {"CONNECT"}});
  ASSERT_FALSE(o.error) << *o.error;
  EXPECT_TRUE(o.upgraded);
  EXPECT_EQ(o.consumed, ok.size());

  const std::string denied =
      "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 6\r\n\r\ndenied";
  Outcome d = ParseAll(Kind::kResponse, denied, {.methods = {"CONNECT"}});
  ASSERT_FALSE(d.error) << *d.error;
  EXPECT_FALSE(d.upgraded);
  EXPECT_EQ(d.messages[0].payload, "denied");
  EXPECT_TRUE(d.messages[0].complete);
}

TEST(H1ResponseTest, StatusLineVariants) {
  struct Case {
    std::string line;
    int status;
    std::string reason;
  } cases[] = {
      {"HTTP/1.1 200 OK", 200, "OK"},
      {"HTTP/1.1 200 ", 200, ""},
      {"HTTP/1.1 200", 200, ""},
      {"HTTP/1.1 404 Not Found Here", 404, "Not Found Here"},
      {"HTTP/1.0 599 \tweird\xff", 599, "\tweird\xff"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    Outcome o = ParseAll(Kind::kResponse, c.line + "\r\nContent-Length: 0\r\n\r\n");
    ASSERT_FALSE(o.error) << *o.error;
    ASSERT_EQ(o.messages.size(), 1u);
    EXPECT_EQ(o.messages[0].response->status, c.status);
    EXPECT_EQ(o.messages[0].response->reason, c.reason);
  }
}

TEST(H1ResponseTest, KeepAlive) {
  struct Case {
    std::string head;
    bool keep_alive;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", true},
      {"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.head);
    Outcome o = ParseAll(Kind::kResponse, c.head, {.methods = {"GET"}});
    ASSERT_FALSE(o.error) << *o.error;
    ASSERT_EQ(o.messages.size(), 1u);
    EXPECT_TRUE(o.messages[0].complete);
    EXPECT_EQ(o.messages[0].keep_alive, c.keep_alive);
  }
}

TEST(H1ResponseTest, WithoutAnExpectedMethodFramesLikeGet) {
  Outcome o = ParseAll(Kind::kResponse, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 2\r\n\r\nto");
  ASSERT_FALSE(o.error) << *o.error;
  EXPECT_EQ(o.messages[0].payload, "to");
}

TEST(H1ResponseTest, EofInTheMiddleIsAnError) {
  EXPECT_EQ(ErrorOf(Kind::kResponse, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                    {.methods = {"GET"}, .eof = true}),
            "connection closed before the response body was complete (3 bytes missing)");
  EXPECT_EQ(ErrorOf(Kind::kResponse, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
                    {.methods = {"GET"}, .eof = true}),
            "connection closed before the chunked response body was complete");
  EXPECT_EQ(ErrorOf(Kind::kResponse, "HTTP/1.1 200 OK\r\nContent-", {.eof = true}),
            "connection closed before the response head was complete");
  EXPECT_FALSE(ParseAll(Kind::kResponse, "", {.eof = true}).error);
}

TEST(H1ResponseTest, MalformedResponsesAreRejectedWithAReason) {
  const Malformed cases[] = {
      {"HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version 'HTTP/2.0'"},
      {"HTTP/2 200\r\n\r\n", "unsupported HTTP version 'HTTP/2'"},
      {"HTTP/1.1 20 OK\r\n\r\n", "invalid status code"},
      {"HTTP/1.1 2000 OK\r\n\r\n", "invalid status code"},
      {"HTTP/1.1 000 Zero\r\n\r\n", "invalid status code"},
      {"HTTP/1.1 abc OK\r\n\r\n", "invalid status code"},
      {"HTTP/1.1\r\n\r\n", "invalid status code"},
      {"HTTP/1.1  200 OK\r\n\r\n", "invalid status code"},
      {"HTTP/1.1 200 O\x01K\r\n\r\n", "invalid character in status line"},
      {"ICY 200 OK\r\n\r\n", "malformed status line 'ICY 200 OK'"},
      {"<html>\r\n\r\n", "malformed status line"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       "both Transfer-Encoding and Content-Length in the response"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
       "conflicting Content-Length values in the response"},
      {"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n", "invalid Content-Length 'five'"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551621\r\n\r\n",
       "invalid Content-Length '18446744073709551621'"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 36893488147419103237\r\n\r\n",
       "invalid Content-Length"},
      {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
       "Transfer-Encoding is not allowed in an HTTP/1.0 response"},
      {"HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n", "obsolete line folding"},
      {"HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", "whitespace before colon"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "invalid chunk size"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    std::string error = ErrorOf(Kind::kResponse, c.input, {.methods = {"GET"}});
    EXPECT_NE(error.find(c.reason), std::string::npos) << "error was: " << error;
  }
  Options small{.limits = {.max_head_bytes = 40}};
  EXPECT_EQ(ErrorOf(Kind::kResponse, "HTTP/1.1 200 OK\r\nServer: " + std::string(40, 's'), small),
            "response head larger than 40 bytes");
}

TEST(H1ResponseTest, ResponsesOnAKeepAliveConnection) {
  // GET, HEAD, interim + POST, chunked GET, close-delimited last one.
  const std::string in =
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
      "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n"
      "HTTP/1.1 200 OK\r\n\r\nfour, until close";
  Outcome o = ParseAll(Kind::kResponse, in,
                       {.methods = {"GET", "HEAD", "POST", "GET", "GET"}, .eof = true});
  ASSERT_FALSE(o.error) << *o.error;
  ASSERT_EQ(o.messages.size(), 6u);
  EXPECT_EQ(o.messages[0].payload, "one");
  EXPECT_EQ(o.messages[1].payload, "");
  EXPECT_FALSE(o.messages[2].complete);
  EXPECT_EQ(o.messages[3].payload, "two");
  EXPECT_EQ(o.messages[4].payload, "three");
  EXPECT_EQ(o.messages[5].payload, "four, until close");
  EXPECT_FALSE(o.messages[5].keep_alive);
  for (size_t i : {0u, 1u, 3u, 4u}) EXPECT_TRUE(o.messages[i].keep_alive) << i;
  EXPECT_EQ(o.raw, in);
}

}  // namespace
}  // namespace mitmd::http
