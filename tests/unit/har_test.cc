#include "flow/har.h"

#include <gtest/gtest.h>

#include <regex>

#include "unit/web_test_flows.h"

namespace mitmd {
namespace {

using nlohmann::json;
using testing::FlowSpec;
using testing::MakeFlow;

std::vector<std::shared_ptr<const Flow>> Share(std::vector<Flow> flows) {
  std::vector<std::shared_ptr<const Flow>> out;
  for (auto& f : flows) out.push_back(std::make_shared<const Flow>(std::move(f)));
  return out;
}

TEST(HarTest, IsoTimeRoundTripsWithMilliseconds) {
  EXPECT_EQ(IsoTimeMillis(1700000000.123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(IsoTimeMillis(1700000000.9996), "2023-11-14T22:13:21.000Z");
  EXPECT_NEAR(ParseIsoTime("2023-11-14T22:13:20.123Z"), 1700000000.123, 1e-6);
  EXPECT_NEAR(ParseIsoTime("2023-11-15T00:13:20.5+02:00"), 1700000000.5, 1e-6);
  EXPECT_NEAR(ParseIsoTime("2023-11-14T21:13:20-0100"), 1700000000.0, 1e-6);
  EXPECT_EQ(ParseIsoTime("yesterday"), 0);
}

TEST(HarTest, LogHasTheRequiredShape) {
  json har = BuildHar(Share({MakeFlow({}), MakeFlow({.method = "POST"})}), {});
  ASSERT_TRUE(har.contains("log"));
  EXPECT_EQ(har["log"]["version"], "1.2");
  EXPECT_EQ(har["log"]["creator"]["name"], "mitmd");
  ASSERT_EQ(har["log"]["entries"].size(), 2u);
  EXPECT_EQ(har["log"]["entries"][1]["request"]["method"], "POST");
  for (const auto& e : har["log"]["entries"]) {
    for (const char* k : {"startedDateTime", "time", "request", "response", "cache", "timings"}) {
      EXPECT_TRUE(e.contains(k)) << k;
    }
    for (const char* k : {"method", "url", "httpVersion", "cookies", "headers", "queryString",
                          "headersSize", "bodySize"}) {
      EXPECT_TRUE(e["request"].contains(k)) << k;
    }
    for (const char* k : {"status", "statusText", "httpVersion", "cookies", "headers", "content",
                          "redirectURL", "headersSize", "bodySize"}) {
      EXPECT_TRUE(e["response"].contains(k)) << k;
    }
  }
}

TEST(HarTest, TimingsComeFromTheFlowTimestamps) {
  Flow f = MakeFlow({.start = 1700000000.0, .duration = 0.200});
  json e = BuildHarEntry(f, {});
  // The flow opened its upstream connection: connect (with TLS) and blocked are reported.
  EXPECT_EQ(e["startedDateTime"], IsoTimeMillis(f.timings.upstream_connect_start));
  EXPECT_NEAR(e["timings"]["connect"].get<double>(), 4.0, 1e-6);   // 0.009 -> 0.005 before start
  EXPECT_NEAR(e["timings"]["ssl"].get<double>(), 3.0, 1e-6);
  EXPECT_NEAR(e["timings"]["blocked"].get<double>(), 5.0, 1e-6);
  EXPECT_NEAR(e["timings"]["send"].get<double>(), 1.0, 1e-6);
  EXPECT_NEAR(e["timings"]["wait"].get<double>(), 159.0, 1e-6);
  EXPECT_NEAR(e["timings"]["receive"].get<double>(), 40.0, 1e-6);
  EXPECT_EQ(e["timings"]["dns"], -1);
  EXPECT_NEAR(e["time"].get<double>(), 4 + 5 + 1 + 159 + 40, 1e-6);

  // On a reused upstream connection there was no connect for this request.
  f.upstream_reused = true;
  json reused = BuildHarEntry(f, {});
  EXPECT_EQ(reused["timings"]["connect"], -1);
  EXPECT_EQ(reused["timings"]["ssl"], -1);
  EXPECT_EQ(reused["startedDateTime"], IsoTimeMillis(f.timings.request_start));
  EXPECT_NEAR(reused["time"].get<double>(), 200.0, 1e-6);
  EXPECT_EQ(reused["_upstreamReused"], true);
}

TEST(HarTest, ContentIsDecodedAndCompressionReported) {
  std::string body = "{\"message\":\"" + std::string(2000, 'z') + "\"}";
  Flow f = MakeFlow({.response_body = body, .gzip = true});
  json e = BuildHarEntry(f, {});
  const json& content = e["response"]["content"];
  EXPECT_EQ(content["text"], body);
  EXPECT_EQ(content["size"], body.size());
  EXPECT_EQ(content["mimeType"], "application/json");
  EXPECT_EQ(e["response"]["bodySize"], f.response->body.size);
  EXPECT_EQ(content["compression"].get<int64_t>(),
            static_cast<int64_t>(body.size()) - static_cast<int64_t>(f.response->body.size));
  EXPECT_FALSE(content.contains("encoding"));
}

TEST(HarTest, BinaryBodiesAreBase64) {
  Flow f = MakeFlow({.content_type = "image/png", .response_body = std::string("\x89PNG\r\n\x1a\n\xff\x00", 10)});
  json content = BuildHarEntry(f, {})["response"]["content"];
  EXPECT_EQ(content["encoding"], "base64");
  EXPECT_EQ(content["text"], "iVBORw0KGgr/AA==");
}

TEST(HarTest, QueryCookiesAndPostData) {
  Flow f = MakeFlow({.method = "POST", .path = "/search?q=a+b&lang=en%2Dus&flag",
                     .request_body = "user=al%20ice&x=1"});
  f.request->headers.emplace_back("Cookie", "sid=abc; theme=dark");
  f.response->headers.emplace_back("Set-Cookie", "sid=new; Path=/; HttpOnly; Secure");
  json e = BuildHarEntry(f, {});
  EXPECT_EQ(e["request"]["queryString"],
            json::parse(R"([{"name":"q","value":"a b"},{"name":"lang","value":"en-us"},
                            {"name":"flag","value":""}])"));
  EXPECT_EQ(e["request"]["cookies"],
            json::parse(R"([{"name":"sid","value":"abc"},{"name":"theme","value":"dark"}])"));
  EXPECT_EQ(e["response"]["cookies"][0]["name"], "sid");
  EXPECT_EQ(e["response"]["cookies"][0]["httpOnly"], true);
  EXPECT_EQ(e["response"]["cookies"][0]["path"], "/");
  EXPECT_EQ(e["request"]["postData"]["text"], "user=al%20ice&x=1");
  EXPECT_EQ(e["request"]["postData"]["params"][0]["value"], "al ice");
  EXPECT_EQ(e["request"]["url"], "https://api.example.com/search?q=a+b&lang=en%2Dus&flag");
  EXPECT_EQ(e["serverIPAddress"], "127.0.0.1");
}

TEST(HarTest, FailedFlowsCarryTheirError) {
  Flow f = testing::MakeErrorFlow("expired.test", "upstream_tls", "upstream certificate has expired");
  json e = BuildHarEntry(f, {});
  EXPECT_EQ(e["response"]["status"], 0);
  EXPECT_EQ(e["_error"]["message"], "upstream certificate has expired");
  EXPECT_EQ(e["_error"]["phase"], "upstream_tls");
}

TEST(HarTest, TunnelsAreConnectEntries) {
  Flow f;
  f.id = NewFlowId();
  f.kind = Flow::Kind::kTunnel;
  f.server_host = "pinned.example";
  f.server_port = 443;
  f.bytes_up = 517;
  f.bytes_down = 4096;
  f.timings.accepted = 1700000000;
  json e = BuildHarEntry(f, {});
  EXPECT_EQ(e["request"]["method"], "CONNECT");
  EXPECT_EQ(e["request"]["url"], "https://pinned.example:443/");
  EXPECT_EQ(e["response"]["status"], 200);
  EXPECT_EQ(e["response"]["bodySize"], 4096);
}

TEST(HarTest, ImportRestoresFlows) {
  Flow original = MakeFlow({.method = "PUT", .host = "h.test", .port = 8443, .path = "/a?b=c",
                            .status = 201, .response_body = "created", .gzip = true});
  json har = BuildHar(Share({original}), {});
  auto imported = FlowsFromHar(har);
  ASSERT_TRUE(imported) << imported.error().message;
  ASSERT_EQ(imported->flows.size(), 1u);
  const Flow& f = imported->flows[0];
  EXPECT_EQ(f.id, original.id);
  EXPECT_EQ(f.request->method, "PUT");
  EXPECT_EQ(f.request->host, "h.test");
  EXPECT_EQ(f.request->port, 8443);
  EXPECT_EQ(f.request->path, "/a?b=c");
  EXPECT_EQ(f.request->Url(), original.request->Url());
  EXPECT_EQ(f.response->status, 201);
  EXPECT_EQ(f.response->body.content, "created");  // HAR holds the decoded body
  EXPECT_EQ(FindHeader(f.response->headers, "content-encoding"), nullptr);
  EXPECT_EQ(f.client_conn_id, original.client_conn_id);
  EXPECT_NEAR(f.timings.response_end - f.timings.request_start,
              original.timings.response_end - original.timings.request_start, 1e-3);
}

// A browser's export says which page loaded each request, what started it and what kind of
// resource it is: import keeps that, and export writes it back, pages included, each page once.
TEST(HarTest, ImportKeepsPagesInitiatorAndResourceTypeAndExportWritesThemBack) {
  json har = BuildHar(Share({MakeFlow({.path = "/"}), MakeFlow({.path = "/app.js"}),
                             MakeFlow({.path = "/api"})}),
                      {});
  json& log = har["log"];
  log["pages"] = json::parse(R"([{"id":"page_1","title":"Shop","startedDateTime":"2026-01-02T03:04:05.678Z",
                                  "pageTimings":{"onLoad":120}},
                                 {"id":"page_2","title":"Cart","startedDateTime":"2026-01-02T03:05:00.000Z",
                                  "pageTimings":{}}])");
  log["entries"][0]["pageref"] = "page_1";
  log["entries"][0]["_resourceType"] = "document";
  log["entries"][0]["_initiator"] = json::parse(R"({"type":"other"})");
  log["entries"][1]["pageref"] = "page_1";
  log["entries"][1]["_resourceType"] = "script";
  log["entries"][1]["_initiator"] = json::parse(R"({"type":"parser","url":"https://a.test/","lineNumber":3})");
  log["entries"][2]["pageref"] = "page_2";
  log["entries"][2]["_resourceType"] = "fetch";
  auto imported = FlowsFromHar(har);
  ASSERT_TRUE(imported) << imported.error().message;
  ASSERT_EQ(imported->flows.size(), 3u);
  const Flow& script = imported->flows[1];
  ASSERT_TRUE(script.har);
  EXPECT_EQ(script.har->page_id, "page_1");
  EXPECT_EQ(script.har->page_title, "Shop");
  EXPECT_EQ(script.har->page_started, "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(script.har->resource_type, "script");
  EXPECT_EQ(json::parse(script.har->initiator)["lineNumber"], 3);
  EXPECT_FALSE(imported->flows[2].har->page_title.empty());
  EXPECT_TRUE(imported->flows[2].har->initiator.empty());

  std::vector<Flow> flows = imported->flows;
  flows.push_back(MakeFlow({.path = "/live"}));  // live traffic: no page
  json again = BuildHar(Share(std::move(flows)), {});
  const json& pages = again["log"]["pages"];
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0]["id"], "page_1");
  EXPECT_EQ(pages[0]["title"], "Shop");
  EXPECT_EQ(pages[0]["startedDateTime"], "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(pages[1]["id"], "page_2");
  const json& entries = again["log"]["entries"];
  EXPECT_EQ(entries[1]["pageref"], "page_1");
  EXPECT_EQ(entries[1]["_resourceType"], "script");
  EXPECT_EQ(entries[1]["_initiator"]["type"], "parser");
  EXPECT_FALSE(entries[3].contains("pageref"));
  EXPECT_FALSE(entries[3].contains("_initiator"));
}

TEST(HarTest, ImportSkipsEntriesWithoutARequest) {
  json har = json::parse(R"({"log":{"version":"1.2","entries":[
      {"request":{"method":"GET","url":"http://a.test/x"},"response":{"status":200}},
      {"response":{"status":200}},
      {"request":{"method":"GET","url":"not a url"}}]}})");
  auto imported = FlowsFromHar(har);
  ASSERT_TRUE(imported);
  EXPECT_EQ(imported->flows.size(), 1u);
  EXPECT_EQ(imported->skipped, 2u);
  EXPECT_EQ(imported->flows[0].request->port, 80);
  EXPECT_FALSE(FlowsFromHar(json::parse(R"({"nolog":1})")));
}

