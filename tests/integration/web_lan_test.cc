// Phones and other machines: --allow-clients lets a network use the proxy and the root's page
// without the token (everyone else still needs it), and the PAC file and /ca page name the
// address the client reached mitmd on. Loopback aliases stand in for LAN clients (curl
// --interface 127.0.0.2).

#include "core/strings.h"
#include "integration/proxy_fixture.h"
#include "integration/web_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

TEST_F(ProxyTest, AllowedClientsUseTheProxyWithoutTheToken) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--proxy-token", "s3cret", "--allow-clients", "127.0.0.2/32"}));
  const std::string url = up->Url("/bytes/10");
  auto status = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--proxy", mitmd_.proxy_url(), "-o", "/dev/null", "-w", "%{http_code}"});
    args.push_back(url);
    return RunCurl(args).out;
  };
  EXPECT_EQ(status({"--interface", "127.0.0.2"}), "200");  // the phone: no password field
  EXPECT_EQ(status({}), "407");                            // anyone else still needs the token
  EXPECT_EQ(status({"--interface", "127.0.0.3"}), "407");
  EXPECT_EQ(status({"--proxy-user", "mitmd:s3cret"}), "200");
  // http://mitmd.cert/, where a phone gets the root.
  ProcessResult cert = RunCurl({"--interface", "127.0.0.2", "--proxy", mitmd_.proxy_url(),
                               "--cacert", mitmd_.ca_cert_path(), "-o", "/dev/null", "-w",
                               "%{http_code}", "http://mitmd.cert/"});
  EXPECT_EQ(cert.out, "200") << cert.err;
}

TEST_F(WebServerTest, AllowedClientsOpenTheRootPageWithoutTheToken) {
  web::WebOptions options;
  options.token = "viewer-token";
  options.allow_clients = {*Cidr::Parse("127.0.0.2/32")};
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(options)));
  EXPECT_EQ(Fetch("/ca", {"--interface", "127.0.0.2"}).status, 200);
  EXPECT_EQ(Fetch("/ca/mitmd-ca.cer", {"--interface", "127.0.0.2"}).status, 200);
  EXPECT_EQ(Fetch("/ca").status, 401);
  // The page only: the flows still need the token.
  EXPECT_EQ(Fetch("/api/flows", {"--interface", "127.0.0.2"}).status, 401);
  EXPECT_EQ(Fetch("/", {"--interface", "127.0.0.2"}).status, 401);
}

TEST_F(WebServerTest, PacAndRootPageNameTheAddressTheClientReached) {
  web::WebOptions options;
  options.listen = {"127.0.0.2", 0};
  options.proxy_address = "0.0.0.0:8080";  // a proxy on every address
  options.confdir = "/srv/mitmd-conf";
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(options)));
  const std::string base = StrCat("http://127.0.0.2:", port_);
  HttpResult pac = Fetch(base + "/proxy.pac");
  ASSERT_EQ(pac.status, 200);
  EXPECT_NE(pac.body.find("PROXY 127.0.0.2:8080"), std::string::npos) << pac.body;
  HttpResult page = Fetch(base + "/ca");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("--proxy http://127.0.0.2:8080"), std::string::npos);
  EXPECT_NE(page.body.find("/srv/mitmd-conf"), std::string::npos);
  EXPECT_NE(page.body.find(base + "/proxy.pac"), std::string::npos);
  EXPECT_EQ(Fetch(base + "/api/info").Json()["proxy"], "127.0.0.2:8080");
}

}  // namespace
}  // namespace mitmd::testing
