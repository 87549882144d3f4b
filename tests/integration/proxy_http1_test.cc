// HTTP/1.1 relay through mitmd: keep-alive, every body framing, HEAD, bodiless statuses,
// 100-continue, and header order and case preserved byte for byte.

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <algorithm>

#include "core/strings.h"
#include "integration/proxy_fixture.h"

namespace mitmd::testing {
namespace {

std::string Sha256Hex(const std::string& data) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), digest);
  return HexEncode(digest, sizeof(digest));
}

class Http1Test : public ProxyTest {
 protected:
  void SetUp() override {
    up_ = StartUpstream(TlsUpstream());
    ASSERT_TRUE(up_);
    ASSERT_NO_FATAL_FAILURE(StartMitmd());
  }
  std::string Url(const std::string& path) const { return up_->Url(path, "localhost"); }

  UpstreamServer* up_ = nullptr;
};

TEST_F(Http1Test, KeepAliveReusesOneUpstreamConnection) {
  std::vector<std::string> args;
  for (int i = 0; i < 5; ++i) args.push_back(Url(StrCat("/bytes/", 1000 + i)));
  ProcessResult r = mitmd_.Curl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  std::string expected;
  for (int i = 0; i < 5; ++i) expected += PatternBytes(1000 + i);
  EXPECT_TRUE(r.out == expected);
  EXPECT_EQ(up_->connections_accepted(), 1u);
  EXPECT_EQ(up_->requests_served(), 5u);

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(5);
  ASSERT_EQ(flows.size(), 5u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["response"]["status"], 200);
    EXPECT_EQ(f["client"]["conn"], flows[0]["client"]["conn"]) << "one client connection";
    ExpectMonotonicTimings(f);
  }
}

