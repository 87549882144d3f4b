// Issue 13, --mode with real clients: upstream (mitmd -> a CONNECT forwarder the test starts ->
// the server, with and without the next proxy's credentials, its refusals shown as it gave
// them; the same forwarder over TLS for upstream:https://, verified; a Python SOCKS5 server for
// upstream:socks5:// with username/password), reverse (curl to mitmd as if it were the server,
// over TLS and plain HTTP, by another name than the server's, with --rewrite-host), several
// modes on their own ports in one process, a transparent port reached without a redirect (a
// clear refusal, never a loop), and misconfigured modes refused at start.

#include <fstream>
#include <regex>
#include <thread>

#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

class ModesListenersTest : public ProxyTest {
 protected:
  // Starts the CONNECT forwarder (requiring |credentials| when not empty); returns its port.
  uint16_t StartForwarder(const std::string& credentials = "", bool tls = false) {
    return StartHop("connect_forwarder.py", credentials, tls);
  }
  // Starts tests/support/|script| with its options; returns its port.
  uint16_t StartHop(const std::string& script, const std::string& credentials, bool tls) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     std::string(MITMD_SOURCE_DIR) + "/tests/support/" + script};
    if (tls) argv.insert(argv.end(), {"--tls", localhost_files_.cert, localhost_files_.key});
    if (!credentials.empty()) argv.push_back(credentials);
    forwarder_out_ = dir_.File("forwarder.out");
    EXPECT_TRUE(forwarder_.Start(argv, {}, forwarder_out_, dir_.File("forwarder.err")));
    for (int i = 0; i < 100; ++i) {
      std::smatch m;
      std::string text = ForwarderLog();
      if (std::regex_search(text, m, std::regex("port (\\d+)\\n"))) return std::stoi(m[1]);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the forwarder did not start";
    return 0;
  }

  std::string ForwarderLog() const {
    std::ifstream in(forwarder_out_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // The port of the listener whose banner line names |mode|.
  uint16_t ModePort(const std::string& mode) {
    std::smatch m;
    std::string out = mitmd_.StdoutText();
    std::regex line("mode +" +
                    std::regex_replace(mode, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                    " on [^\\n]*:(\\d+)\\n");
    if (!std::regex_search(out, m, line)) {
      ADD_FAILURE() << "no listener for " << mode << " in:\n" << out;
      return 0;
    }
    return static_cast<uint16_t>(std::stoi(m[1]));
  }

  void TearDown() override {
    forwarder_.Kill();
    ProxyTest::TearDown();
  }

  ChildProcess forwarder_;
  std::string forwarder_out_;
};

TEST_F(ModesListenersTest, UpstreamChainsThroughTheNextProxy) {
  UpstreamServer* tls = StartUpstream(TlsUpstream());
  UpstreamServer* plain = StartUpstream(PlainUpstream());
  ASSERT_TRUE(tls && plain);
  uint16_t next = StartForwarder();
  ASSERT_NE(next, 0);
  ASSERT_NO_FATAL_FAILURE(
      StartMitmd({"--mode", "upstream:http://127.0.0.1:" + std::to_string(next)}));
  ProcessResult r =
      mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", tls->Url("/bytes/100", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", plain->Url("/bytes/10")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_TRUE(flows[0]["client"].contains("tls")) << "intercepted through the chain";
  std::string log = ForwarderLog();
  EXPECT_NE(log.find("CONNECT localhost:" + std::to_string(tls->port())), std::string::npos) << log;
  EXPECT_NE(log.find("CONNECT 127.0.0.1:" + std::to_string(plain->port())), std::string::npos)
      << log;
}

TEST_F(ModesListenersTest, UpstreamCredentialsAndTheNextHopsRefusal) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  uint16_t next = StartForwarder("alice:s3cret");
  ASSERT_NE(next, 0);
  std::string hop = "127.0.0.1:" + std::to_string(next);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--mode", "upstream:http://alice:s3cret@" + hop, "--mode",
                                      "upstream:http://alice:wrong@" + hop + "@0"}));
  ProcessResult ok =
      mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", up->Url("/bytes/4", "localhost")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "200");
  uint16_t wrong_port = ModePort("upstream:http://alice:***@" + hop + "@127.0.0.1:0");
  ASSERT_NE(wrong_port, 0);
  ProcessResult refused =
      RunCurl({"--proxy", "http://127.0.0.1:" + std::to_string(wrong_port), "--cacert",
               mitmd_.ca_cert_path(), "-w", "%{http_code}", up->Url("/bytes/5", "localhost")});
  EXPECT_NE(refused.out.find("502"), std::string::npos) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("407 Proxy Authentication Required"), std::string::npos)
      << "the next hop's answer, as it gave it: " << refused.out;
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  const auto& failed = flows[0].contains("error") ? flows[0] : flows[1];
  EXPECT_NE(failed["error"]["message"].get<std::string>().find("407"), std::string::npos)
      << failed.dump();
  EXPECT_EQ(mitmd_.StdoutText().find("s3cret"), std::string::npos) << "no password in the banner";
  EXPECT_EQ(mitmd_.StderrText().find("s3cret"), std::string::npos) << "no password in the log";
}

