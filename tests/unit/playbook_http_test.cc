// Playbooks of the proxy core over plain HTTP: proxy requests, keep-alive, framing, failures of
// each phase, timeouts. No sockets: see tests/support/playbook.h.

#include <gtest/gtest.h>

#include "core/strings.h"
#include "proxy/error_page.h"
#include "support/playbook.h"

namespace mitmd::testing {
namespace {

using proxy::Phase;

constexpr char kGet[] = "GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n";
constexpr char kForwarded[] = "GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n";
constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

std::string Page(int status, const std::string& message, const std::string& detail = {},
                 HeaderList extra = {}) {
  return proxy::Encode(proxy::ErrorPage(status, message, detail, std::move(extra)));
}

TEST(PlaybookHttp, AbsoluteFormRequestGoesOutInOriginForm) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  EXPECT_EQ(f.response->body.content, "hi");
  EXPECT_EQ(f.server_addr, "192.0.2.1:80");
  EXPECT_FALSE(f.upstream_reused);
}

TEST(PlaybookHttp, KeepAliveReusesTheUpstreamConnection) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  pb >> FromClient(kGet) << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(pb.recorded()[1]->upstream_reused);
  EXPECT_EQ(pb.recorded()[0]->upstream_conn_id, pb.recorded()[1]->upstream_conn_id);
}

TEST(PlaybookHttp, ARequestToAnotherServerLeavesTheFirstConnectionPooled) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  pb >> FromClient("GET http://b.test:8080/ HTTP/1.1\r\nHost: b.test:8080\r\n\r\n")
     << Dial("b.test:8080");
  pb >> Dialed() << ToServer("GET / HTTP/1.1\r\nHost: b.test:8080\r\n\r\n");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.pool().idle_count(), 1u);
}

TEST(PlaybookHttp, PipelinedRequestsAreAnsweredInOrder) {
  Playbook pb;
  pb >> FromClient(StrCat(kGet, kGet)) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x")
     << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, RequestBodyIsHeldWhileConnectingThenForwarded) {
  const std::string post =
      "POST http://a.test/p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello";
  Playbook pb;
  pb >> FromClient(post) << Dial("a.test:80");
  pb >> Dialed()
     << ToServer("POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 POST http://a.test/p");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->request->body.content, "hello");
}

TEST(PlaybookHttp, ChunkedRequestWithTrailersIsForwardedByteForByte) {
  const std::string body = "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n";
  Playbook pb;
  pb >> FromClient("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n")
     << Dial("a.test:80");
  pb >> Dialed() << ToServer("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n");
  pb >> FromClient(body) << ToServer(body);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 POST http://a.test/");
  ASSERT_TRUE(pb.Run());
  ASSERT_EQ(pb.recorded()[0]->request->trailers.size(), 1u);
  EXPECT_EQ(pb.recorded()[0]->request->body.content, "hello");
}

TEST(PlaybookHttp, HeadResponseHasNoBodyAndKeepsTheConnection) {
  const std::string head_response = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
  Playbook pb;
  pb >> FromClient("HEAD http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n") << Dial("a.test:80");
  pb >> Dialed() << ToServer("HEAD / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> FromServer(head_response) << ToClient(head_response) << Recorded("200 HEAD http://a.test/");
  pb >> FromClient(kGet) << ToServer(kForwarded);
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, NoContentAndNotModifiedHaveNoBody) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 204 No Content\r\n\r\n") << ToClient("HTTP/1.1 204 No Content\r\n\r\n")
     << Recorded("204 GET http://a.test/x");
  pb >> FromClient(kGet) << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n")
     << ToClient("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n")
     << Recorded("304 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, EveryInterimResponseIsRelayedAndRecordedInOrder) {
  const std::string post = "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\n"
                           "Content-Length: 2\r\n\r\n";
  Playbook pb;
  pb >> FromClient(post) << Dial("a.test:80");
  pb >> Dialed() << ToServer("POST / HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\n"
                             "Content-Length: 2\r\n\r\n");
  pb >> FromServer("HTTP/1.1 100 Continue\r\n\r\n") << ToClient("HTTP/1.1 100 Continue\r\n\r\n");
  pb >> FromClient("ok") << ToServer("ok");
  pb >> FromServer("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
     << ToClient("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 POST http://a.test/");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->response->informational, (std::vector<int>{100, 103}));
}

TEST(PlaybookHttp, CloseDelimitedResponseEndsWithTheServer) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 200 OK\r\n\r\nsome") << ToClient("HTTP/1.1 200 OK\r\n\r\nsome");
  pb >> FromServer(" more") << ToClient(" more");
  pb >> ServerEof() << Recorded("200 GET http://a.test/x") << CloseClient()
     << CloseServer("not kept alive");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->response->body.content, "some more");
}

