// Issue 13, SOCKS5 on the proxy port with real clients: curl --socks5-hostname (the name goes
// to mitmd) and --socks5 (curl resolves; IPv4 and IPv6), Python requests with socks5h://, over
// TLS (intercepted, as after an HTTP CONNECT) and plain HTTP; the proxy token as the SOCKS
// password; SOCKS4 refused with a message. Every flow says it came through SOCKS5.

#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

using ModesSocks5Test = ProxyTest;

std::string SocksUrl(const MitmdProcess& m, const std::string& scheme,
                     const std::string& userinfo = "") {
  return scheme + "://" + userinfo + "127.0.0.1:" + std::to_string(m.port());
}

TEST_F(ModesSocks5Test, CurlSocks5HostnameIsInterceptedAndRecorded) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunCurl({"--proxy", SocksUrl(mitmd_, "socks5h"), "--cacert",
                             mitmd_.ca_cert_path(), "-o", "/dev/null", "-w", "%{http_code}",
                             up->Url("/bytes/10", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["client"]["entry"], "socks5") << flows[0].dump();
  EXPECT_EQ(flows[0]["request"]["host"], "localhost");
  EXPECT_EQ(flows[0]["response"]["status"], 200);
  EXPECT_TRUE(flows[0]["client"].contains("tls")) << "intercepted, not tunnelled";
}

TEST_F(ModesSocks5Test, CurlSocks5ResolvingItselfIPv4AndIPv6) {
  UpstreamServer* v4 = StartUpstream(TlsUpstream());
  UpstreamServer* v6 = StartUpstream(TlsUpstream("::1"));
  ASSERT_TRUE(v4 && v6);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  for (UpstreamServer* up : {v4, v6}) {
    ProcessResult r = RunCurl({"--proxy", SocksUrl(mitmd_, "socks5"), "--cacert",
                               mitmd_.ca_cert_path(), "-o", "/dev/null", "-w", "%{http_code}",
                               up->Url("/bytes/10")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200");
  }
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  std::set<std::string> hosts;
  for (const auto& f : flows) {
    EXPECT_EQ(f["client"]["entry"], "socks5");
    hosts.insert(f["server"]["host"].get<std::string>());
  }
  EXPECT_EQ(hosts, (std::set<std::string>{"127.0.0.1", "::1"}));
}

TEST_F(ModesSocks5Test, PlainHttpThroughSocks5) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunCurl({"--proxy", SocksUrl(mitmd_, "socks5h"), "-o", "/dev/null", "-w",
                             "%{http_code}", up->Url("/bytes/10")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["client"]["entry"], "socks5");
  EXPECT_EQ(flows[0]["request"]["path"], "/bytes/10");
}

TEST_F(ModesSocks5Test, PythonRequestsSocks5h) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string script =
      "import sys, requests\n"
      "p = {'http': sys.argv[1], 'https': sys.argv[1]}\n"
      "r = requests.get(sys.argv[2], proxies=p, verify=sys.argv[3], timeout=20)\n"
      "print(r.status_code)\n";
  ProcessResult r = RunProcess({"/usr/bin/python3", "-c", script, SocksUrl(mitmd_, "socks5h"),
                                up->Url("/bytes/5", "localhost"), mitmd_.ca_cert_path()},
                               std::chrono::seconds(30));
  if (r.err.find("Missing dependencies for SOCKS support") != std::string::npos) {
    GTEST_SKIP() << "python3-socks is not installed (scripts/deps.sh test)";
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200\n");
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["client"]["entry"], "socks5");
}

TEST_F(ModesSocks5Test, ProxyTokenIsTheSocksPassword) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--proxy-token", "s3cret"}));
  ProcessResult without = RunCurl({"--proxy", SocksUrl(mitmd_, "socks5h"), up->Url("/bytes/1")});
  EXPECT_NE(without.exit_code, 0);
  ProcessResult wrong =
      RunCurl({"--proxy", SocksUrl(mitmd_, "socks5h", "mitmd:guess@"), up->Url("/bytes/2")});
  EXPECT_NE(wrong.exit_code, 0);
  ProcessResult right = RunCurl({"--proxy", SocksUrl(mitmd_, "socks5h", "mitmd:s3cret@"), "-o",
                                 "/dev/null", "-w", "%{http_code}", up->Url("/bytes/3")});
  ASSERT_EQ(right.exit_code, 0) << right.err;
  EXPECT_EQ(right.out, "200");
  auto flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  int refused = 0;
  for (const auto& f : flows) {
    EXPECT_EQ(f["client"]["entry"], "socks5");
    if (f.contains("error")) {
      ++refused;
      EXPECT_EQ(f["error"]["phase"], "proxy_request");
      EXPECT_NE(f["error"]["message"].get<std::string>().find("requires its proxy token"),
                std::string::npos) << f.dump();
    }
  }
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(mitmd_.Flows().back()["request"]["path"], "/bytes/3");
  EXPECT_EQ(mitmd_.StdoutText().find("s3cret"), std::string::npos);
}

TEST_F(ModesSocks5Test, Socks4IsRefusedWithAMessage) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunCurl({"--proxy", SocksUrl(mitmd_, "socks4"), up->Url("/x")});
  EXPECT_NE(r.exit_code, 0);
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["client"]["entry"], "socks4");
  EXPECT_NE(flows[0]["error"]["message"].get<std::string>().find("use SOCKS5"), std::string::npos);
}

}  // namespace
}  // namespace mitmd::testing
