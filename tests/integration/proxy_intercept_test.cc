// The interception path end to end: curl trusting only mitmd's root gets exactly the bytes the
// upstream serves, and each exchange becomes one complete JSON flow line.

#include <gtest/gtest.h>

#include <algorithm>

#include "core/strings.h"
#include "integration/proxy_fixture.h"

namespace mitmd::testing {
namespace {

constexpr size_t kMillion = 1000000;

bool Contains(const nlohmann::json& array, const std::string& value) {
  return array.is_array() && std::find(array.begin(), array.end(), value) != array.end();
}

TEST_F(ProxyTest, HttpsBodyIsByteIdenticalToADirectRequest) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string url = up->Url("/bytes/1000000", "localhost");

  ProcessResult direct = DirectCurl({url});
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  ProcessResult proxied = mitmd_.Curl({url});
  ASSERT_EQ(proxied.exit_code, 0) << proxied.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  ASSERT_EQ(proxied.out.size(), kMillion);
  EXPECT_TRUE(proxied.out == direct.out) << "the body through mitmd differs from the direct one";
  EXPECT_TRUE(proxied.out == PatternBytes(kMillion));
}

TEST_F(ProxyTest, RecordsOneCompleteFlowPerExchange) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string url = up->Url("/bytes/1000000", "localhost");
  ProcessResult r = mitmd_.Curl({"-o", "/dev/null", "-H", "X-Test: flow", url});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u) << mitmd_.StderrText();
  const nlohmann::json& f = flows[0];
  SCOPED_TRACE(f.dump(1).substr(0, 4000));
  EXPECT_FALSE(f.value("id", "").empty());
  EXPECT_FALSE(f.contains("error"));

  const auto& req = f["request"];
  EXPECT_EQ(req["method"], "GET");
  EXPECT_EQ(req["scheme"], "https");
  EXPECT_EQ(req["url"], url);
  EXPECT_EQ(req["path"], "/bytes/1000000");
  ASSERT_TRUE(req["headers"].is_array());
  EXPECT_EQ(HeaderValue(req["headers"], "Host"), StrCat("localhost:", up->port()));
  EXPECT_EQ(HeaderValue(req["headers"], "X-Test"), "flow");
  EXPECT_EQ(req["body"]["size"], 0);

  const auto& resp = f["response"];
  EXPECT_EQ(resp["status"], 200);
  ASSERT_TRUE(resp["headers"].is_array());
  EXPECT_EQ(HeaderValue(resp["headers"], "Content-Length"), "1000000");
  EXPECT_EQ(resp["body"]["size"], kMillion);
  EXPECT_EQ(resp["body"]["truncated"], false);  // the default cap is 1 MiB
  EXPECT_TRUE(BodyContent(resp["body"]) == PatternBytes(kMillion));

  // TLS on both sides.
  const auto& client_tls = f["client"]["tls"];
  EXPECT_EQ(client_tls["sni"], "localhost");
  EXPECT_TRUE(std::string(client_tls.value("version", "")).starts_with("TLSv1."));
  EXPECT_FALSE(client_tls.value("cipher", "").empty());
  const auto& server_tls = f["server"]["tls"];
  EXPECT_EQ(server_tls["sni"], "localhost");
  EXPECT_EQ(server_tls["version"], "TLSv1.3");
  EXPECT_FALSE(server_tls.value("cipher", "").empty());
  const auto& cert = f["server"]["cert"];
  EXPECT_NE(cert.value("subject", "").find("localhost"), std::string::npos);
  EXPECT_NE(cert.value("issuer", "").find("mitmd test CA"), std::string::npos);
  EXPECT_TRUE(Contains(cert["sans"], "DNS:localhost"));
  EXPECT_TRUE(Contains(cert["sans"], "IP:127.0.0.1"));
  EXPECT_EQ(cert["sha256"], localhost_cert_.Sha256Hex());
  EXPECT_EQ(cert["verified"], true);

  EXPECT_EQ(f["server"]["host"], "localhost");
  EXPECT_EQ(f["server"]["port"], up->port());
  EXPECT_NE(f["server"].value("addr", "").find("127.0.0.1"), std::string::npos);
  EXPECT_NE(f["client"].value("addr", "").find("127.0.0.1"), std::string::npos);
  ExpectMonotonicTimings(f);
}