// har-validator's "uri" format (ajv, RFC 3986) for a reg-name or IPv6 host, without userinfo.
bool IsRfc3986Uri(const std::string& url) {
  static const std::regex kUri(
      R"(^[a-z][a-z0-9+\-.]*://(\[[0-9a-f:.]+\]|([a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*)(:\d*)?)"
      R"((/([a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*(\?([a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?$)",
      std::regex::icase);
  return std::regex_match(url, kUri);
}

TEST(HarTest, UrlIsAValidUriForAHostileHostAndPath) {
  Flow f = MakeFlow({.host = "evil host\"<>{}|\\^`\x01\xff%", .port = 8443,
                     .path = "/a b/|{}^`\"<>#frag?q=1 2&x=%41%zz?\xc3\xa9"});
  Flow tunnel = MakeFlow({.host = "t\"unnel"});
  tunnel.kind = Flow::Kind::kTunnel;
  tunnel.request.reset();
  tunnel.response.reset();
  tunnel.server_host = "t\"unnel";
  Flow v6 = MakeFlow({.host = "::1", .port = 80});
  v6.request->scheme = "http";
  json har = BuildHar(Share({f, tunnel, v6}), {});
  ASSERT_EQ(har["log"]["entries"].size(), 3u);
  std::string url = har["log"]["entries"][0]["request"]["url"];
  EXPECT_TRUE(IsRfc3986Uri(url)) << url;
  EXPECT_EQ(url, "http://evil%20host%22%3C%3E%7B%7D%7C%5C%5E%60%01%FF%25:8443"
                 "/a%20b/%7C%7B%7D%5E%60%22%3C%3E%23frag?q=1%202&x=%41%25zz?%C3%A9");
  std::string connect = har["log"]["entries"][1]["request"]["url"];
  EXPECT_TRUE(IsRfc3986Uri(connect)) << connect;
  EXPECT_EQ(connect, "https://t%22unnel:443/");
  EXPECT_EQ(har["log"]["entries"][2]["request"]["url"], "http://[::1]/v1/items?page=2");
  EXPECT_FALSE(IsRfc3986Uri("https://evil host/"));  // the check itself can fail
}

}  // namespace
}  // namespace mitmd
