// Issue 8, relay fidelity with real peers: the client sees what the upstream negotiated (a TLS
// 1.2-only server stays TLS 1.2; a protocol mitmd does not parse, like ALPN "mqtt" through
// `openssl s_server -alpn mqtt`, is relayed as recorded raw bytes), an upstream that closes
// without close_notify reaches the client as an unclean close, and a server that speaks first
// after CONNECT is heard.

#include <filesystem>

#include "core_clients.h"
#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

using CoreRelayTest = ProxyTest;

TEST_F(CoreRelayTest, Tls12OnlyUpstreamIsPresentedAsTls12) {
  UpstreamOptions o = TlsUpstream();
  o.max_tls_version = TLS1_2_VERSION;
  UpstreamServer* up = StartUpstream(o);
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string authority = "localhost:" + std::to_string(up->port());
  auto r = RunTunnelClient(mitmd_.port(), authority, true, "localhost", mitmd_.ca_cert_path(),
                           "http/1.1",
                           "GET /bytes/10 HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: "
                           "close\\r\\n\\r\\n",
                           5);
  ASSERT_EQ(r.value("error", ""), "") << r.dump();
  EXPECT_EQ(r["version"], "TLSv1.2") << r.dump();
  EXPECT_NE(r.value("received", "").find("HTTP/1.1 200"), std::string::npos) << r.dump();
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["client"]["tls"]["version"], "TLSv1.2") << flows[0].dump();
  EXPECT_EQ(flows[0]["server"]["tls"]["version"], "TLSv1.2") << flows[0].dump();
}

TEST_F(CoreRelayTest, AlpnMqttIsRelayedAndRecordedAsRawBytes) {
  ScriptServer mqtt;
  ASSERT_TRUE(mqtt.Start({"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
                          localhost_files_.cert, "-key", localhost_files_.key, "-alpn", "mqtt",
                          "-rev", "-naccept", "1"},
                         dir_.path()));
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string authority = "localhost:" + std::to_string(mqtt.port());
  // -rev answers each line reversed, then the test closes.
  auto r = RunTunnelClient(mitmd_.port(), authority, true, "localhost", mitmd_.ca_cert_path(),
                           "mqtt", "hello mqtt\\n", 3);
  ASSERT_EQ(r.value("error", ""), "") << r.dump();
  EXPECT_EQ(r["alpn"], "mqtt") << r.dump();
  EXPECT_NE(r.value("received", "").find("ttqm olleh"), std::string::npos) << r.dump();
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_TRUE(f["kind"] == "tunnel" || f["kind"] == "raw") << f.dump();
  EXPECT_EQ(f["client"]["tls"]["alpn"], "mqtt") << f.dump();
  EXPECT_GE(f["bytes"]["up"].get<uint64_t>(), 11u) << f.dump();
  EXPECT_GE(f["bytes"]["down"].get<uint64_t>(), 11u) << f.dump();
}

// The no-common-protocol case: the client offers only what the server refuses.
TEST_F(CoreRelayTest, NoCommonAlpnIsAnAlertNotASilentHandshake) {
  ScriptServer mqtt;
  ASSERT_TRUE(mqtt.Start({"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
                          localhost_files_.cert, "-key", localhost_files_.key, "-alpn", "mqtt",
                          "-naccept", "1"},
                         dir_.path()));
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string authority = "localhost:" + std::to_string(mqtt.port());
  auto r = RunTunnelClient(mitmd_.port(), authority, true, "localhost", mitmd_.ca_cert_path(),
                           "imap", "", 2);
  // Python words it "tlsv1 alert no application protocol".
  EXPECT_NE(Lower(r.value("error", "")).find("no application protocol"), std::string::npos)
      << r.dump();
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_NE(flows[0]["error"].dump().find("no_application_protocol"), std::string::npos)
      << flows[0].dump();
}

TEST_F(CoreRelayTest, UpstreamCloseWithoutCloseNotifyReachesTheClientUnclean) {
  ScriptServer up;
  ASSERT_TRUE(up.Start({"/usr/bin/python3", "-c", kUncleanCloseServer, localhost_files_.cert,
                        localhost_files_.key},
                       dir_.path()));
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string authority = "localhost:" + std::to_string(up.port());
  auto r = RunTunnelClient(mitmd_.port(), authority, true, "localhost", mitmd_.ca_cert_path(),
                           "http/1.1",
                           "GET /partial HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n", 5);
  ASSERT_EQ(r.value("error", ""), "") << r.dump();
  EXPECT_NE(r.value("received", "").find("partial body"), std::string::npos) << r.dump();
  EXPECT_EQ(r["close"], "unclean") << r.dump();
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  // The close-delimited body may be truncated, and the flow says so.
  std::string text = Lower(flows[0].dump());
  EXPECT_TRUE(text.find("truncat") != std::string::npos ||
              text.find("close_notify") != std::string::npos)
      << flows[0].dump();
}

TEST_F(CoreRelayTest, ServerThatSpeaksFirstIsHeardAndRecorded) {
  ScriptServer banner;
  ASSERT_TRUE(banner.Start({"/usr/bin/python3", "-c", kBannerServer}, dir_.path()));
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string authority = "127.0.0.1:" + std::to_string(banner.port());
  // The client sends nothing and waits for the banner, as an SMTP client does.
  auto r = RunTunnelClient(mitmd_.port(), authority, false, "", "", "", "", 4);
  ASSERT_EQ(r.value("error", ""), "") << r.dump();
  EXPECT_EQ(r.value("connect", ""), "HTTP/1.1 200 Connection established") << r.dump();
  EXPECT_NE(r.value("received", "").find("220 banner ready"), std::string::npos) << r.dump();
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["kind"], "tunnel") << flows[0].dump();
  EXPECT_GE(flows[0]["bytes"]["down"].get<uint64_t>(), 18u) << flows[0].dump();
}

}  // namespace
}  // namespace mitmd::testing
