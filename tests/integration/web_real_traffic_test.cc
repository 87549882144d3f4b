// The viewer of a real mitmd process with real traffic: curl through the proxy to a TLS upstream,
// then the viewer's API; the session log shown again after a restart; --fresh, --load, --web-tls.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <thread>

#include "core/strings.h"
#include "integration/proxy_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

using nlohmann::json;

const std::vector<std::string> kWebAnyPort = {"--web", "127.0.0.1:0"};

// The "viewer listening on URL" line of mitmd's stdout, without the trailing slash.
std::string ViewerUrl(const MitmdProcess& m) {
  std::smatch match;
  std::string out = m.StdoutText();
  if (!std::regex_search(out, match, std::regex("viewer listening on (\\S+)/"))) return "";
  return match[1];
}

struct Reply {
  int status = 0;
  std::string body;
  json Json() const {
    json j = json::parse(body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << body.substr(0, 400);
    return j;
  }
};

Reply Get(const std::string& url, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"-w", "\n%{http_code}"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  ProcessResult r = RunCurl(args, std::chrono::seconds(20));
  Reply out;
  size_t nl = r.out.rfind('\n');
  if (nl == std::string::npos) return out;
  out.status = std::atoi(r.out.c_str() + nl + 1);
  out.body = r.out.substr(0, nl);
  return out;
}

// Polls the viewer until it lists |n| flows, all finished. A flow is listed live from its
// request on, and the proxy hands the response to the client before the store has applied
// the flow's last update, so a client that has its answer may still see the flow "live".
json WaitForViewerFlows(const std::string& base, size_t n, const std::string& filter = "") {
  json last;
  for (int i = 0; i < 200; ++i) {
    last = Get(base + "/api/flows?filter=" + filter).Json();
    if (last.contains("flows") && last["flows"].size() >= n &&
        std::all_of(last["flows"].begin(), last["flows"].end(),
                    [](const json& f) { return f.value("state", "") == "done"; })) {
      return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ADD_FAILURE() << "the viewer did not list " << n << " flows: " << last.dump().substr(0, 1000);
  return last;
}

TEST_F(ProxyTest, ViewerShowsRealFlowsWithDecodedBodies) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd(kWebAnyPort));
  std::string base = ViewerUrl(mitmd_);
  ASSERT_FALSE(base.empty()) << mitmd_.StdoutText();

  ProcessResult r = mitmd_.Curl({"-o", "/dev/null", up->Url("/gzip-json", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = mitmd_.Curl({"-o", "/dev/null", up->Url("/status/404", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  json list = WaitForViewerFlows(base, 2);
  ASSERT_EQ(list["flows"].size(), 2u);
  const json& newest = list["flows"][0];
  const json& gz = list["flows"][1];
  EXPECT_EQ(newest["status"], 404);
  EXPECT_EQ(gz["path"], "/gzip-json");
  EXPECT_EQ(gz["status"], 200);
  EXPECT_EQ(gz["type"], "application/json");
  EXPECT_EQ(gz["host"], "localhost");
  EXPECT_EQ(gz["tls"], "TLSv1.3");

  Reply decoded = Get(base + "/api/flows/" + gz["id"].get<std::string>() + "/response/body?decode=1");
  EXPECT_EQ(decoded.status, 200);
  EXPECT_EQ(decoded.body, kGzipJsonPlain);

  json detail = Get(base + "/api/flows/" + gz["id"].get<std::string>()).Json();
  EXPECT_EQ(detail["server"]["cert"]["verified"], true);
  EXPECT_EQ(detail["response"]["body"]["content_encoding"], "gzip");

  json only404 = WaitForViewerFlows(base, 1, "status%3A4xx");
  ASSERT_EQ(only404["flows"].size(), 1u);
  EXPECT_EQ(only404["flows"][0]["status"], 404);

  json har = Get(base + "/api/export.har").Json();
  ASSERT_EQ(har["log"]["entries"].size(), 2u);
  EXPECT_EQ(har["log"]["entries"][0]["response"]["content"]["text"], kGzipJsonPlain);
}

TEST_F(ProxyTest, ViewerCountsRequestsOnAKeptAliveConnection) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd(kWebAnyPort));
  std::string base = ViewerUrl(mitmd_);
  // One curl, two URLs: one client connection (and one upstream connection) carries both.
  ProcessResult r = mitmd_.Curl({"-o", "/dev/null", "-o", "/dev/null", up->Url("/bytes/10", "localhost"),
                                 up->Url("/bytes/20", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = WaitForViewerFlows(base, 2);
  ASSERT_EQ(list["flows"].size(), 2u);
  EXPECT_EQ(list["flows"][0]["conn"], list["flows"][1]["conn"]) << list.dump();
  EXPECT_NE(list["flows"][0]["conn"], 0);

  json conns = Get(base + "/api/connections").Json();
  uint64_t client_id = list["flows"][0]["conn"];
  bool found = false;
  for (const auto& c : conns["connections"]) {
    if (c["id"] == client_id) {
      found = true;
      EXPECT_EQ(c["side"], "client");
      EXPECT_EQ(c["requests"], 2);
    }
  }
  EXPECT_TRUE(found) << "client connection " << client_id << " is not in " << conns.dump().substr(0, 2000);
}

TEST_F(ProxyTest, SessionLogIsShownAgainAfterARestartUnlessFresh) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd(kWebAnyPort));
  for (const char* path : {"/bytes/1", "/bytes/2"}) {
    ProcessResult r = mitmd_.Curl({"-o", "/dev/null", up->Url(path, "localhost")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_EQ(mitmd_.WaitForFlows(2).size(), 2u);
  // Export a HAR from the first run for --load below.
  std::string har_path = dir_.File("first-run.har");
  WriteFile(har_path, Get(ViewerUrl(mitmd_) + "/api/export.har").body);
  ASSERT_EQ(mitmd_.Stop(), 0);
  const std::string log = mitmd_.flows_path();

  MitmdOptions options;
  options.binary = MITMD_BINARY;
  options.upstream_ca = ca_files_.cert;
  options.extra_args = {"--flows", log, "--web", "127.0.0.1:0"};
  {
    MitmdProcess again;
    ASSERT_TRUE(again.Start(options));
    json list = WaitForViewerFlows(ViewerUrl(again), 2);
    ASSERT_EQ(list["flows"].size(), 2u);
    EXPECT_EQ(list["flows"][0]["path"], "/bytes/2");
    EXPECT_EQ(again.Stop(), 0);
  }
  {
    options.extra_args.push_back("--fresh");
    MitmdProcess fresh;
    ASSERT_TRUE(fresh.Start(options));
    json list = Get(ViewerUrl(fresh) + "/api/flows").Json();
    EXPECT_EQ(list["flows"].size(), 0u);
    EXPECT_EQ(fresh.Stop(), 0);
    auto kept = ReadJsonLines(log + ".1");
    ASSERT_TRUE(kept) << "--fresh keeps the previous log as FILE.1";
    EXPECT_EQ(kept->size(), 2u);
  }
  {
    MitmdOptions load = options;
    load.extra_args = {"--web", "127.0.0.1:0", "--load", har_path, "--fresh"};
    MitmdProcess loaded;
    ASSERT_TRUE(loaded.Start(load));
    json list = WaitForViewerFlows(ViewerUrl(loaded), 2);
    ASSERT_EQ(list["flows"].size(), 2u);
    EXPECT_EQ(list["flows"][1]["path"], "/bytes/1");
    EXPECT_EQ(loaded.Stop(), 0);
  }
  MitmdOptions bad = options;
  bad.extra_args = {"--web", "127.0.0.1:0", "--load", dir_.File("missing.jsonl")};
  MitmdProcess refused;
  Status st = refused.Start(bad);
  EXPECT_FALSE(st);
  if (!st) {
    EXPECT_NE(st.error().message.find("missing.jsonl"), std::string::npos) << st.error().message;
  }
  // A file that exists but holds no flow is read after the proxy listens: mitmd keeps running
  // and says why in its log, and the next --load file is still loaded.
  WriteFile(dir_.File("garbage.jsonl"), "this is not a flow\nnor this\n");
  MitmdOptions garbage = options;
  garbage.extra_args = {"--web", "127.0.0.1:0", "--load", dir_.File("garbage.jsonl"), "--load", har_path,
                        "--fresh"};  // so the two flows can only come from the HAR, loaded second
  MitmdProcess running;
  ASSERT_TRUE(running.Start(garbage));
  json list = WaitForViewerFlows(ViewerUrl(running), 2);
  EXPECT_EQ(list["flows"].size(), 2u);
  std::string err = running.StderrText();
  EXPECT_NE(err.find("--load failed"), std::string::npos) << err;
  EXPECT_NE(err.find("garbage.jsonl"), std::string::npos) << err;
  EXPECT_EQ(running.Stop(), 0);
}

TEST_F(ProxyTest, ViewerOverTlsWithALeafFromTheRoot) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--web", "127.0.0.1:0", "--web-tls"}));
  std::string base = ViewerUrl(mitmd_);
  ASSERT_EQ(base.substr(0, 8), "https://") << mitmd_.StdoutText();
  Reply info = Get(base + "/api/info", {"--cacert", mitmd_.ca_cert_path()});
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(info.Json()["tls"], true);
  Reply page = Get(base + "/ca", {"--cacert", mitmd_.ca_cert_path()});
  EXPECT_NE(page.body.find("Android"), std::string::npos);
}

TEST_F(ProxyTest, NoWebMeansNoViewer) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--no-web"}));
  EXPECT_EQ(ViewerUrl(mitmd_), "");
  EXPECT_EQ(mitmd_.StdoutText().find("viewer"), std::string::npos);
}

}  // namespace
}  // namespace mitmd::testing
