// Hostile or damaged flow files: a session log, a --load file. mitmd starts, shows what it can
// read, and names each line it skipped.

#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "flow/flow_json.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "unit/web_test_flows.h"

namespace mitmd::testing {
namespace {

using nlohmann::json;

std::string ViewerUrl(const MitmdProcess& m) {
  std::smatch match;
  std::string out = m.StdoutText();
  if (!std::regex_search(out, match, std::regex("viewer listening on (\\S+)/"))) return "";
  return match[1];
}

// Polls the viewer's flow list until it holds |n| flows (bounded).
json WaitForViewerFlows(const std::string& base, size_t n) {
  json last;
  for (int i = 0; i < 200; ++i) {
    ProcessResult r = RunCurl({"-s", base + "/api/flows"}, std::chrono::seconds(10));
    last = json::parse(r.out, nullptr, false);
    if (last.is_object() && last.contains("flows") && last["flows"].size() >= n) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ADD_FAILURE() << "the viewer did not list " << n << " flows: " << last.dump().substr(0, 1000);
  return last;
}

// A log whose first line is not JSON and whose third has "schema": "1" (each stopped start-up).
std::string DamagedLog() {
  std::string good1 = FlowToJsonLine(MakeFlow({.path = "/first"}));
  std::string good2 = FlowToJsonLine(MakeFlow({.path = "/second"}));
  json wrong = json::parse(good1);
  wrong["schema"] = "1";
  return StrCat("not json at all\n", good1, "\n", wrong.dump(), "\n", good2, "\n");
}

TEST(FaultInputTest, DamagedSessionLogAndLoadFileStillStartWithTheReadableFlows) {
  TempDir dir;
  WriteFile(dir.File("damaged.jsonl"), DamagedLog());
  for (const std::string flag : {"--flows", "--load"}) {
    MitmdOptions options;
    options.binary = MITMD_BINARY;
    options.extra_args = {flag, dir.File("damaged.jsonl"), "--web", "127.0.0.1:0"};
    MitmdProcess mitmd;
    Status st = mitmd.Start(options);
    ASSERT_TRUE(st) << flag << ": " << st.error().message;
    std::string base = ViewerUrl(mitmd);
    ASSERT_FALSE(base.empty()) << mitmd.StdoutText();
    json list = WaitForViewerFlows(base, 2);
    EXPECT_EQ(list["flows"].size(), 2u) << flag;
    std::string err = mitmd.StderrText();
    EXPECT_NE(err.find("line 1: not valid JSON"), std::string::npos) << err;
    EXPECT_NE(err.find("line 3: schema: expected an integer"), std::string::npos) << err;
    EXPECT_EQ(mitmd.Stop(), 0);
  }
}

}  // namespace
}  // namespace mitmd::testing
