// Issue 13, mitmd as an HTTPS proxy on the same port: a TLS ClientHello as the first bytes gets
// a leaf for the address the client used, and proxy requests are read inside. curl --proxy
// https://… reaches an HTTPS server (TLS inside TLS, intercepted) and a plain HTTP one; a client
// that does not trust the root as the proxy's CA gets a recorded failure that says what to do;
// bytes that are no protocol mitmd speaks get a 400 and a recorded flow, not a hang.

#include "proxy_fixture.h"
#include "support/raw_client.h"

namespace mitmd::testing {
namespace {

using ModesHttpsProxyTest = ProxyTest;

std::string HttpsProxy(const MitmdProcess& m) {
  return "https://127.0.0.1:" + std::to_string(m.port());
}

TEST_F(ModesHttpsProxyTest, CurlHttpsProxyToAnHttpsServerIsIntercepted) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = RunCurl({"--proxy", HttpsProxy(mitmd_), "--proxy-cacert",
                               mitmd_.ca_cert_path(), "--cacert", mitmd_.ca_cert_path(), "-o",
                               "/dev/null", "-w", "%{http_code}",
                               up->Url("/bytes/2000", "localhost")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200");
  }
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["client"]["entry"], "https-proxy") << f.dump();
    EXPECT_EQ(f["request"]["host"], "localhost");
    EXPECT_EQ(f["request"]["scheme"], "https");
    EXPECT_EQ(f["response"]["status"], 200);
    EXPECT_EQ(f["response"]["body"]["size"], 2000) << f.dump();
    EXPECT_TRUE(f["client"].contains("tls")) << "the inner TLS was intercepted";
  }
}

TEST_F(ModesHttpsProxyTest, CurlHttpsProxyToAPlainHttpServer) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunCurl({"--proxy", HttpsProxy(mitmd_), "--proxy-cacert",
                             mitmd_.ca_cert_path(), "-o", "/dev/null", "-w", "%{http_code}",
                             up->Url("/bytes/10")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["client"]["entry"], "https-proxy");
  EXPECT_EQ(flows[0]["request"]["path"], "/bytes/10");
}

TEST_F(ModesHttpsProxyTest, AClientThatDoesNotTrustTheProxyIsToldWhy) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunCurl({"--proxy", HttpsProxy(mitmd_), "--proxy-cacert",
                             ca_files_.cert, up->Url("/x")});
  EXPECT_NE(r.exit_code, 0);
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["client"]["entry"], "https-proxy");
  EXPECT_EQ(flows[0]["error"]["phase"], "client_tls");
  EXPECT_NE(flows[0]["error"]["message"].get<std::string>().find("proxy-cacert"),
            std::string::npos) << flows[0].dump();
}

TEST_F(ModesHttpsProxyTest, UnknownBytesGetA400AndARecordedFlow) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  auto reply = RawExchange("127.0.0.1", mitmd_.port(), std::string("\x01\x02\x03\x04\r\n\r\n", 8));
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_TRUE(reply->closed) << "never a hang";
  EXPECT_TRUE(reply->data.starts_with("HTTP/1.1 400")) << reply->data;
  // One byte and silence: answered at once, not after the idle timeout.
  auto one = RawExchange("127.0.0.1", mitmd_.port(), std::string("\x01", 1));
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_TRUE(one->closed) << "never a hang";
  EXPECT_NE(one->data.find("unrecognised protocol on the proxy port (first byte 0x01)"),
            std::string::npos) << one->data;
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) EXPECT_TRUE(f.contains("error")) << f.dump();
}

}  // namespace
}  // namespace mitmd::testing