TEST(PlaybookHttp, ServerClosingMidBodyFailsTheFlowAndCutsTheClient) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
     << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  pb >> ServerEof() << Recorded("200 GET http://a.test/x error=response") << CloseClient()
     << CloseServer("connection closed before the response body was complete (7 bytes missing)");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, ServerClosingBeforeRespondingIs502) {
  std::string message = "the upstream server a.test:80 closed the connection without responding";
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> ServerEof() << ToClient(Page(502, message)) << Recorded("502 GET http://a.test/x error=response")
     << CloseClient() << CloseServer(message);
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, MalformedResponseIs502) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  ASSERT_TRUE(pb.Run());
  pb >> FromServer("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
  EXPECT_FALSE(pb.Run());  // the exact page is not this test's point: the outcome is
  ASSERT_EQ(pb.recorded().size(), 1u);
  EXPECT_EQ(pb.recorded()[0]->response->status, 502);
  EXPECT_EQ(pb.recorded()[0]->error->phase, "response");
  EXPECT_TRUE(pb.client().closed());
}

// Each dial failure phase reaches the client as a 502 naming it, and the flow records it.
class PlaybookDialFailure : public ::testing::TestWithParam<Phase> {};

TEST_P(PlaybookDialFailure, Is502WithThePhase) {
  std::string message = "it failed this way";
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> DialFailed(GetParam(), message) << ToClient(Page(502, message))
     << Recorded(StrCat("502 GET http://a.test/x error=", proxy::ToString(GetParam())))
     << CloseClient();
  ASSERT_TRUE(pb.Run());
}

INSTANTIATE_TEST_SUITE_P(Phases, PlaybookDialFailure,
                         ::testing::Values(Phase::kDns, Phase::kConnect, Phase::kPolicy,
                                           Phase::kUpstreamTls));

TEST(PlaybookHttp, ClientGoneWhileWaitingForTheResponse) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> ClientEof() << Recorded("- GET http://a.test/x error=response") << CloseClient()
     << CloseServer("the client closed the connection before the response was complete");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, ClientGoneWhileConnectingCancelsTheDial) {
  Playbook pb;
  pb >> FromClient("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nContent-Length: 9\r\n\r\nabc")
     << Dial("a.test:80");
  pb >> ClientEof() << Recorded("- POST http://a.test/ error=request") << CloseClient();
  pb >> Dialed();  // nothing: the request was cancelled
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, IdleUpstreamClosedByTheServerIsDroppedAndRedialed) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  pb >> ServerEof() << CloseServer("the server closed the idle connection");
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, BytesFromAnIdleServerDropIt) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  pb >> FromServer("HTTP/1.1 200 OK\r\n\r\n")
     << CloseServer("the server sent bytes with no request in flight");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, ProxyTokenIsCheckedAndNeverForwardedOrRecorded) {
  // "mitmd:secret" in base64.
  const std::string auth = "Proxy-Authorization: Basic bWl0bWQ6c2VjcmV0\r\n";
  Playbook pb([](Config& c) { c.proxy_token = "secret"; });
  pb >> FromClient(StrCat("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n", auth,
                          "Proxy-Connection: keep-alive\r\n\r\n"))
     << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  for (const auto& [name, value] : pb.recorded()[0]->request->headers) {
    EXPECT_FALSE(EqualsIgnoreCase(name, "Proxy-Authorization")) << value;
    EXPECT_FALSE(EqualsIgnoreCase(name, "Proxy-Connection")) << value;
  }
}

