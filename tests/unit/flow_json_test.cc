#include "flow/flow_json.h"

#include <atomic>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <thread>

#include "flow/flow_store.h"
#include "support/temp_dir.h"

namespace mitmd {
namespace {

Flow SampleFlow() {
  Flow f;
  f.id = "6f1c1a52-3e0b-4b5e-9d4f-0a8d2b7c9e11";
  f.client_conn_id = 7;
  f.upstream_conn_id = 8;
  f.client_addr = "127.0.0.1:50000";
  f.server_host = "localhost";
  f.server_port = 4433;
  f.server_addr = "127.0.0.1:4433";
  f.client_tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "http/1.1", "localhost",
                         {"h2", "http/1.1"}};
  f.server_tls = TlsInfo{"TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "", "localhost", {}};
  CertInfo cert;
  cert.subject = "CN=localhost";
  cert.issuer = "CN=Test CA";
  cert.sans = {"DNS:localhost", "IP:127.0.0.1"};
  cert.sha256 = "ab";
  cert.not_before = "2026-01-01T00:00:00Z";
  cert.not_after = "2027-01-01T00:00:00Z";
  cert.verified = true;
  f.server_cert = cert;
  HttpRequest req;
  req.method = "POST";
  req.scheme = "https";
  req.host = "localhost";
  req.port = 4433;
  req.target = "/submit?x=1";
  req.path = "/submit?x=1";
  req.version = "HTTP/1.1";
  req.headers = {{"Host", "localhost:4433"}, {"X-MiXeD-Case", "1"}, {"x-dup", "a"}, {"X-Dup", "b"}};
  req.body.Append("hello", 5, 1024);
  f.request = req;
  HttpResponse resp;
  resp.status = 200;
  resp.reason = "OK";
  resp.version = "HTTP/1.1";
  resp.headers = {{"Content-Type", "application/octet-stream"}};
  const char binary[] = {'\x00', '\xff', '\x10', 'a'};
  resp.body.Append(binary, sizeof(binary), 3);
  resp.trailers = {{"X-Checksum", "42"}};
  resp.informational = {100};
  f.response = resp;
  f.timings.accepted = 1.5;
  f.timings.request_start = 2.25;
  f.body_record_cap = 3;
  return f;
}

TEST(FlowJsonTest, GoldenRecord) {
  nlohmann::json j = FlowToJson(SampleFlow());
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["kind"], "http");
  EXPECT_EQ(j["client"]["tls"]["alpn_offered"], nlohmann::json({"h2", "http/1.1"}));
  EXPECT_EQ(j["server"]["cert"]["sans"][1], "IP:127.0.0.1");
  EXPECT_EQ(j["request"]["url"], "https://localhost:4433/submit?x=1");
  // Headers: an ordered list of pairs, case and duplicates as sent.
  EXPECT_EQ(j["request"]["headers"],
            nlohmann::json::parse(R"([["Host","localhost:4433"],["X-MiXeD-Case","1"],)"
                                  R"(["x-dup","a"],["X-Dup","b"]])"));
  EXPECT_EQ(j["request"]["body"],
            nlohmann::json::parse(R"({"size":5,"truncated":false,"encoding":"text","content":"hello"})"));
  // Binary bodies are base64; the cap shows as truncated with the full size kept.
  EXPECT_EQ(j["response"]["body"],
            nlohmann::json::parse(R"({"size":4,"truncated":true,"encoding":"base64","content":"AP8Q"})"));
  EXPECT_EQ(j["response"]["trailers"], nlohmann::json::parse(R"([["X-Checksum","42"]])"));
  EXPECT_EQ(j["response"]["informational"], nlohmann::json({100}));
  EXPECT_EQ(j["timings"]["request_start"], 2.25);
  EXPECT_FALSE(j.contains("error"));
}

TEST(FlowJsonTest, RoundTrips) {
  Flow f = SampleFlow();
  f.error = FlowError{"upstream_tls", "upstream certificate has expired (notAfter 2020-01-01)"};
  f.har = HarContext{"page_1", "Shop \"cart\"", "2026-01-02T03:04:05.678Z",
                     R"({"type":"script","url":"https://a.test/app.js"})", "fetch"};
  EXPECT_EQ(FlowToJsonLine(f), FlowToJson(f).dump());  // the two writers agree on every field
  auto back = FlowFromJson(nlohmann::json::parse(FlowToJsonLine(f)));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(FlowToJson(*back), FlowToJson(f));
  EXPECT_EQ(back->har, f.har);
  EXPECT_EQ(back->response->body.content, std::string("\x00\xff\x10", 3));
  EXPECT_EQ(back->error->phase, "upstream_tls");
}

TEST(FlowJsonTest, RejectsForeignRecords) {
  EXPECT_FALSE(FlowFromJson(nlohmann::json::parse("[1,2]")));
  EXPECT_FALSE(FlowFromJson(nlohmann::json::parse(R"({"schema":2,"id":"x"})")));
  EXPECT_FALSE(FlowFromJson(nlohmann::json::parse(R"({"schema":1})")));
}

// Replaces every scalar in |j| in turn with a value of another type and hands each variant to |fn|
// with the member's path.
void ForEachWrongType(const nlohmann::json& j, const std::string& path,
                      const std::function<void(const nlohmann::json&, const std::string&)>& fn,
                      nlohmann::json& root, nlohmann::json& at) {
  if (j.is_object()) {
    for (auto& [key, value] : at.items()) {
      ForEachWrongType(value, path.empty() ? key : path + "." + key, fn, root, value);
    }
    return;
  }
  if (j.is_array()) {
    for (size_t i = 0; i < at.size(); ++i) {
      ForEachWrongType(at[i], path + "[" + std::to_string(i) + "]", fn, root, at[i]);
    }
    return;
  }
  nlohmann::json saved = at;
  for (const nlohmann::json& wrong : {nlohmann::json("1"), nlohmann::json(1.5),
                                      nlohmann::json::array(), nlohmann::json::object(),
                                      nlohmann::json(-1), nlohmann::json(true)}) {
    if (wrong.type() == saved.type()) continue;
    if (saved.is_number() && wrong.is_number()) continue;
    at = wrong;
    fn(root, path);
  }
  at = saved;
}

TEST(FlowJsonTest, AWrongTypeAnywhereIsAnErrorNamingTheMember) {
  Flow f = SampleFlow();
  f.error = FlowError{"response", "reset"};
  f.note = "n";
  nlohmann::json root = nlohmann::json::parse(FlowToJsonLine(f));
  nlohmann::json copy = root;
  size_t variants = 0;
  ForEachWrongType(copy, "", [&](const nlohmann::json& j, const std::string& path) {
    ++variants;
    Result<Flow> back = std::unexpected(Error{"not run"});
    ASSERT_NO_THROW(back = FlowFromJson(j)) << path;
    // "url" is derived on the way out and never read back.
    if (path == "request.url") return;
    ASSERT_FALSE(back) << path;
    std::string member = path.substr(0, path.find('['));
    EXPECT_NE(back.error().message.find(member), std::string::npos)
        << path << ": " << back.error().message;
  }, copy, copy);
  EXPECT_GT(variants, 100u);

  auto schema_string = FlowFromJson(nlohmann::json::parse(R"({"schema":"1","id":"x"})"));
  ASSERT_FALSE(schema_string);
  EXPECT_EQ(schema_string.error().message,
            "schema: expected an integer from -2147483648 to 2147483647, got string");
  auto port = nlohmann::json::parse(FlowToJsonLine(f));
  port["server"]["port"] = 70000;
  auto big = FlowFromJson(port);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message, "server.port: expected an integer from 0 to 65535, got a number out of range");
}

TEST(FlowJsonTest, HeaderBytesThatAreNotUtf8RoundTripExactly) {
  Flow f = SampleFlow();
  f.request->headers.emplace_back("X-Bad", std::string("\xc3\x28", 2));
  f.response->headers.emplace_back(std::string("X-\xff", 3), "name");
  std::string line = FlowToJsonLine(f);
  EXPECT_TRUE(nlohmann::json::accept(line));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find(R"(["X-Bad","\\xc3(",{"value_b64":"wyg="}])"), std::string::npos) << line;
  EXPECT_NE(line.find(R"(["X-\\xff","name",{"name_b64":"WC3/"}])"), std::string::npos) << line;
  auto back = FlowFromJson(nlohmann::json::parse(line));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->request->headers, f.request->headers);
  EXPECT_EQ(back->response->headers, f.response->headers);
}