TEST_F(ModesListenersTest, UpstreamOverTlsToTheNextProxy) {
  UpstreamServer* tls = StartUpstream(TlsUpstream());
  UpstreamServer* plain = StartUpstream(PlainUpstream());
  ASSERT_TRUE(tls && plain);
  uint16_t next = StartForwarder("carol:pw", /*tls=*/true);
  ASSERT_NE(next, 0);
  ASSERT_NO_FATAL_FAILURE(
      StartMitmd({"--mode", "upstream:https://carol:pw@localhost:" + std::to_string(next),
                  "--upstream-proxy-ca", ca_files_.cert}));
  ProcessResult r =
      mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", tls->Url("/bytes/100", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200") << mitmd_.StderrText();
  r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", plain->Url("/bytes/10")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_TRUE(flows[0]["client"].contains("tls")) << "intercepted through the chain";
  EXPECT_EQ(flows[0]["server"]["tls"]["sni"], "localhost") << flows[0].dump();
  std::string log = ForwarderLog();
  EXPECT_NE(log.find("TLS\nCONNECT localhost:" + std::to_string(tls->port())), std::string::npos)
      << log;
  EXPECT_NE(log.find("TLS\nCONNECT 127.0.0.1:" + std::to_string(plain->port())),
            std::string::npos)
      << log;
}

TEST_F(ModesListenersTest, UpstreamOverTlsRefusesANextProxyItCannotVerify) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  uint16_t next = StartForwarder("", /*tls=*/true);
  ASSERT_NE(next, 0);
  // No --upstream-proxy-ca: the system CAs do not know the test CA.
  ASSERT_NO_FATAL_FAILURE(
      StartMitmd({"--mode", "upstream:https://localhost:" + std::to_string(next)}));
  ProcessResult r = mitmd_.Curl({"-w", "\n%{http_code}", up->Url("/bytes/3", "localhost")});
  EXPECT_TRUE(r.out.ends_with("502")) << r.out << r.err;
  EXPECT_NE(r.out.find("upstream:https://localhost:"), std::string::npos) << r.out;
  EXPECT_NE(Lower(r.out).find("certificate"), std::string::npos) << r.out;
  EXPECT_EQ(ForwarderLog().find("CONNECT"), std::string::npos) << "nothing sent to it";
}

