// Issue 8, the upstream pool with real clients: two curl processes, one after the other, are
// served over one upstream TLS connection, the second flow says it reused it, and the
// Connections view lists both client connections on that upstream connection. The pool is
// per worker and the kernel picks the worker that accepts each client, so mitmd runs one
// worker here.

#include "core_clients.h"
#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

using CorePoolTest = ProxyTest;

TEST_F(CorePoolTest, TwoCurlProcessesShareOneUpstreamConnection) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--workers", "1", "--web", "127.0.0.1:0"}));
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

  // The Connections view lists both client connections on the one upstream connection.
  uint16_t web = WaitForViewerPort(mitmd_);
  ASSERT_NE(web, 0) << mitmd_.StdoutText();
  ProcessResult api = RunCurl({"-s", "--noproxy", "*", "http://127.0.0.1:" + std::to_string(web) + "/api/connections"});
  ASSERT_EQ(api.exit_code, 0) << api.err;
  const nlohmann::json doc = nlohmann::json::parse(api.out);  // outlives the loop over it
  nlohmann::json upstream;
  for (const auto& c : doc["connections"]) {
    if (c["id"] == flows[0]["server"]["conn"]) upstream = c;
  }
  ASSERT_TRUE(upstream.is_object()) << api.out;
  EXPECT_EQ(upstream["clients"],
            nlohmann::json::array({flows[0]["client"]["conn"], flows[1]["client"]["conn"]}))
      << upstream.dump();
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