TEST(FlowJsonTest, AHeaderWithBadBytesIsAnErrorNamingIt) {
  nlohmann::json j = FlowToJson(SampleFlow());
  j["request"]["headers"] = nlohmann::json::parse(R"([["A","b"],["X","y",{"value_b64":"%%"}]])");
  auto bad = FlowFromJson(j);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "request.headers[1][2].value_b64: not valid base64");
  j["request"]["headers"] = nlohmann::json::parse(R"([["X","y","z"]])");
  bad = FlowFromJson(j);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("request.headers[0]"), std::string::npos)
      << bad.error().message;
}

TEST(BodyRecordTest, CapsTheCopyButCountsEverything) {
  BodyRecord b;
  b.Append("abc", 3, 4);
  b.Append("def", 3, 4);
  EXPECT_EQ(b.content, "abcd");
  EXPECT_EQ(b.size, 6u);
  EXPECT_TRUE(b.truncated);
  BodyRecord none;
  none.Append("abc", 3, 0);
  EXPECT_EQ(none.content, "");
  EXPECT_TRUE(none.truncated);
}

TEST(FlowStoreTest, AppendsWholeLinesFromManyThreads) {
  testing::TempDir dir;
  std::string path = dir.File("flows.jsonl");
  {
    auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .jsonl_path = path});
    ASSERT_TRUE(store) << store.error().message;
    std::atomic<int> notified = 0;
    (*store)->Subscribe([&](const std::shared_ptr<const Flow>&, uint64_t) { ++notified; });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
          auto f = std::make_shared<Flow>(SampleFlow());
          f->id = NewFlowId();
          (*store)->Record(f);
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ((*store)->recorded_count(), 200u);
    EXPECT_EQ(notified, 200);
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    auto f = FlowFromJson(nlohmann::json::parse(line));
    ASSERT_TRUE(f) << f.error().message;
    ++lines;
  }
  EXPECT_EQ(lines, 200);
}

TEST(FlowStoreTest, UnwritablePathIsAnActionableError) {
  testing::TempDir dir;
  auto store = FlowStore::Open({.db_path = dir.File("s.sqlite"), .jsonl_path = "/nonexistent-dir/flows.jsonl"});
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message.find("cannot open the session log /nonexistent-dir/flows.jsonl"),
            std::string::npos);
}

}  // namespace
}  // namespace mitmd
