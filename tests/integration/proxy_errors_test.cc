// Failures: every upstream failure reaches the client as a 502 naming the reason (after the
// client's handshake with mitmd completed), malformed or unsupported proxy requests get 400/405,
// and each failure is recorded as a flow with its phase and message.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "core/strings.h"
#include "integration/proxy_fixture.h"
#include "support/raw_client.h"

namespace mitmd::testing {
namespace {

using std::chrono::seconds;

struct Reply {
  ProcessResult curl;
  int status = 0;
  std::string body;
};

class ErrorsTest : public ProxyTest {
 protected:
  // GET |url| through mitmd; the status and body are those mitmd (or the upstream) answered.
  Reply Get(const std::string& url) {
    Reply reply;
    std::string body = dir_.File("body");
    reply.curl = mitmd_.Curl({"--max-time", "20", "-o", body, "-w", "%{http_code}", url});
    reply.status = atoi(reply.curl.out.c_str());
    reply.body = access(body.c_str(), R_OK) == 0 ? ReadFile(body) : "";
    unlink(body.c_str());
    return reply;
  }

  // The 502 that |url| should produce, with |phrase| in the body and in the flow's error, which
  // names |phase| (one of the phases flow.h lists).
  void Expect502(const std::string& url, const std::string& phrase, const std::string& phase) {
    SCOPED_TRACE(url + " -> '" + phrase + "'");
    size_t flows_before = mitmd_.Flows().size();
    Reply r = Get(url);
    // curl reaching an HTTP status at all means its TLS handshake with mitmd completed.
    ASSERT_EQ(r.curl.exit_code, 0) << r.curl.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_NE(Lower(r.body).find(phrase), std::string::npos) << "502 body: " << r.body;

    std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(flows_before + 1);
    ASSERT_EQ(flows.size(), flows_before + 1) << "one failed flow per failure";
    const nlohmann::json& f = flows.back();
    ASSERT_TRUE(f.contains("error")) << f.dump();
    EXPECT_EQ(f["error"].value("phase", ""), phase) << f["error"].dump();
    EXPECT_NE(Lower(f["error"].value("message", "")).find(phrase), std::string::npos)
        << f["error"].dump();
    last_body_ = r.body;
  }

  std::string last_body_;  // the body of the last Expect502 reply
};

TEST_F(ErrorsTest, ConnectionRefused) {
  RefusingPort closed;
  ASSERT_NE(closed.port(), 0);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Expect502(StrCat("https://localhost:", closed.port(), "/"), "refused", "connect");
}

TEST_F(ErrorsTest, TlsHandshakeTimeout) {
  UpstreamOptions o = TlsUpstream();
  o.mode = UpstreamOptions::Mode::kSilent;
  UpstreamServer* up = StartUpstream(o);
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--connect-timeout", "1"}));
  auto start = std::chrono::steady_clock::now();
  Expect502(up->Url("/", "localhost"), "timed out", "upstream_tls");
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(8));
}

TEST_F(ErrorsTest, UnresolvableHost) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Expect502("https://nothing.invalid/", "cannot resolve", "dns");
}

TEST_F(ErrorsTest, ExpiredCertificate) {
  UpstreamServer* up = StartUpstream(UpstreamWith(ca_.Issue(LeafSpec::ExpiredLocalhost()),
                                                  "expired"));
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Expect502(up->Url("/", "localhost"), "has expired", "upstream_tls");
  EXPECT_NE(last_body_.find("2020-01-01"), std::string::npos) << "name the notAfter date";
  EXPECT_EQ(up->requests_served(), 0u) << "no request may reach an unverified upstream";
}

TEST_F(ErrorsTest, CertificateForAnotherHost) {
  UpstreamServer* up = StartUpstream(UpstreamWith(ca_.Issue(LeafSpec::OnlyFor("wrong.example")),
                                                  "wrong-host"));
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Expect502(up->Url("/", "localhost"), "does not match", "upstream_tls");
  EXPECT_EQ(up->requests_served(), 0u);
}

TEST_F(ErrorsTest, UnknownAuthority) {
  TestCa unknown("unknown test CA");
  UpstreamServer* up =
      StartUpstream(UpstreamWith(unknown.Issue(LeafSpec::Localhost()), "unknown-ca"));
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Expect502(up->Url("/", "localhost"), "unknown authority", "upstream_tls");
  EXPECT_EQ(up->requests_served(), 0u);
}