TEST(PlaybookHttp, EmptyLinesBeforeTheRequestDoNotSmuggleTheToken) {
  Playbook pb([](Config& c) { c.proxy_token = "secret"; });
  pb >> FromClient("\r\nGET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n"
                   "Proxy-Authorization: Basic bWl0bWQ6c2VjcmV0\r\n\r\n")
     << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, MissingProxyTokenIs407) {
  std::string message = "this mitmd listens beyond loopback and requires its proxy token";
  Playbook pb([](Config& c) { c.proxy_token = "secret"; });
  pb >> FromClient(kGet)
     << ToClient(Page(407, message, "Send it as the proxy password, e.g. curl --proxy-user mitmd:TOKEN",
                      {{"Proxy-Authenticate", "Basic realm=\"mitmd\""}}))
     << Recorded("407 GET http://a.test/x error=proxy_request") << CloseClient();
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, MalformedProxyRequestIs400) {
  Playbook pb;
  pb >> FromClient("GET http://a.test/ HTTP/1.1\r\nBad Header\r\n\r\n");
  EXPECT_FALSE(pb.Run());
  ASSERT_EQ(pb.recorded().size(), 1u);
  EXPECT_EQ(pb.recorded()[0]->response->status, 400);
  EXPECT_EQ(pb.recorded()[0]->error->phase, "proxy_request");
  EXPECT_TRUE(pb.client().closed());
}

TEST(PlaybookHttp, OriginFormToTheProxyIs400AndAuthorityFormGetIs405) {
  Playbook a;
  a >> FromClient("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(a.Run());
  ASSERT_EQ(a.recorded().size(), 1u);
  EXPECT_EQ(a.recorded()[0]->response->status, 400);
  Playbook b;
  b >> FromClient("GET a.test:80 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(b.Run());
  ASSERT_EQ(b.recorded().size(), 1u);
  EXPECT_EQ(b.recorded()[0]->response->status, 405);
}

TEST(PlaybookHttp, UnknownMitmdCertPathIs404) {
  Playbook pb;
  pb >> FromClient("GET http://mitmd.cert/nothing HTTP/1.1\r\nHost: mitmd.cert\r\n\r\n");
  EXPECT_FALSE(pb.Run());
  ASSERT_EQ(pb.recorded().size(), 1u);
  EXPECT_EQ(pb.recorded()[0]->response->status, 404);
  EXPECT_EQ(pb.upstreams().TakeDials().size(), 0u);
}

TEST(PlaybookHttp, WaitingForTheResponseIsNotIdle) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> TimerFired("idle");  // a long poll: nothing happens
  pb >> TimerFired("idle");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, ABodyWithoutProgressFailsAtTheIdleTimeout) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
     << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc");
  pb >> TimerFired("idle") << Recorded("200 GET http://a.test/x error=response") << CloseClient()
     << CloseServer("no traffic for 120 s (idle timeout)");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, UnsolicitedSwitchingProtocolsIs502) {
  std::string message = "the server switched protocols (101) although the request asked for no upgrade";
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
     << ToClient(Page(502, message)) << Recorded("502 GET http://a.test/x error=response")
     << CloseClient() << CloseServer(message);
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, RequestedUpgradeBecomesATunnel) {
  const std::string upgrade = "GET http://a.test/ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n\r\n";
  const std::string switched = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n\r\n";
  Playbook pb;
  pb >> FromClient(upgrade) << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n\r\n");
  // A WebSocket's flow stays live (unrecorded) while the socket is open; frames pass untouched.
  pb >> FromServer(switched) << ToClient(switched);
  const std::string hi(std::string_view("\x81\x82\x00\x00\x00\x00hi", 8));
  pb >> FromClient(hi) << ToServer(hi);
  pb >> FromServer("\x81\x02yo") << ToClient("\x81\x02yo");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(pb.recorded().empty());
}