TEST_F(Http1Test, ChunkedResponseWithTrailers) {
  std::string headers = dir_.File("headers");
  ProcessResult r = mitmd_.Curl({"-D", headers, Url("/chunked/100000")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  std::string body = PatternBytes(100000);
  EXPECT_TRUE(r.out == body);
  std::string head = ReadFile(headers);
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Body-Sha256: " + Sha256Hex(body)), std::string::npos)
      << "the trailer must reach the client:\n" << head;

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& resp = flows[0]["response"];
  EXPECT_EQ(resp["body"]["size"], 100000);
  EXPECT_EQ(HeaderValue(resp["trailers"], "X-Body-Sha256"), Sha256Hex(body)) << resp.dump();
}

TEST_F(Http1Test, CloseDelimitedResponse) {
  ProcessResult r = mitmd_.Curl({Url("/close/300000")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r.out == PatternBytes(300000));
  // The next request needs a new upstream connection and must still work.
  ProcessResult again = mitmd_.Curl({Url("/close/10"), Url("/bytes/10")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(again.out == PatternBytes(10) + PatternBytes(10));

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  auto big = FlowsWithPath(flows, "/close/300000");
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0]["response"]["body"]["size"], 300000);
  EXPECT_FALSE(big[0].contains("error")) << big[0]["error"].dump();
}

TEST_F(Http1Test, HeadResponsesHaveNoBody) {
  // Two HEADs on one connection: a proxy that waited for 1234 body bytes would hang here.
  ProcessResult r = mitmd_.Curl({"-I", "--max-time", "10", Url("/bytes/1234"),
                                 Url("/chunked/1000")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_NE(r.out.find("Content-Length: 1234"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Transfer-Encoding: chunked"), std::string::npos) << r.out;
  EXPECT_EQ(up_->connections_accepted(), 1u);
  EXPECT_EQ(up_->requests_served(), 2u);

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["request"]["method"], "HEAD");
    EXPECT_EQ(f["response"]["status"], 200);
    EXPECT_EQ(f["response"]["body"]["size"], 0);
  }
}

TEST_F(Http1Test, BodilessStatusesKeepTheConnection) {
  ProcessResult r = mitmd_.Curl({"--max-time", "10", "-w", "[%{http_code}]",
                                 Url("/status/204"), Url("/status/304"), Url("/status/404"),
                                 Url("/bytes/10")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  EXPECT_TRUE(r.out == "[204][304]status 404\n[404]" + PatternBytes(10) + "[200]") << r.out;
  EXPECT_EQ(up_->connections_accepted(), 1u);

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(4);
  ASSERT_EQ(flows.size(), 4u);
  std::vector<int> statuses;
  for (const auto& f : flows) statuses.push_back(f["response"]["status"]);
  std::sort(statuses.begin(), statuses.end());
  EXPECT_EQ(statuses, (std::vector<int>{200, 204, 304, 404}));
}

TEST_F(Http1Test, PostWithExpectContinue) {
  std::string file = dir_.File("upload.bin");
  std::string data = PatternBytes(3 * 1024 * 1024 + 17);
  WriteFile(file, data);
  ProcessResult r = mitmd_.Curl({"-v", "-H", "Expect: 100-continue", "--data-binary",
                                 "@" + file, Url("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  auto echo = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(echo.is_discarded()) << r.out.substr(0, 500);
  EXPECT_EQ(echo["method"], "POST");
  EXPECT_EQ(echo["body_size"], data.size());
  EXPECT_EQ(echo["body_sha256"], Sha256Hex(data));
  EXPECT_NE(r.err.find("< HTTP/1.1 100 Continue"), std::string::npos)
      << "curl never saw the 100 Continue:\n" << r.err.substr(0, 3000);

  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_EQ(f["request"]["body"]["size"], data.size());
  EXPECT_EQ(f["request"]["body"]["truncated"], true);
  EXPECT_EQ(f["response"]["status"], 200);
  ExpectMonotonicTimings(f);
}

TEST_F(Http1Test, ChunkedRequestBody) {
  std::string file = dir_.File("upload.bin");
  std::string data = PatternBytes(200000);
  WriteFile(file, data);
  ProcessResult r = mitmd_.Curl({"-H", "Transfer-Encoding: chunked", "--data-binary",
                                 "@" + file, Url("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  auto echo = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(echo.is_discarded()) << r.out.substr(0, 500);
  EXPECT_EQ(echo["body_size"], data.size());
  EXPECT_EQ(echo["body_sha256"], Sha256Hex(data));
  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["request"]["body"]["size"], data.size());
}

TEST_F(Http1Test, HeaderCaseAndOrderArePreserved) {
  ProcessResult r = mitmd_.Curl({"-H", "X-MiXeD-Case: 1", "-H", "x-lower: two", "-H",
                                 "X-UPPER: Three Words", "-H", "x-MiXeD-Case: again",
                                 Url("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nmitmd stderr:\n" << mitmd_.StderrText();
  auto echo = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(echo.is_discarded()) << r.out.substr(0, 500);
  const std::vector<std::pair<std::string, std::string>> sent = {
      {"X-MiXeD-Case", "1"}, {"x-lower", "two"}, {"X-UPPER", "Three Words"},
      {"x-MiXeD-Case", "again"}};

  // The same four headers, in the same order and case, at the upstream and in the flow.
  auto expect_in_order = [&](const nlohmann::json& headers, const std::string& where) {
    std::vector<std::pair<std::string, std::string>> seen;
    for (const auto& h : headers) {
      std::string name = h[0];
      if (Lower(name).starts_with("x-")) seen.emplace_back(name, h[1]);
    }
    EXPECT_EQ(seen, sent) << where << ": " << headers.dump();
  };
  expect_in_order(echo["headers"], "upstream");
  std::vector<nlohmann::json> flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  expect_in_order(flows[0]["request"]["headers"], "flow request");
  // The response headers as the upstream sent them.
  EXPECT_EQ(HeaderNames(flows[0]["response"]["headers"]),
            (std::vector<std::string>{"Content-Type", "Content-Length", "Server"}));
}

TEST_F(Http1Test, GzipBodyIsRelayedEncoded) {
  ProcessResult raw = mitmd_.Curl({Url("/gzip-json")});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_TRUE(raw.out.starts_with("\x1f\x8b")) << "mitmd must not decode bodies it relays";
  ProcessResult decoded = mitmd_.Curl({"--compressed", Url("/gzip-json")});
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, kGzipJsonPlain);
}

}  // namespace
}  // namespace mitmd::testing