TEST_F(ModesListenersTest, UpstreamThroughSocks5WithCredentials) {
  UpstreamServer* tls = StartUpstream(TlsUpstream());
  UpstreamServer* plain = StartUpstream(PlainUpstream());
  ASSERT_TRUE(tls && plain);
  uint16_t next = StartHop("socks5_server.py", "dave:s3cret", false);
  ASSERT_NE(next, 0);
  std::string hop = "127.0.0.1:" + std::to_string(next);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--mode", "upstream:socks5://dave:s3cret@" + hop, "--mode",
                                      "upstream:socks5://dave:wrong@" + hop + "@0"}));
  ProcessResult r =
      mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", tls->Url("/bytes/100", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200") << mitmd_.StderrText();
  r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", plain->Url("/bytes/10")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  std::string log = ForwarderLog();
  EXPECT_NE(log.find("CONNECT localhost:" + std::to_string(tls->port()) + " (name)"),
            std::string::npos)
      << "the name goes to the proxy: " << log;
  EXPECT_NE(log.find("CONNECT 127.0.0.1:" + std::to_string(plain->port()) + " (ipv4)"),
            std::string::npos)
      << log;

  uint16_t wrong_port = ModePort("upstream:socks5://dave:***@" + hop + "@127.0.0.1:0");
  ASSERT_NE(wrong_port, 0);
  ProcessResult refused =
      RunCurl({"--proxy", "http://127.0.0.1:" + std::to_string(wrong_port), "--cacert",
               mitmd_.ca_cert_path(), "-w", "\n%{http_code}", tls->Url("/bytes/5", "localhost")});
  EXPECT_TRUE(refused.out.ends_with("502")) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("refused the username and password"), std::string::npos)
      << refused.out;
  EXPECT_EQ(mitmd_.StderrText().find("s3cret"), std::string::npos) << "no password in the log";
}

TEST_F(ModesListenersTest, MisconfiguredModesAreClearErrors) {
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {MITMD_BINARY, "--confdir", dir_.File("c"), "--no-web",
                                     "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProcess(argv, std::chrono::seconds(20));
  };
  ProcessResult r = run({"--mode", "upstream:ftp://h:1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("http, https or socks5"), std::string::npos) << r.err;
  r = run({"--mode", "upstream:socks5://h"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("give a port"), std::string::npos) << r.err;
  r = run({"--mode", "upstream:https://h:1", "--upstream-proxy-ca", dir_.File("missing.pem")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--upstream-proxy-ca"), std::string::npos) << r.err;
  r = run({"--upstream-proxy-ca", ca_files_.cert});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("upstream:https://"), std::string::npos) << r.err;
}

TEST_F(ModesListenersTest, ReverseServesTlsAndPlainClients) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(
      StartMitmd({"--mode", "reverse:https://localhost:" + std::to_string(up->port())}));
  std::string base = "localhost:" + std::to_string(mitmd_.port());
  ProcessResult tls = RunCurl({"--cacert", mitmd_.ca_cert_path(), "-o", "/dev/null", "-w",
                               "%{http_code}", "https://" + base + "/bytes/7"});
  ASSERT_EQ(tls.exit_code, 0) << tls.err;
  EXPECT_EQ(tls.out, "200");
  ProcessResult plain =
      RunCurl({"-o", "/dev/null", "-w", "%{http_code}", "http://" + base + "/bytes/8"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "200");
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["client"]["entry"], "reverse");
    EXPECT_EQ(f["server"]["port"], up->port());
    EXPECT_EQ(f["request"]["scheme"], "https") << "the server is spoken to over TLS";
  }
  EXPECT_EQ(up->requests_served(), 2u);
}

// Clients reach the reverse proxy by another name (alias.test) than the server's own: the server
// is still verified for its own name, and --rewrite-host sends that name as Host.
TEST_F(ModesListenersTest, ReverseVerifiesTheServerForItsOwnNameAndRewritesHost) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  std::string server = "localhost:" + std::to_string(up->port());
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--mode", "reverse:https://" + server, "--rewrite-host"}));
  std::string alias = "alias.test:" + std::to_string(mitmd_.port());
  ProcessResult r = RunCurl({"--cacert", mitmd_.ca_cert_path(), "--resolve",
                             alias + ":127.0.0.1", "https://" + alias + "/echo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto echo = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(echo.is_discarded()) << r.out;
  EXPECT_EQ(HeaderValue(echo["headers"], "Host"), server);
  r = RunCurl({"http://127.0.0.1:" + std::to_string(mitmd_.port()) + "/echo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  echo = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(echo.is_discarded()) << r.out;
  EXPECT_EQ(HeaderValue(echo["headers"], "Host"), server) << "plain HTTP clients too";
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0]["client"]["tls"]["sni"], "alias.test");
  EXPECT_EQ(flows[0]["server"]["tls"]["sni"], "localhost") << flows[0].dump();
}

// --cert: a reverse proxy in front of a site presents the site's own certificate (issued by a CA
// of the user's, not mitmd's root) to clients asking for its name, and still records the flows;
// a name no --cert matches gets a leaf minted from mitmd's root as before.
TEST_F(ModesListenersTest, ReversePresentsTheUsersCertificate) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  TestCa user_ca("the user's CA");
  CertFiles user_ca_files = user_ca.root().Write(dir_, "user-ca");
  TestCert site = user_ca.Issue(LeafSpec::OnlyFor("site.test"));
  std::string pem = dir_.File("site.pem");  // one file: certificate, chain, key
  WriteFile(pem, site.CertPem() + user_ca.root().CertPem() + site.KeyPem());
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--mode", "reverse:https://localhost:" +
                                      std::to_string(up->port()), "--cert", "site.test=" + pem}));
  std::string site_url = "site.test:" + std::to_string(mitmd_.port());
  ProcessResult r = RunCurl({"--cacert", user_ca_files.cert, "--resolve", site_url + ":127.0.0.1",
                             "-o", "/dev/null", "-w", "%{http_code} %{certs}",
                             "https://" + site_url + "/bytes/7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("200 ")) << r.out;
  // curl's %{certs} lists each certificate the server sent, as PEM: the first is the site's.
  size_t first = r.out.find("-----BEGIN CERTIFICATE-----");
  ASSERT_NE(first, std::string::npos) << r.out;
  std::string sent = r.out.substr(first, site.CertPem().size());
  EXPECT_EQ(sent, site.CertPem()) << "exactly the --cert certificate, not a minted one";

  std::string alias = "alias.test:" + std::to_string(mitmd_.port());
  r = RunCurl({"--cacert", mitmd_.ca_cert_path(), "--resolve", alias + ":127.0.0.1", "-o",
               "/dev/null", "-w", "%{http_code}", "https://" + alias + "/bytes/8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200") << "other names still get a minted leaf";

  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0]["client"]["entry"], "reverse");
  EXPECT_EQ(flows[0]["client"]["tls"]["sni"], "site.test");
  EXPECT_EQ(flows[0]["response"]["status"], 200) << flows[0].dump();
  EXPECT_EQ(up->requests_served(), 2u);
}

