// Playbooks of the timeouts and pool limits set by options: --head-timeout (408 for a head that
// trickles in), --response-timeout (504 for a server that never answers), --pool-max-idle and
// --pool-idle-timeout.

#include <gtest/gtest.h>

#include <algorithm>

#include "core/strings.h"
#include "proxy/error_page.h"
#include "support/playbook.h"

namespace mitmd::testing {
namespace {

using proxy::Phase;
using std::chrono::milliseconds;

constexpr char kGet[] = "GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n";
constexpr char kForwarded[] = "GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n";
constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

bool Armed(Playbook& pb, const std::string& name) {
  auto armed = pb.timers().Armed();
  return std::find(armed.begin(), armed.end(), name) != armed.end();
}

TEST(PlaybookTimeouts, ARequestHeadThatTricklesInGets408) {
  Playbook pb([](Config& c) { c.head_timeout = milliseconds(5'000); });
  ASSERT_TRUE(pb.Run());
  EXPECT_FALSE(Armed(pb, "head"));  // an idle connection is the idle timeout's business
  pb >> FromClient("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-Slow: a");
  pb >> Advance(1) >> FromClient("a");  // bytes keep coming, the head does not complete
  std::string message = "the client did not complete its request head within 5 s (--head-timeout)";
  pb >> TimerFired("head") << ToClient(Encode(proxy::ErrorPage(408, message)))
     << Recorded("408 error=request") << CloseClient();
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->error->message, message);
  EXPECT_EQ(pb.now(), 1'000'000 + 5.0);  // counted from the head's first byte
}

TEST(PlaybookTimeouts, ACompleteHeadStopsTheHeadCountdown) {
  Playbook pb;
  pb >> FromClient("GET http://a.test/x HTTP/1.1\r\n");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(Armed(pb, "head"));
  pb >> FromClient("Host: a.test\r\n\r\n") << Dial("a.test:80");
  ASSERT_TRUE(pb.Run());
  EXPECT_FALSE(Armed(pb, "head"));
}

TEST(PlaybookTimeouts, AnHttp09RequestIsAnswered400AtOnce) {
  Playbook pb;
  std::string message =
      "malformed proxy request: HTTP/0.9 request 'GET http://a.test/' (no HTTP version): mitmd "
      "speaks HTTP/1.0 and later";
  pb >> FromClient("GET http://a.test/\r\n") << ToClient(Encode(proxy::ErrorPage(400, message)))
     << Recorded("400 error=proxy_request") << CloseClient();
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookTimeouts, AServerThatNeverAnswersGets504AfterTheResponseTimeout) {
  Playbook pb([](Config& c) { c.response_timeout = milliseconds(30'000); });
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  std::string message = "the server did not answer within 30 s (--response-timeout)";
  pb >> TimerFired("response") << ToClient(Encode(proxy::ErrorPage(504, message)))
     << Recorded("504 GET http://a.test/x error=response") << CloseClient()
     << CloseServer(message);
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookTimeouts, NoResponseTimeoutByDefaultAndAnAnswerStopsIt) {
  Playbook pb;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  ASSERT_TRUE(pb.Run());
  EXPECT_FALSE(Armed(pb, "response"));

  Playbook limited([](Config& c) { c.response_timeout = milliseconds(30'000); });
  limited >> FromClient(kGet) << Dial("a.test:80");
  limited >> Dialed() << ToServer(kForwarded);
  ASSERT_TRUE(limited.Run());
  EXPECT_TRUE(Armed(limited, "response"));
  limited >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(limited.Run());
  EXPECT_FALSE(Armed(limited, "response"));
}

TEST(PlaybookTimeouts, PoolOptionsBoundWhatIsKept) {
  Playbook none([](Config& c) { c.pool_max_idle = 0; });
  none >> FromClient(kGet) << Dial("a.test:80");
  none >> Dialed() << ToServer(kForwarded);
  none >> FromServer(kOk) << ToClient(kOk)
       << CloseServer("the pool already holds enough idle connections to this server")
       << Recorded("200 GET http://a.test/x");
  none >> FromClient("GET http://b.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n") << Dial("b.test:80");
  ASSERT_TRUE(none.Run());
  EXPECT_EQ(none.pool().idle_count(), 0u);

  Playbook brief([](Config& c) { c.pool_idle_timeout = milliseconds(2'000); });
  brief >> FromClient(kGet) << Dial("a.test:80");
  brief >> Dialed() << ToServer(kForwarded);
  brief >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");
  brief >> FromClient("GET http://b.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n") << Dial("b.test:80");
  ASSERT_TRUE(brief.Run());
  EXPECT_EQ(brief.pool().idle_count(), 1u);
  double before = brief.now();
  brief >> TimerFired("pool_idle") << CloseServer("idle in the pool too long");
  ASSERT_TRUE(brief.Run());
  EXPECT_EQ(brief.now() - before, 2.0);
  EXPECT_EQ(brief.pool().idle_count(), 0u);
}

}  // namespace
}  // namespace mitmd::testing