TEST(PlaybookHttp, RequestsToMitmdItselfAre403) {
  for (std::string target : {"http://127.0.0.1:8080/", "http://localhost:8081/api/flows",
                             "http://[::1]:8080/"}) {
    Playbook pb;
    pb >> FromClient(StrCat("GET ", target, " HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_FALSE(pb.Run());
    ASSERT_EQ(pb.recorded().size(), 1u) << target;
    EXPECT_EQ(pb.recorded()[0]->response->status, 403) << target;
    EXPECT_EQ(pb.upstreams().TakeDials().size(), 0u) << target;
  }
  Playbook connect;
  connect >> FromClient("CONNECT 127.0.0.2:8081 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(connect.Run());
  ASSERT_EQ(connect.recorded().size(), 1u);
  EXPECT_EQ(connect.recorded()[0]->response->status, 403);
  // Another port on loopback is an ordinary upstream.
  Playbook other;
  other >> FromClient("GET http://127.0.0.1:9999/ HTTP/1.1\r\nHost: x\r\n\r\n")
        << Dial("127.0.0.1:9999");
  EXPECT_TRUE(other.Run());
}

TEST(PlaybookHttp, ShutdownRecordsTheExchangeInFlight) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> Shutdown() << Recorded("- GET http://a.test/x error=shutdown") << CloseClient()
     << CloseServer("mitmd stopped while this exchange was in flight");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookHttp, SlowClientPausesTheServer) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  ASSERT_TRUE(pb.Run());
  pb.client().set_pending(1 << 20);
  pb >> FromServer("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
     << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
  ASSERT_TRUE(pb.Run());
  EXPECT_FALSE(pb.upstreams().server()->reading());
  pb >> ClientDrained();
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(pb.upstreams().server()->reading());
}

}  // namespace
}  // namespace mitmd::testing

namespace mitmd::testing {
namespace {

TEST(PlaybookLive, PublishedAtTheRequestHeadAndTheResponseHeadThenRecordedOnce) {
  Playbook pb;
  pb.TrackPublished();
  pb >> FromClient(kGet) << Dial("a.test:80") << Published("- GET http://a.test/x");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
     << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n") << Published("200 GET http://a.test/x");
  pb >> FromServer("ab") << ToClient("ab");  // body progress: throttled
  pb >> Advance(1);
  pb >> FromServer("cd") << ToClient("cd") << Published("200 GET http://a.test/x");
  pb >> FromServer("ef") << ToClient("ef") << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  ASSERT_EQ(pb.published().size(), 3u);
  for (const auto& snapshot : pb.published()) EXPECT_EQ(snapshot->state, FlowState::kLive);
  EXPECT_EQ(pb.published()[2]->response->body.size, 4u);
  EXPECT_EQ(pb.published()[0]->id, pb.recorded()[0]->id);
  EXPECT_LT(pb.published()[2]->revision, pb.recorded()[0]->revision);
  EXPECT_EQ(pb.recorded()[0]->state, FlowState::kDone);
  EXPECT_EQ(pb.recorded()[0]->response->body.content, "abcdef");
}

TEST(PlaybookLive, AResponseCompleteInOneReadIsRecordedWithoutASnapshotOfItsHead) {
  // A keep-alive client's small responses: the live snapshot of the head would be replaced by
  // the recorded flow before anyone could see it (and cost a copy of the flow each).
  Playbook pb;
  pb.TrackPublished();
  pb >> FromClient(kGet) << Dial("a.test:80") << Published("- GET http://a.test/x");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
     << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
     << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  ASSERT_EQ(pb.published().size(), 1u);
  EXPECT_FALSE(pb.published()[0]->response);
  EXPECT_EQ(pb.recorded()[0]->response->body.content, "ok");
}

}  // namespace
}  // namespace mitmd::testing

