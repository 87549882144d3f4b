// The viewer's JSON API against an in-process server fed with synthetic flows.

#include <openssl/x509.h>

#include "core/strings.h"
#include "flow/flow_json.h"
#include "flow/har.h"
#include "integration/web_fixture.h"
#include "support/process.h"
#include "unit/web_test_flows.h"

namespace mitmd::testing {
namespace {

using nlohmann::json;

std::string UrlEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += StrCat("%", std::string(1, kHex[c >> 4]), std::string(1, kHex[c & 15]));
    }
  }
  return out;
}

TEST_F(WebServerTest, ListsFlowsNewestFirstInPages) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::vector<std::string> ids;
  for (int i = 0; i < 25; ++i) ids.push_back(Record(MakeFlow({.path = StrCat("/item/", i)}))->id);
  WaitForFlowCount(25);

  json first = Fetch("/api/flows?limit=10").Json();
  ASSERT_EQ(first["flows"].size(), 10u);
  EXPECT_EQ(first["total"], 25);
  EXPECT_EQ(first["flows"][0]["id"], ids[24]);
  EXPECT_EQ(first["flows"][0]["path"], "/item/24");
  EXPECT_EQ(first["flows"][9]["path"], "/item/15");
  uint64_t next = first["next_before"];
  ASSERT_GT(next, 0u);

  json second = Fetch(StrCat("/api/flows?limit=10&before=", next)).Json();
  ASSERT_EQ(second["flows"].size(), 10u);
  EXPECT_EQ(second["flows"][0]["path"], "/item/14");
  json third = Fetch(StrCat("/api/flows?limit=10&before=", second["next_before"].get<uint64_t>())).Json();
  ASSERT_EQ(third["flows"].size(), 5u);
  EXPECT_EQ(third["flows"][4]["path"], "/item/0");
  EXPECT_EQ(third["next_before"], 0);

  // A summary carries what the table shows.
  const json& s = first["flows"][0];
  EXPECT_EQ(s["method"], "GET");
  EXPECT_EQ(s["host"], "api.example.com");
  EXPECT_EQ(s["status"], 200);
  EXPECT_EQ(s["type"], "application/json");
  EXPECT_EQ(s["tls"], "TLSv1.3");
  EXPECT_NEAR(s["dur"].get<double>(), 120.0, 0.5);
}

TEST_F(WebServerTest, FiltersOnTheServer) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Record(MakeFlow({.host = "a.test", .status = 200}));
  Record(MakeFlow({.method = "POST", .host = "b.test", .status = 500}));
  Record(MakeFlow({.host = "b.test", .status = 404, .content_type = "image/png"}));
  Record(MakeErrorFlow("c.test", "connect", "connection refused"));
  WaitForFlowCount(4);

  auto paths = [&](const std::string& filter) {
    json j = Fetch("/api/flows?filter=" + UrlEncode(filter)).Json();
    std::vector<std::string> hosts;
    for (const auto& f : j["flows"]) hosts.push_back(f["host"]);
    return hosts;
  };
  EXPECT_EQ(paths("status:>=400"), (std::vector<std::string>{"b.test", "b.test"}));
  EXPECT_EQ(paths("host:b.test -type:image"), (std::vector<std::string>{"b.test"}));
  EXPECT_EQ(paths("method:POST OR is:error"), (std::vector<std::string>{"c.test", "b.test"}));
  EXPECT_EQ(paths("error:refused"), (std::vector<std::string>{"c.test"}));

  HttpResult bad = Fetch("/api/flows?filter=stauts:200");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.Json().value("error", "").find("unknown field 'stauts'"), std::string::npos) << bad.body;

  json check = Fetch("/api/filter?q=host%3A").Json();
  EXPECT_EQ(check["ok"], false);
  EXPECT_NE(check.value("error", "").find("needs a value"), std::string::npos);
  EXPECT_EQ(Fetch("/api/filter?q=host%3Aa.test").Json()["ok"], true);
}

