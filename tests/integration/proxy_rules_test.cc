// Hold, edit, kill, replay and rules with real clients: curl through a real mitmd, the viewer's
// API driven like the viewer drives it, a TLS upstream that echoes what it got; a held HTTP/2
// stream next to a running one; replay through the proxy listener whatever --mode listens first;
// a binary body edited through the API.

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "core/strings.h"
#include "integration/proxy_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

using nlohmann::json;

class ProxyRulesTest : public ProxyTest {
 protected:
  void Start(std::vector<std::string> args) {
    if (upstream_ == nullptr) upstream_ = StartUpstream(TlsUpstream());
    ASSERT_NE(upstream_, nullptr);
    args.insert(args.end(), {"--web", "127.0.0.1:0"});
    ASSERT_NO_FATAL_FAILURE(StartMitmd(args));
    std::smatch m;
    std::string out = mitmd_.StdoutText();
    ASSERT_TRUE(std::regex_search(out, m, std::regex("viewer listening on (http://[^/\\s]+)")))
        << out;
    viewer_ = m[1];
  }
  std::string Url(const std::string& path) const {
    return StrCat("https://127.0.0.1:", upstream_->port(), path);
  }
  json Api(const std::string& method, const std::string& path, const std::string& body = "") {
    std::vector<std::string> args = {"-X", method, "-H", "X-Mitmd: 1", viewer_ + path};
    if (!body.empty()) args.insert(args.end(), {"--data-binary", body});
    ProcessResult r = RunCurl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  // Waits (bounded) for one held flow and returns its id.
  std::string WaitForHeld() {
    for (int i = 0; i < 200; ++i) {
      json hold = Api("GET", "/api/hold");
      if (!hold["held"].empty()) return hold["held"][0]["id"];
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "no flow was held";
    return "";
  }
  std::future<ProcessResult> CurlLater(std::vector<std::string> args) {
    return std::async(std::launch::async, [this, args] { return mitmd_.Curl(args); });
  }

  UpstreamServer* upstream_ = nullptr;
  std::string viewer_;
};

TEST_F(ProxyRulesTest, HeldRequestEditedInTheApiReachesTheServerEdited) {
  ASSERT_NO_FATAL_FAILURE(Start({"--hold", "path:/echo"}));
  auto curl = CurlLater({"-H", "X-Original: 1", Url("/echo")});
  std::string id = WaitForHeld();
  ASSERT_FALSE(id.empty());
  json flow = Api("GET", "/api/flows/" + id);
  EXPECT_EQ(flow["state"], "held");
  json resume = Api("POST", "/api/flows/" + id + "/resume",
                    R"({"request": {"method": "POST", "headers": [["Host", "127.0.0.1"],)"
                    R"( ["X-Edited", "yes"]], "body": "edited body"}})");
  EXPECT_EQ(resume["ok"], true) << resume.dump();
  ProcessResult r = curl.get();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json echo = json::parse(r.out);
  EXPECT_EQ(echo["method"], "POST");
  EXPECT_EQ(HeaderValue(echo["headers"], "X-Edited"), "yes");
  EXPECT_EQ(HeaderValue(echo["headers"], "X-Original"), "");
  EXPECT_EQ(echo["body"], "edited body");
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["request"]["method"], "POST");
  ASSERT_TRUE(flows[0].contains("modified_by"));
  // A second resume of the same flow does nothing and says so.
  ProcessResult late = RunCurl({"-X", "POST", "-H", "X-Mitmd: 1", "-w", "%{http_code}",
                                viewer_ + "/api/flows/" + id + "/resume"});
  EXPECT_NE(late.out.find("not held"), std::string::npos) << late.out;
  EXPECT_TRUE(late.out.ends_with("409")) << late.out;
}

TEST_F(ProxyRulesTest, KilledRequestGetsAnErrorSayingSo) {
  ASSERT_NO_FATAL_FAILURE(Start({"--hold", "path:/echo"}));
  auto curl = CurlLater({"-w", "\n%{http_code}", Url("/echo")});
  std::string id = WaitForHeld();
  EXPECT_EQ(Api("POST", "/api/flows/" + id + "/kill")["ok"], true);
  ProcessResult r = curl.get();
  EXPECT_NE(r.out.find("killed"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("502")) << r.out;
  auto flows = mitmd_.WaitForFlows(1);
  EXPECT_EQ(flows[0]["error"]["phase"], "killed");
}

TEST_F(ProxyRulesTest, RulesSetInTheApiApplyAndPersist) {
  ASSERT_NO_FATAL_FAILURE(Start({"--modify-headers", "|path:/echo|X-From-Option|1"}));
  json put = Api(
      "PUT", "/api/rules",
      R"({"rules": [)"
      R"({"kind": "modify-headers", "spec": "|path:/echo|X-From-Api|2", "enabled": true},)"
      R"({"kind": "modify-body", "spec": "|path:/echo|\"method\": *\"GET\"|\"method\": \"MOCKED\"", "enabled": true}]})");
  ASSERT_EQ(put["rules"].size(), 2u) << put.dump();
  ProcessResult r = mitmd_.Curl({Url("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json echo = json::parse(r.out);
  EXPECT_EQ(HeaderValue(echo["headers"], "X-From-Api"), "2");
  EXPECT_EQ(HeaderValue(echo["headers"], "X-From-Option"), "");  // replaced by the PUT
  EXPECT_EQ(echo["method"], "MOCKED");                           // the response body was rewritten
  auto flows = mitmd_.WaitForFlows(1);
  EXPECT_EQ(flows[0]["modified_by"].size(), 3u) << flows[0]["modified_by"].dump();
  std::string saved = ReadFile(mitmd_.confdir() + "/rules.json");
  EXPECT_NE(saved.find("X-From-Api"), std::string::npos);
}

TEST_F(ProxyRulesTest, ReplayRecordsANewFlowThatNamesTheOriginal) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  ProcessResult first = mitmd_.Curl({"-d", "payload", Url("/echo")});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto flows = mitmd_.WaitForFlows(1);
  std::string original = flows[0]["id"];
  json replay = Api("POST", "/api/flows/" + original + "/replay",
                    R"({"request": {"body": "edited payload"}})");
  ASSERT_TRUE(replay.contains("id")) << replay.dump();
  flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[1]["id"], replay["id"]);
  EXPECT_EQ(flows[1]["replay_of"], original);
  EXPECT_EQ(flows[1]["response"]["status"], 200);
  EXPECT_NE(BodyContent(flows[1]["response"]["body"]).find("edited payload"), std::string::npos);

  // The command line replays a session log through the running proxy.
  ProcessResult cli = RunProcess({MITMD_BINARY, "replay", mitmd_.flows_path(), "--filter",
                                  "method:POST", "--proxy", StrCat("127.0.0.1:", mitmd_.port())},
                                 std::chrono::seconds(30));
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("replayed 2 of 2"), std::string::npos) << cli.out;
  flows = mitmd_.WaitForFlows(4);
  ASSERT_EQ(flows.size(), 4u);
  EXPECT_EQ(flows[2]["replay_of"], original);
}