namespace mitmd::testing {
namespace {

TEST(PlaybookPool, StalePooledConnectionIsRetriedOnceOnAFreshOne) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  // The server closes the pooled connection just as the next request goes out on it.
  pb >> FromClient(kGet) << ToServer(kForwarded);
  pb >> ServerEof(0)
     << CloseServer("reused connection failed: the server closed it without responding; retried")
     << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  EXPECT_FALSE(pb.recorded()[1]->upstream_reused);
}

TEST(PlaybookPool, NonIdempotentRequestOnAStaleConnectionIsNotRetried) {
  std::string message = "the upstream server a.test:80 closed the connection without responding";
  const std::string post = "POST http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n";
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  pb >> FromClient(post) << ToServer("POST /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> ServerEof(0) << ToClient(Page(502, message)) << CloseServer(message)
     << Recorded("502 POST http://a.test/x error=response") << CloseClient();
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookPool, IdleConnectionsExpire) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  pb >> TimerFired("pool_idle") << CloseServer("idle in the pool too long");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.pool().idle_count(), 0u);
}

// The pool itself: one upstream connection serves two client connections in turn, and no more
// than the limit stay idle per key.
TEST(UpstreamPoolTest, AConnectionServesTheNextClientAndIdleOnesAreBounded) {
  double clock = 0;
  FakeTimers timers(&clock);
  ConnectionRegistry registry;
  FakeUpstreams dialer(registry);
  proxy::UpstreamPool pool(dialer, timers, proxy::PoolLimits{1, std::chrono::seconds(60)});
  proxy::UpstreamKey key{"a.test", 443, true, "a.test", {"http/1.1"}, false};

  std::vector<std::unique_ptr<proxy::UpstreamConn>> got;
  auto keep = [&](proxy::Upstreams::Outcome o) { got.push_back(std::move(*o)); };
  auto first = pool.Connect(key, /*client_id=*/1, keep);
  auto second = pool.Connect(key, /*client_id=*/2, keep);
  ASSERT_EQ(dialer.TakeDials().size(), 2u);
  dialer.CompleteNext(clock);
  dialer.CompleteNext(clock);
  ASSERT_EQ(got.size(), 2u);
  proxy::UpstreamConn* reused = got[0].get();
  pool.Return(std::move(got[0]));
  pool.Return(std::move(got[1]));  // over the limit of one idle per key: closed
  EXPECT_EQ(pool.idle_count(), 1u);
  EXPECT_EQ(dialer.TakeReleases().size(), 1u);

  auto third = pool.Connect(key, /*client_id=*/3, keep);
  EXPECT_EQ(dialer.TakeDials().size(), 0u);  // no dial: the pooled one
  EXPECT_EQ(got.size(), 2u);                  // delivered on the next loop turn, not inside
  timers.RunZeroDelay();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].get(), reused);

  proxy::UpstreamKey other = key;
  other.sni = "b.test";  // another SNI is another key
  auto fourth = pool.Connect(other, /*client_id=*/3, keep);
  EXPECT_EQ(dialer.TakeDials().size(), 1u);

  // TakeIdle: the same connection at once, only for its key, and only once.
  pool.Return(std::move(got[2]));
  EXPECT_EQ(pool.TakeIdle(other), nullptr);
  std::unique_ptr<proxy::UpstreamConn> taken = pool.TakeIdle(key);
  EXPECT_EQ(taken.get(), reused);
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.TakeIdle(key), nullptr);
}

}  // namespace
}  // namespace mitmd::testing

