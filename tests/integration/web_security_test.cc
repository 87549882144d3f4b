// Who may talk to the viewer: loopback Host names only (DNS rebinding), a token when one is set
// (required beyond loopback), and HTTPS with a leaf from mitmd's own root.

#include <event2/thread.h>

#include "core/strings.h"
#include "support/process.h"
#include "integration/web_fixture.h"
#include "unit/web_test_flows.h"

namespace mitmd::testing {
namespace {

TEST_F(WebServerTest, RejectsForeignHostNames) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_EQ(Fetch("/api/info").status, 200);
  EXPECT_EQ(Fetch(StrCat("http://localhost:", port_, "/api/info")).status, 200);
  // A page on attacker.example that rebinds its name to 127.0.0.1 still sends its own Host.
  HttpResult rebound = Fetch("/api/flows", {"-H", StrCat("Host: attacker.example:", port_)});
  EXPECT_EQ(rebound.status, 421);
  EXPECT_EQ(Fetch("/api/flows", {"-H", "Host: 127.0.0.1:1"}).status, 421);
}

TEST_F(WebServerTest, TokenGuardsEveryPathWhenSet) {
  web::WebOptions options;
  options.token = "s3cret-token";
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(options)));
  EXPECT_NE(server_->url().find("?token=s3cret-token"), std::string::npos);
  for (const char* path : {"/", "/api/flows", "/api/events", "/api/export.har", "/ca"}) {
    EXPECT_EQ(Fetch(path).status, 401) << path;
  }
  EXPECT_EQ(Fetch("/api/flows", {"-H", "Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(Fetch("/api/flows", {"-H", "Authorization: Bearer s3cret-token"}).status, 200);

  HttpResult first = Fetch("/?token=s3cret-token");
  EXPECT_EQ(first.status, 200);
  std::string cookie = first.headers["set-cookie"];
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  std::string pair = cookie.substr(0, cookie.find(';'));
  EXPECT_EQ(Fetch("/api/info", {"-H", "Cookie: theme=dark; " + pair}).status, 200);
}

TEST_F(WebServerTest, BeyondLoopbackWithoutATokenRefusesToStart) {
  evthread_use_pthreads();
  event_base* base = event_base_new();
  web::WebOptions options;
  options.listen = {"0.0.0.0", 0};
  auto server = web::WebServer::Start(base, std::move(options), *store_, *ca_, conns_, log_);
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message.find("--web-token"), std::string::npos) << server.error().message;
  event_base_free(base);
}

TEST_F(WebServerTest, ServesHttpsWithALeafFromTheRoot) {
  web::WebOptions options;
  options.tls = true;
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(options)));
  EXPECT_EQ(server_->url().substr(0, 8), "https://");
  auto flow = Record(MakeFlow({.response_body = "{\"over\":\"tls\"}", .gzip = true}));
  HttpResult info = Fetch("/api/info");  // curl with --cacert <mitmd root>
  ASSERT_EQ(info.status, 200) << info.error;
  WaitForFlowCount(1);
  HttpResult body = Fetch("/api/flows/" + flow->id + "/response/body?decode=1");
  EXPECT_EQ(body.body, "{\"over\":\"tls\"}");
  EXPECT_EQ(Fetch(StrCat("https://localhost:", port_, "/api/info")).status, 200);
  HttpResult page = Fetch("/");
  EXPECT_EQ(page.status, 200);

  // Plain HTTP to the TLS port fails; so does a client that does not trust mitmd's root.
  HttpResult plain = Fetch(StrCat("http://127.0.0.1:", port_, "/api/info"));
  EXPECT_NE(plain.status, 200);
  ProcessResult untrusted = RunCurl({"-o", "/dev/null", "--cacert", "/etc/ssl/certs/ca-certificates.crt",
                                     StrCat("https://127.0.0.1:", port_, "/api/info")});
  EXPECT_NE(untrusted.exit_code, 0);

  // A HAR export large enough to need several batches arrives whole over TLS.
  const std::string big = std::string(20000, 'x');
  for (int i = 0; i < 300; ++i) Record(MakeFlow({.response_body = big}));
  WaitForFlowCount(301);
  HttpResult har = Fetch("/api/export.har");
  ASSERT_EQ(har.status, 200) << har.error;
  EXPECT_EQ(har.Json()["log"]["entries"].size(), 301u);

  // The live stream works over TLS too.
  ProcessResult stream = RunCurl({"-N", "--max-time", "2", "--cacert", ca_->root_cert_path(),
                                  StrCat("https://127.0.0.1:", port_, "/api/events")},
                                 std::chrono::seconds(10));
  EXPECT_NE(stream.out.find("event: hello"), std::string::npos) << stream.err;
}

}  // namespace
}  // namespace mitmd::testing