TEST_F(ModesListenersTest, SeveralModesOnTheirOwnPortsAndTransparentWithoutARedirect) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(
      StartMitmd({"--mode", "regular", "--mode",
                  "reverse:http://127.0.0.1:" + std::to_string(up->port()) + "@0", "--mode",
                  "transparent@0"}));
  uint16_t reverse =
      ModePort("reverse:http://127.0.0.1:" + std::to_string(up->port()) + "@127.0.0.1:0");
  uint16_t transparent = ModePort("transparent@127.0.0.1:0");
  ASSERT_TRUE(reverse && transparent);
  ProcessResult proxied =
      mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", up->Url("/bytes/6")});
  EXPECT_EQ(proxied.out, "200") << proxied.err;
  ProcessResult reversed = RunCurl({"-o", "/dev/null", "-w", "%{http_code}",
                                    "http://127.0.0.1:" + std::to_string(reverse) + "/bytes/7"});
  EXPECT_EQ(reversed.out, "200") << reversed.err;
  ProcessResult direct =
      RunCurl({"--max-time", "10", "http://127.0.0.1:" + std::to_string(transparent) + "/bytes/8"});
  EXPECT_NE(direct.exit_code, 0) << "a connection to the transparent port itself is refused";
  EXPECT_NE(direct.exit_code, 28) << "refused at once, not a hang";
  auto flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  int refused = 0;
  for (const auto& f : flows) {
    if (!f.contains("error")) continue;
    ++refused;
    EXPECT_EQ(f["client"]["entry"], "transparent");
    EXPECT_NE(f["error"]["message"].get<std::string>().find("transparent mode"), std::string::npos)
        << f.dump();
  }
  EXPECT_EQ(refused, 1);
}

TEST_F(ModesListenersTest, TwoModesOnOnePortIsAClearError) {
  ProcessResult r =
      RunProcess({MITMD_BINARY, "--confdir", dir_.File("c"), "--no-web", "--listen", "127.0.0.1:0",
                  "--mode", "regular@127.0.0.1:18999", "--mode", "transparent@18999"},
                 std::chrono::seconds(20));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("both listen on 127.0.0.1:18999"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mitmd::testing