// Python requests, as a user's script would: a map-local mock and a header rule, through mitmd.
TEST_F(ProxyRulesTest, PythonRequestsGetsTheMockAndTheRewrittenHeader) {
  std::string mock = dir_.File("mock.json");
  WriteFile(mock, R"({"mocked": true})");
  ASSERT_NO_FATAL_FAILURE(Start({"--map-local", "|path:/api/mock.json|" + mock,
                                 "--modify-headers", "|path:/echo|X-From-Rule|py"}));
  std::string script = StrCat(
      "import requests, sys\n"
      "s = requests.Session()\n"
      "s.proxies = {'https': '", mitmd_.proxy_url(), "'}\n"
      "s.verify = '", mitmd_.ca_cert_path(), "'\n"
      "r = s.get('", Url("/api/mock.json"), "')\n"
      "print(r.status_code, r.headers['Content-Type'], r.json())\n"
      "e = s.post('", Url("/echo"), "', data=b'hello').json()\n"
      "print([v for n, v in e['headers'] if n == 'X-From-Rule'], e['body'])\n");
  ProcessResult r = RunProcess({"/usr/bin/python3", "-c", script}, std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200 application/json {'mocked': True}\n['py'] hello\n");
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0]["modified_by"][0]["rule"], "map-local |path:/api/mock.json|" + mock);
  EXPECT_EQ(flows[1]["modified_by"][0]["after"], "py");
}

TEST_F(ProxyRulesTest, ReplayGoesThroughTheProxyListenerWhenReverseListensFirst) {
  upstream_ = StartUpstream(TlsUpstream());
  ASSERT_NE(upstream_, nullptr);
  std::string port = StrCat(upstream_->port());
  ASSERT_NO_FATAL_FAILURE(Start({"--mode", "reverse:https://localhost:" + port, "--mode",
                                 "regular@0"}));
  // mitmd_.port() is the first listener: the reverse one.
  ProcessResult first = RunCurl({"--cacert", mitmd_.ca_cert_path(), "-d", "payload",
                                 StrCat("https://localhost:", mitmd_.port(), "/echo")});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows[0]["client"]["entry"], "reverse");
  json replay = Api("POST", "/api/flows/" + flows[0]["id"].get<std::string>() + "/replay");
  ASSERT_TRUE(replay.contains("id")) << replay.dump();
  flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[1]["replay_of"], flows[0]["id"]);
  EXPECT_EQ(flows[1]["response"]["status"], 200) << flows[1].dump();
  EXPECT_NE(flows[1]["client"].value("entry", ""), "reverse")
      << "the replay went through the regular listener";
}