TEST_F(WebServerTest, OneFlowInFullAndItsBodiesRawAndDecoded) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string body = "{\"greeting\":\"hello\",\"list\":[1,2,3]}";
  auto flow = Record(MakeFlow({.path = "/data/report.json", .response_body = body, .gzip = true}));
  WaitForFlowCount(1);

  HttpResult detail = Fetch("/api/flows/" + flow->id);
  ASSERT_EQ(detail.status, 200);
  json d = detail.Json();
  EXPECT_EQ(d["id"], flow->id);
  EXPECT_EQ(d["response"]["status"], 200);
  EXPECT_EQ(d["response"]["body"]["content_encoding"], "gzip");
  EXPECT_FALSE(d["response"]["body"].contains("content"));  // fetched through the body endpoint
  EXPECT_TRUE(Fetch("/api/flows/" + flow->id + "?bodies=1").Json()["response"]["body"].contains("content"));

  HttpResult raw = Fetch("/api/flows/" + flow->id + "/response/body");
  ASSERT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, flow->response->body.content);  // the gzip bytes as recorded
  EXPECT_EQ(raw.headers["content-type"], "application/json");
  EXPECT_NE(raw.headers["content-security-policy"].find("sandbox"), std::string::npos);
  EXPECT_EQ(raw.headers["x-content-type-options"], "nosniff");

  HttpResult decoded = Fetch("/api/flows/" + flow->id + "/response/body?decode=1");
  EXPECT_EQ(decoded.body, body);
  EXPECT_EQ(decoded.headers["x-mitmd-decoded"], "1");
  EXPECT_EQ(decoded.headers["content-type"], "application/json");

  HttpResult download = Fetch("/api/flows/" + flow->id + "/response/body?decode=1&download=1");
  EXPECT_EQ(download.headers["content-disposition"], "attachment; filename=\"report.json\"");

  EXPECT_EQ(Fetch("/api/flows/" + flow->id + "/request/body").status, 200);
  EXPECT_EQ(Fetch("/api/flows/no-such-id").status, 404);
}

TEST_F(WebServerTest, AFlowIsFoundAsSoonAsTheStreamCouldAnnounceIt) {
  // A writer that commits only every 30 s: the flow is announced (recorded) long before its row
  // exists, as under load; opening it must not be a 404.
  store_.reset();
  auto slow = FlowStore::Open({.db_path = dir_.File("slow.sqlite"), .batch_interval = std::chrono::seconds(30)});
  ASSERT_TRUE(slow) << slow.error().message;
  store_ = std::move(*slow);
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto flow = Record(MakeFlow({.path = "/just/recorded"}));
  HttpResult detail = Fetch("/api/flows/" + flow->id);
  ASSERT_EQ(detail.status, 200) << detail.body;
  EXPECT_EQ(detail.Json()["request"]["path"], "/just/recorded");
  EXPECT_EQ(Fetch("/api/flows/" + flow->id + "/response/body").status, 200);
  EXPECT_EQ(Fetch("/api/flows/01234567-89ab-7cde-8f01-23456789abcd").status, 404);
  // Answered from the store's queue, which a Clear empties for the viewer as it does the list.
  ASSERT_EQ(Post("/api/clear", "").status, 200);
  EXPECT_EQ(Fetch("/api/flows/" + flow->id).status, 404);
}

TEST_F(WebServerTest, ClearNeedsTheMarkerHeaderAndEmptiesTheViewerOnly) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  for (int i = 0; i < 3; ++i) Record(MakeFlow({}));
  WaitForFlowCount(3);
  EXPECT_EQ(Post("/api/clear", "", {}).status, 403);  // a cross-site form cannot add the header
  EXPECT_EQ(Fetch("/api/info").Json()["flows"], 3);
  HttpResult cleared = Post("/api/clear", "");
  ASSERT_EQ(cleared.status, 200);
  EXPECT_EQ(cleared.Json()["cleared"], 3);
  EXPECT_EQ(Fetch("/api/flows").Json()["flows"].size(), 0u);
  EXPECT_EQ(store_->recorded_count(), 3u);  // the session log keeps them
  Record(MakeFlow({}));
  WaitForFlowCount(1);
}

