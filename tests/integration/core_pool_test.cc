// Issue 8, the upstream pool with real clients: two curl processes, one after the other, are
// served over one upstream TLS connection, and the second flow says it reused it. The pool is
// per worker and the kernel picks the worker that accepts each client, so mitmd runs one
// worker here.

#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

using CorePoolTest = ProxyTest;

TEST_F(CorePoolTest, TwoCurlProcessesShareOneUpstreamConnection) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--workers", "1"}));
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}",
                                   up->Url("/bytes/100", "localhost")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200");
  }
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(up->connections_accepted(), 1u);
  EXPECT_EQ(up->requests_served(), 2u);
  EXPECT_NE(flows[0]["client"]["conn"], flows[1]["client"]["conn"]);
  EXPECT_EQ(flows[0]["server"]["conn"], flows[1]["server"]["conn"]);
  EXPECT_EQ(flows[1]["server"]["reused"], true) << flows[1].dump();
}

// Plain HTTP through the proxy pools too (absolute-form requests from two processes).
TEST_F(CorePoolTest, PlainHttpFromTwoProcessesSharesOneUpstreamConnection) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--workers", "1"}));
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", up->Url("/bytes/10")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200");
  }
  ASSERT_EQ(mitmd_.WaitForFlows(2).size(), 2u);
  EXPECT_EQ(up->connections_accepted(), 1u);
}

}  // namespace
}  // namespace mitmd::testing
