// The viewer's request gate (web/request_gate.h): framing of heads and Content-Length bodies, and
// the decision asked once per head that announces a body.

#include "web/request_gate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mitmd::web {
namespace {

struct Fed {
  std::string passed;
  std::vector<Refusal> refusals;
  std::vector<std::string> decided;  // targets the gate asked about
};

// Feeds |input| to |gate| in pieces of |piece| bytes, as a connection would.
void Feed(RequestGate& gate, std::string_view input, size_t piece, Fed& fed) {
  std::string pending;
  for (size_t at = 0; at < input.size(); at += piece) {
    pending.append(input.substr(at, piece));
    while (true) {
      RequestGate::Step step = gate.Next(pending, pending.size());
      if (step.kind == RequestGate::Step::Kind::kNeedMore) break;
      if (step.kind == RequestGate::Step::Kind::kRefuse) {
        fed.refusals.push_back(step.refusal);
        pending.clear();
        break;
      }
      fed.passed.append(pending.substr(0, step.bytes));
      pending.erase(0, step.bytes);
    }
    if (gate.state() == RequestGate::State::kRefused) pending.clear();
  }
}

RequestGate MakeGate(Fed& fed, bool allow) {
  return RequestGate([&fed, allow](const RequestHead& head) -> std::optional<Refusal> {
    fed.decided.emplace_back(head.target);
    if (allow) return std::nullopt;
    return Refusal{403, "no"};
  });
}

TEST(RequestGateTest, PassesKeptAliveRequestsWithBodiesWhole) {
  const std::string input =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\n\r\nhello"
      "POST /c HTTP/1.1\nContent-Length:  3 \n\nabc"
      "HEAD /d HTTP/1.1\r\nContent-Length: 7\r\n\r\n"
      "DELETE /e HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  for (size_t piece : {size_t{1}, size_t{7}, input.size()}) {
    Fed fed;
    RequestGate gate = MakeGate(fed, true);
    Feed(gate, input, piece, fed);
    EXPECT_EQ(fed.passed, input) << "piece " << piece;
    EXPECT_TRUE(fed.refusals.empty());
    // Asked only about the heads that announce a body.
    EXPECT_EQ(fed.decided, (std::vector<std::string>{"/b", "/c"})) << "piece " << piece;
    EXPECT_EQ(gate.state(), RequestGate::State::kHead);
  }
}

TEST(RequestGateTest, ARefusedHeadStopsTheConnectionBeforeItsBody) {
  Fed fed;
  RequestGate gate = MakeGate(fed, false);
  const std::string first = "GET /ok HTTP/1.1\r\n\r\n";
  Feed(gate, first + "POST /api/import HTTP/1.1\r\nContent-Length: 262144000\r\n\r\nxxxx" + first,
       16, fed);
  EXPECT_EQ(fed.passed, first);  // nothing of the refused request, nothing after it
  ASSERT_EQ(fed.refusals.size(), 1u);
  EXPECT_EQ(fed.refusals[0].status, 403);
  EXPECT_EQ(gate.state(), RequestGate::State::kRefused);
}

TEST(RequestGateTest, RefusesWhatEvhttpMightFrameDifferently) {
  auto refusal_for = [](const std::string& input) {
    Fed fed;
    RequestGate gate = MakeGate(fed, true);
    Feed(gate, input, input.size(), fed);
    EXPECT_TRUE(fed.passed.empty()) << input;
    return fed.refusals.empty() ? 0 : fed.refusals[0].status;
  };
  EXPECT_EQ(refusal_for("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 411);
  EXPECT_EQ(refusal_for("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"), 400);
  EXPECT_EQ(refusal_for("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx"), 400);
  EXPECT_EQ(refusal_for("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
  EXPECT_EQ(refusal_for("POST / HTTP/1.1\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nx"), 400);
  EXPECT_EQ(refusal_for("PATCH / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"), 405);
  EXPECT_EQ(refusal_for("\r\n\r\n"), 400);
  EXPECT_EQ(refusal_for("POST /\r\n\r\n"), 400);
  EXPECT_EQ(refusal_for("POST / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
}

TEST(RequestGateTest, AHeadLongerThanTheLimitIsRefused) {
  Fed fed;
  RequestGate gate([](const RequestHead&) { return std::nullopt; }, 1024);
  std::string head = "GET / HTTP/1.1\r\nX: " + std::string(2000, 'a');
  Feed(gate, head, 100, fed);
  ASSERT_EQ(fed.refusals.size(), 1u);
  EXPECT_EQ(fed.refusals[0].status, 431);
}

TEST(RequestGateTest, RefusalIsACompleteClosingResponse) {
  std::string r = RefusalResponse({403, "changes need the header X-Mitmd: 1"});
  EXPECT_TRUE(r.starts_with("HTTP/1.1 403 Forbidden\r\n")) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  size_t body = r.find("\r\n\r\n") + 4;
  std::string length = "Content-Length: " + std::to_string(r.size() - body) + "\r\n";
  EXPECT_NE(r.find(length), std::string::npos) << r;
}

}  // namespace
}  // namespace mitmd::web