TEST_F(WebServerTest, ImportsSessionLogsAndHarFiles) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string jsonl;
  for (int i = 0; i < 3; ++i) jsonl += FlowToJsonLine(MakeFlow({.host = "jsonl.test"})) + "\n";
  HttpResult r = Post("/api/import", jsonl);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["added"], 3);
  EXPECT_EQ(r.Json()["format"], "jsonl");

  std::vector<std::shared_ptr<const Flow>> for_har = {std::make_shared<const Flow>(MakeFlow({.host = "har.test"}))};
  HttpResult h = Post("/api/import", BuildHar(for_har, {}).dump(2));
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.Json()["format"], "har");
  json list = Fetch("/api/flows").Json();
  ASSERT_EQ(list["flows"].size(), 4u);
  EXPECT_EQ(list["flows"][0]["host"], "har.test");

  // The same files again add nothing.
  EXPECT_EQ(Post("/api/import", jsonl).Json()["added"], 0);
  EXPECT_EQ(Post("/api/import", BuildHar(for_har, {}).dump(2)).Json()["added"], 0);
  EXPECT_EQ(Fetch("/api/flows").Json()["flows"].size(), 4u);

  HttpResult junk = Post("/api/import", "this is not a flow file");
  EXPECT_EQ(junk.status, 400);
  EXPECT_FALSE(junk.Json().value("error", "").empty());
}

TEST_F(WebServerTest, ShowsImportedFlowsBeforeLiveOnes) {
  ASSERT_TRUE(store_->Import({MakeFlow({.host = "old.test"})}, "har:old.har"));
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Record(MakeFlow({.host = "new.test"}));
  WaitForFlowCount(2);
  json list = Fetch("/api/flows").Json();
  EXPECT_EQ(list["flows"][0]["host"], "new.test");
  EXPECT_EQ(list["flows"][1]["host"], "old.test");
  EXPECT_EQ(list["flows"][1]["source"], "har:old.har");
  EXPECT_EQ(list["flows"][0]["source"], "");
}

TEST_F(WebServerTest, HarExportFollowsTheFilter) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Record(MakeFlow({.host = "keep.test", .response_body = "{\"k\":1}", .gzip = true}));
  Record(MakeFlow({.host = "drop.test"}));
  Record(MakeFlow({.host = "keep.test", .status = 404}));
  WaitForFlowCount(3);

  HttpResult all = Fetch("/api/export.har");
  ASSERT_EQ(all.status, 200);
  EXPECT_NE(all.headers["content-disposition"].find(".har\""), std::string::npos);
  EXPECT_EQ(all.Json()["log"]["entries"].size(), 3u);

  HttpResult some = Fetch("/api/export.har?filter=host%3Akeep.test");
  json har = some.Json();
  ASSERT_EQ(har["log"]["entries"].size(), 2u);
  EXPECT_EQ(har["log"]["version"], "1.2");
  EXPECT_EQ(har["log"]["entries"][0]["response"]["content"]["text"], "{\"k\":1}");  // decoded
  EXPECT_EQ(har["log"]["entries"][1]["response"]["status"], 404);  // oldest first
}

TEST_F(WebServerTest, HarExportOfALargeSessionStreamsInBatches) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  constexpr int kFlows = 1200;
  const std::string body = "{\"blob\":\"" + std::string(4000, 'b') + "\"}";
  for (int i = 0; i < kFlows; ++i) Record(MakeFlow({.path = StrCat("/n/", i), .response_body = body}));
  WaitForFlowCount(kFlows);
  HttpResult r = Fetch("/api/export.har");
  ASSERT_EQ(r.status, 200);
  EXPECT_GT(r.body.size(), 5u << 20);  // several 1 MiB batches
  json har = r.Json();
  ASSERT_EQ(har["log"]["entries"].size(), static_cast<size_t>(kFlows));
  EXPECT_EQ(har["log"]["entries"][0]["request"]["url"], "https://api.example.com/n/0");
  EXPECT_EQ(har["log"]["entries"][kFlows - 1]["response"]["content"]["text"], body);
  // The connection stays usable after a streamed export.
  EXPECT_EQ(Fetch("/api/info").status, 200);
}

TEST_F(WebServerTest, ServesThePageWithEtagsAndStrictHeaders) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  HttpResult page = Fetch("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.headers["content-type"].find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("<html"), std::string::npos);
  EXPECT_NE(page.headers["content-security-policy"].find("default-src 'self'"), std::string::npos);
  std::string etag = page.headers["etag"];
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(Fetch("/", {"-H", "If-None-Match: " + etag}).status, 304);
  EXPECT_EQ(Fetch("/no/such/file.js").status, 404);
  EXPECT_EQ(Fetch("/api/nothing").status, 404);
}