TEST_F(ErrorsTest, SelfSignedCertificate) {
  UpstreamServer* up =
      StartUpstream(UpstreamWith(MakeSelfSigned(LeafSpec::Localhost()), "self-signed"));
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Expect502(up->Url("/", "localhost"), "self-signed", "upstream_tls");
  EXPECT_EQ(up->requests_served(), 0u);
}

TEST_F(ErrorsTest, UpstreamAllowListBlocks) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({}, "::1"));
  Expect502(up->Url("/bytes/10"), "not allowed", "policy");  // https://127.0.0.1:PORT
  EXPECT_EQ(up->connections_accepted(), 0u) << "mitmd connected to a blocked address";
}

TEST_F(ErrorsTest, UpstreamClosesRightAfterAccept) {
  UpstreamOptions o = TlsUpstream();
  o.mode = UpstreamOptions::Mode::kCloseOnAccept;
  UpstreamServer* up = StartUpstream(o);
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  Reply r = Get(up->Url("/", "localhost"));
  ASSERT_EQ(r.curl.exit_code, 0) << r.curl.err;
  EXPECT_EQ(r.status, 502) << r.body;
  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_TRUE(flows[0].contains("error")) << flows[0].dump();
}

// The first line of the body of an HTTP response, and its status code.
std::pair<int, std::string> StatusAndBody(const std::string& response) {
  int status = 0;
  if (response.starts_with("HTTP/1.")) status = atoi(response.c_str() + 9);
  size_t split = response.find("\r\n\r\n");
  return {status, split == std::string::npos ? "" : response.substr(split + 4)};
}

TEST_F(ErrorsTest, MalformedProxyRequestGets400) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  auto reply = RawExchange("127.0.0.1", mitmd_.port(), "GARBAGE\r\n\r\n");
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_TRUE(reply->closed) << "mitmd must close the connection after a 400";
  auto [status, body] = StatusAndBody(reply->data);
  EXPECT_EQ(status, 400) << reply->data;
  // A short text whose reason line names what was wrong with the request.
  bool reason_line = false;
  size_t lines = 0;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    ++lines;
    reason_line |= line.find("GARBAGE") != std::string::npos;
  }
  EXPECT_TRUE(reason_line) << "no line of the 400 body names the bad request line: " << body;
  EXPECT_LE(lines, 3u) << body;

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  ASSERT_TRUE(flows[0].contains("error")) << flows[0].dump();
  EXPECT_FALSE(flows[0]["error"].value("message", "").empty());
  EXPECT_EQ(flows[0]["error"].value("phase", ""), "proxy_request");
}

TEST_F(ErrorsTest, OriginFormRequestToTheProxyGets400) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  auto reply = RawExchange("127.0.0.1", mitmd_.port(),
                           "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(StatusAndBody(reply->data).first, 400) << reply->data;
  EXPECT_EQ(mitmd_.WaitForFlows(1).size(), 1u);
}

TEST_F(ErrorsTest, UnsupportedMethodWithAuthorityTargetGets405) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  auto reply = RawExchange("127.0.0.1", mitmd_.port(),
                           "POST 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n"
                           "Content-Length: 0\r\n\r\n");
  ASSERT_TRUE(reply) << reply.error().message;
  auto [status, body] = StatusAndBody(reply->data);
  EXPECT_EQ(status, 405) << reply->data;
  EXPECT_FALSE(body.empty());
  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  ASSERT_TRUE(flows[0].contains("error")) << flows[0].dump();
  EXPECT_EQ(flows[0]["error"].value("phase", ""), "proxy_request");
  EXPECT_EQ(flows[0]["request"].value("method", ""), "POST");
}

TEST_F(ErrorsTest, BrokenClientsDoNotHurtTheNextOne) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  // A CONNECT whose client vanishes, a client that sends half a request head, and a client that
  // speaks garbage after CONNECT.
  std::string connect = StrCat("CONNECT localhost:", up->port(), " HTTP/1.1\r\nHost: localhost:",
                               up->port(), "\r\n\r\n");
  ASSERT_TRUE(RawExchange("127.0.0.1", mitmd_.port(), connect, std::chrono::milliseconds(200)));
  ASSERT_TRUE(RawExchange("127.0.0.1", mitmd_.port(), "GET http://127.0.0.1/ HTTP/1.1\r\nHo",
                          std::chrono::milliseconds(200)));
  ASSERT_TRUE(RawExchange("127.0.0.1", mitmd_.port(), connect + "\x16\x03\x01garbage",
                          std::chrono::milliseconds(500)));
  ProcessResult r = mitmd_.Curl({up->Url("/bytes/1000", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r.out == PatternBytes(1000));
}

}  // namespace
}  // namespace mitmd::testing