namespace mitmd::testing {
namespace {

constexpr char kConnect[] = "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n";
constexpr char kEstablished[] = "HTTP/1.1 200 Connection established\r\n\r\n";
constexpr char kOriginGet[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";

TEST(PlaybookTunnel, PlainHttpInsideAConnectTunnel) {
  Playbook pb;
  pb >> FromClient("CONNECT a.test:80 HTTP/1.1\r\nHost: a.test:80\r\n\r\n") << ToClient(kEstablished);
  pb >> FromClient(kOriginGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kOriginGet);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookTunnel, TlsIsInterceptedUpstreamFirst) {
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test", {"h2", "http/1.1"}));  // peeked, then TLS starts
  ASSERT_TRUE(pb.Run());
  ASSERT_TRUE(pb.client().tls_started());
  pb >> ClientHello("a.test", {"h2", "http/1.1"}) << Dial("a.test:443 tls sni=a.test alpn=h2,http/1.1");
  pb >> Dialed() << ContinueHandshake();
  pb >> ClientHandshakeDone();
  pb >> FromClient(kOriginGet) << ToServer(kOriginGet);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET https://a.test/");
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->client_tls->sni, "a.test");
  EXPECT_EQ(pb.recorded()[0]->server_tls->sni, "a.test");
}

TEST(PlaybookTunnel, UpstreamTlsFailureStillCompletesTheHandshakeThenExplains) {
  std::string message = "upstream certificate has expired (notAfter 2020-01-01)";
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test"));
  pb >> ClientHello("a.test") << Dial("a.test:443 tls sni=a.test");
  pb >> DialFailed(Phase::kUpstreamTls, message) << ContinueHandshake();
  pb >> ClientHandshakeDone();
  pb >> FromClient(kOriginGet)
     << ToClient(Page(502, message, "mitmd could not reach a.test:443 for this request."))
     << Recorded("502 GET https://a.test/ error=upstream_tls") << CloseClient();
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookTunnel, ClientHandshakeTimeout) {
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test"));
  pb >> TimerFired("client_handshake") << Recorded("- error=client_tls") << CloseClient();
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookTunnel, HangupRightAfterTheHandshakeIsRecordedButNotYetAPin) {
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test"));
  pb >> ClientHello("a.test") << Dial("a.test:443 tls sni=a.test");
  pb >> Dialed() << ContinueHandshake();
  pb >> ClientHandshakeDone();
  pb >> ClientEof() << Recorded("- error=client_tls") << CloseClient()
     << CloseServer("client hung up after the handshake");
  ASSERT_TRUE(pb.Run());
  // One hang-up from a client never seen trusting mitmd is no evidence of pinning.
  EXPECT_NE(pb.recorded()[0]->error->message.find("stays intercepted"), std::string::npos)
      << pb.recorded()[0]->error->message;
}

TEST(PlaybookTunnel, IgnoredSniIsTunnelledWithItsClientHelloReplayed) {
  Playbook pb([](Config& c) { c.ignore_hosts = {"^b\\.test:443$"}; });
  std::string hello = ClientHelloBytes("b.test");
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(hello) << Dial("a.test:443");
  pb >> Dialed() << ToServer(hello);
  pb >> FromServer("\x16\x03\x03server") << ToClient("\x16\x03\x03server");
  pb >> ClientEof();
  pb >> ServerEof() << ShutdownClient() << Recorded("tunnel a.test:443 up=" +
                                                    std::to_string(hello.size()) + " down=9")
     << CloseClient() << CloseServer("both sides closed");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookTunnel, SilentClientLetsTheServerSpeakFirst) {
  Playbook pb;
  pb.TrackPublished();
  pb >> FromClient("CONNECT a.test:25 HTTP/1.1\r\nHost: a.test:25\r\n\r\n") << ToClient(kEstablished);
  pb >> TimerFired("server_first") << Dial("a.test:25");
  pb >> Dialed();
  pb >> FromServer("220 a.test ESMTP\r\n") << ToClient("220 a.test ESMTP\r\n")
     << Published("tunnel a.test:25 up=0 down=0");  // published as it opens
  pb >> FromClient("QUIT\r\n") << ToServer("QUIT\r\n");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookTunnel, SlowClientSpeakingBeforeTheServerIsStillIntercepted) {
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> TimerFired("server_first") << Dial("a.test:443");
  pb >> Dialed();
  pb >> FromClient(ClientHelloBytes("a.test")) << CloseServer("the client spoke first");
  pb >> ClientHello("a.test") << Dial("a.test:443 tls sni=a.test");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(pb.client().tls_started());
}

}  // namespace
}  // namespace mitmd::testing