TEST_F(WebServerTest, RootCertificatePageAndDownloads) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  HttpResult page = Fetch("/ca");
  ASSERT_EQ(page.status, 200);
  for (const char* needle : {"Linux", "Firefox", "macOS", "Windows", "Android", "iOS",
                             "/ca/mitmd-ca.pem", "/ca/mitmd-ca.cer", "certutil"}) {
    EXPECT_NE(page.body.find(needle), std::string::npos) << needle;
  }
  EXPECT_NE(page.body.find(ca_->root_fingerprint_sha256()), std::string::npos);

  HttpResult pem = Fetch("/ca/mitmd-ca.pem");
  EXPECT_EQ(pem.body, ca_->root_pem());
  EXPECT_NE(pem.headers["content-disposition"].find("mitmd-ca.pem"), std::string::npos);

  HttpResult der = Fetch("/ca/mitmd-ca.cer");
  const uint8_t* p = reinterpret_cast<const uint8_t*>(der.body.data());
  bssl::UniquePtr<X509> parsed(d2i_X509(nullptr, &p, static_cast<long>(der.body.size())));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(X509_cmp(parsed.get(), ca_->root()), 0);

  // Android's file name is OpenSSL's old-style subject hash, as `openssl x509` computes it.
  ProcessResult hash = RunProcess({"openssl", "x509", "-in", ca_->root_cert_path(), "-noout",
                                   "-subject_hash_old"}, std::chrono::seconds(10));
  ASSERT_EQ(hash.exit_code, 0) << hash.err;
  std::string name = hash.out.substr(0, hash.out.find('\n')) + ".0";
  EXPECT_NE(page.body.find(name), std::string::npos) << name;
  HttpResult android = Fetch("/ca/" + name);
  EXPECT_EQ(android.status, 200);
  EXPECT_EQ(android.body, ca_->root_pem());
  EXPECT_EQ(Fetch("/ca/other.0").status, 404);
}

TEST_F(WebServerTest, RootPageFollowsAReloadedRoot) {
  web::WebOptions options;
  options.tls = true;
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(options)));
  std::string old_pem = ca_->root_pem();
  ASSERT_EQ(Fetch("/ca/mitmd-ca.pem").body, old_pem);

  // Another install's root replaces this one's files, and mitmd reloads them.
  TempDir other_dir;
  auto other = ca::Authority::LoadOrCreate(other_dir.File("conf"));
  ASSERT_TRUE(other) << other.error().message;
  WriteFile(ca_->root_cert_path(), ReadFile((*other)->root_cert_path()));
  WriteFile(ca_->root_key_path(), ReadFile((*other)->root_key_path()));
  auto reloaded = ca_->Reload();
  ASSERT_TRUE(reloaded) << reloaded.error().message;
  ASSERT_NE(ca_->root_pem(), old_pem);

  // curl trusts the new root file now: the viewer's own certificate must come from it too.
  HttpResult pem = Fetch("/ca/mitmd-ca.pem");
  ASSERT_EQ(pem.status, 200) << pem.error;
  EXPECT_EQ(pem.body, ca_->root_pem());
  EXPECT_NE(Fetch("/ca").body.find(ca_->root_fingerprint_sha256()), std::string::npos);
}

TEST_F(WebServerTest, ConnectionsListTheRegistry) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  uint64_t client = conns_.OpenClient("127.0.0.1:50000", "127.0.0.1:8080");
  uint64_t up = conns_.OpenUpstream(client, "example.test", 443);
  conns_.AddRequest(up);
  conns_.AddRequest(up);
  conns_.AddBytes(up, 4000, 300);
  conns_.Close(client, ClosedBy::kPeer, "client closed");
  json j = Fetch("/api/connections").Json();
  EXPECT_EQ(j["open"], 1);
  EXPECT_EQ(j["closed"], 1);
  ASSERT_EQ(j["connections"].size(), 2u);
  EXPECT_EQ(j["connections"][0]["id"], up);
  EXPECT_EQ(j["connections"][0]["reused"], true);
  EXPECT_EQ(j["connections"][0]["bytes_in"], 4000);
  EXPECT_EQ(j["connections"][1]["closed_by"], "peer");
}

}  // namespace
}  // namespace mitmd::testing