TEST_F(ProxyRulesTest, ReplayWithoutAProxyListenerSaysWhy) {
  upstream_ = StartUpstream(TlsUpstream());
  ASSERT_NE(upstream_, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start({"--mode", StrCat("reverse:https://localhost:", upstream_->port())}));
  ProcessResult first = RunCurl({"--cacert", mitmd_.ca_cert_path(),
                                 StrCat("https://localhost:", mitmd_.port(), "/echo")});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto flows = mitmd_.WaitForFlows(1);
  ProcessResult r = RunCurl({"-X", "POST", "-H", "X-Mitmd: 1", "-w", "\n%{http_code}",
                             viewer_ + "/api/flows/" + flows[0]["id"].get<std::string>() +
                                 "/replay"});
  EXPECT_NE(r.out.find("replay needs a proxy listener"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("503")) << r.out;
}

TEST_F(ProxyRulesTest, BinaryBodyEditedAsBase64) {
  ASSERT_NO_FATAL_FAILURE(Start({"--hold", "path:/echo"}));
  auto curl = CurlLater({"--data-binary", "text", Url("/echo")});
  std::string id = WaitForHeld();
  ASSERT_FALSE(id.empty());
  // 00 ff 0a 83: not text, so not a JSON string.
  json resume =
      Api("POST", "/api/flows/" + id + "/resume", R"({"request": {"body_base64": "AP8Kgw=="}})");
  EXPECT_EQ(resume["ok"], true) << resume.dump();
  ProcessResult r = curl.get();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto flows = mitmd_.WaitForFlows(1);
  EXPECT_EQ(BodyContent(flows[0]["request"]["body"]), std::string("\x00\xff\n\x83", 4))
      << flows[0]["request"]["body"].dump();
  EXPECT_EQ(flows[0]["request"]["body"]["size"], 4);
}

// A held HTTP/2 stream waits while another stream of the same client connection completes; the
// held one then resumes edited. The client's HTTP/2 mirrors the server's, so the server is
// nghttpd (h2 only).
TEST_F(ProxyRulesTest, HeldHttp2StreamWaitsWhileItsNeighbourFlows) {
  std::string nghttpd = access("/usr/sbin/nghttpd", X_OK) == 0 ? "/usr/sbin/nghttpd"
                                                                : "/usr/bin/nghttpd";
  if (access(nghttpd.c_str(), X_OK) != 0) GTEST_SKIP() << "nghttpd is not installed";
  std::string docroot = dir_.File("htdocs");
  ASSERT_EQ(::mkdir(docroot.c_str(), 0700), 0);
  std::ofstream(docroot + "/held.txt") << "held resource\n";
  std::ofstream(docroot + "/free.txt") << "free resource\n";
  uint16_t port = RefusingPort().port();
  ChildProcess server;
  ASSERT_TRUE(server.Start({nghttpd, "-a", "127.0.0.1", "-d", docroot, StrCat(port),
                            localhost_files_.key, localhost_files_.cert},
                           {}, dir_.File("nghttpd.out"), dir_.File("nghttpd.err")));
  std::string base = StrCat("https://localhost:", port);
  for (int i = 0; i < 200 && DirectCurl({"--http2", "-o", "/dev/null", "-w", "%{http_code}",
                                          base + "/free.txt"}).out != "200";
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NO_FATAL_FAILURE(Start({"--hold", "path:/held.txt"}));
  // One connection: curl waits for it to say h2, then multiplexes both requests on it.
  auto curl = CurlLater({"--http2", "--parallel", "-o", dir_.File("held.out"), base + "/held.txt",
                         "-o", dir_.File("free.out"), base + "/free.txt"});
  std::string id = WaitForHeld();
  ASSERT_FALSE(id.empty());
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["request"]["path"], "/free.txt") << "the neighbour completed meanwhile";
  EXPECT_EQ(flows[0]["request"]["version"], "HTTP/2");
  json held = Api("GET", "/api/flows/" + id);
  EXPECT_EQ(held["state"], "held");
  EXPECT_EQ(held["client"]["conn"], flows[0]["client"]["conn"]) << "one client connection";
  EXPECT_NE(held["stream_id"], flows[0]["stream_id"]);

  json resume = Api("POST", "/api/flows/" + id + "/resume",
                    R"({"request": {"url": ")" + base + R"(/free.txt"}})");
  EXPECT_EQ(resume["ok"], true) << resume.dump();
  ProcessResult r = curl.get();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(dir_.File("held.out")), "free resource\n") << "resumed with the edited URL";
  EXPECT_EQ(ReadFile(dir_.File("free.out")), "free resource\n");
  flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[1]["id"], id);
  EXPECT_EQ(flows[1]["response"]["status"], 200) << flows[1].dump();
  server.Kill();
}

}  // namespace
}  // namespace mitmd::testing