TEST_F(ProxyTest, BodyCopyIsCappedByMaxBodyRecord) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--max-body-record", "1000"}));
  ProcessResult big = mitmd_.Curl({up->Url("/bytes/5000", "localhost")});
  ASSERT_EQ(big.exit_code, 0) << big.err;
  EXPECT_TRUE(big.out == PatternBytes(5000)) << "the cap must not touch the relayed body";
  ProcessResult small = mitmd_.Curl({"--data-binary", "short text", up->Url("/echo", "localhost")});
  ASSERT_EQ(small.exit_code, 0) << small.err;

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  auto bytes = FlowsWithPath(flows, "/bytes/5000");
  ASSERT_EQ(bytes.size(), 1u);
  const auto& body = bytes[0]["response"]["body"];
  EXPECT_EQ(body["size"], 5000);
  EXPECT_EQ(body["truncated"], true);
  EXPECT_TRUE(BodyContent(body) == PatternBytes(1000));
  EXPECT_EQ(bytes[0]["body_record_cap"], 1000);

  auto echo = FlowsWithPath(flows, "/echo");
  ASSERT_EQ(echo.size(), 1u);
  const auto& req_body = echo[0]["request"]["body"];
  EXPECT_EQ(req_body["size"], 10);
  EXPECT_EQ(req_body["truncated"], false);
  EXPECT_EQ(req_body["encoding"], "text");
  EXPECT_EQ(req_body["content"], "short text");
  const auto& resp_body = echo[0]["response"]["body"];
  EXPECT_EQ(resp_body["encoding"], "text");
  EXPECT_EQ(resp_body["content"], small.out);
}

TEST_F(ProxyTest, Ipv6Upstream) {
  UpstreamServer* up = StartUpstream(TlsUpstream("::1"));
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string url = up->Url("/bytes/100000");  // https://[::1]:PORT/...
  ProcessResult r = mitmd_.Curl({url});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r.out == PatternBytes(100000));
  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["response"]["status"], 200);
  EXPECT_NE(flows[0]["server"].value("addr", "").find("::1"), std::string::npos)
      << flows[0]["server"].dump();
}

TEST_F(ProxyTest, IpLiteralHost) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  // No SNI is sent for an IP literal: the minted leaf must carry the IP as a SAN.
  ProcessResult r = mitmd_.Curl({up->Url("/bytes/100000")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r.out == PatternBytes(100000));
  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["request"]["url"], up->Url("/bytes/100000"));
  EXPECT_EQ(flows[0]["server"]["cert"]["verified"], true);
}

TEST_F(ProxyTest, Tls12OnlyAndTls13OnlyUpstreams) {
  UpstreamOptions o12 = TlsUpstream();
  o12.max_tls_version = TLS1_2_VERSION;
  UpstreamOptions o13 = TlsUpstream();
  o13.min_tls_version = TLS1_3_VERSION;
  UpstreamServer* up12 = StartUpstream(o12);
  UpstreamServer* up13 = StartUpstream(o13);
  ASSERT_TRUE(up12 && up13);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());

  ProcessResult r12 = mitmd_.Curl({up12->Url("/bytes/20000", "localhost")});
  ASSERT_EQ(r12.exit_code, 0) << r12.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r12.out == PatternBytes(20000));
  EXPECT_EQ(up12->last_tls_version(), TLS1_2_VERSION);
  ProcessResult r13 = mitmd_.Curl({up13->Url("/bytes/20000", "localhost")});
  ASSERT_EQ(r13.exit_code, 0) << r13.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r13.out == PatternBytes(20000));
  EXPECT_EQ(up13->last_tls_version(), TLS1_3_VERSION);

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) {
    uint16_t port = f["server"].value("port", 0);
    EXPECT_EQ(f["server"]["tls"]["version"], port == up12->port() ? "TLSv1.2" : "TLSv1.3")
        << f["server"].dump();
  }
}

TEST_F(ProxyTest, PlainHttpProxying) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string url = up->Url("/bytes/100");
  ProcessResult r = RunCurl({"--proxy", mitmd_.proxy_url(), url});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r.out == PatternBytes(100));

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_EQ(f["request"]["scheme"], "http");
  EXPECT_EQ(f["request"]["url"], url);
  EXPECT_EQ(f["request"]["path"], "/bytes/100");
  EXPECT_EQ(f["response"]["status"], 200);
  EXPECT_EQ(f["response"]["body"]["size"], 100);
  EXPECT_FALSE(f.contains("error"));
  EXPECT_FALSE(f["server"].contains("tls"));
  ExpectMonotonicTimings(f);
  // The upstream saw an origin-form request, not the proxy's absolute form.
  ProcessResult echo = RunCurl({"--proxy", mitmd_.proxy_url(), up->Url("/echo")});
  ASSERT_EQ(echo.exit_code, 0) << echo.err;
  EXPECT_EQ(nlohmann::json::parse(echo.out)["target"], "/echo");
}

}  // namespace
}  // namespace mitmd::testing
