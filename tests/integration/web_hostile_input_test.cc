// Input any web page can make a browser send to the loopback viewer (a GET needs no token and no
// CORS), and uploads that must be refused before they are read.

#include <string>

#include "flow/flow_json.h"
#include "integration/web_fixture.h"
#include "unit/web_test_flows.h"

namespace mitmd::testing {
namespace {

TEST_F(WebServerTest, DeeplyNestedFilterIsA400OnEveryEndpoint) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // 10,000 open parentheses overflowed the recursive parser and took the process down.
  std::string deep(10000, '(');
  deep += "host:a";
  for (const std::string path : {"/api/flows?filter=", "/api/events?filter=",
                                 "/api/export.har?filter=", "/api/filter?q="}) {
    HttpResult r = Fetch(path + deep);
    EXPECT_EQ(r.status, 400) << path << " " << r.error;
    EXPECT_NE(r.Json().value("error", "").find("nest deeper than 32 levels"), std::string::npos)
        << path << " " << r.body.substr(0, 200);
  }
  EXPECT_EQ(Fetch("/api/info").status, 200);
}

TEST_F(WebServerTest, ImportSkipsAWrongTypedLineAndNamesIt) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string good = FlowToJsonLine(MakeFlow({.host = "import.test"}));
  nlohmann::json wrong = nlohmann::json::parse(good);
  wrong["schema"] = "1";  // an uncaught nlohmann::type_error aborted the process
  HttpResult r = Post("/api/import", "junk\n" + good + "\n" + wrong.dump() + "\n");
  ASSERT_EQ(r.status, 200) << r.body;
  nlohmann::json reply = r.Json();
  EXPECT_EQ(reply["added"], 1);
  EXPECT_EQ(reply["skipped"], 2);
  ASSERT_EQ(reply["problems"].size(), 2u) << r.body;
  EXPECT_EQ(reply["problems"][0], "line 1: not valid JSON (a torn or foreign line)");
  EXPECT_NE(reply["problems"][1].get<std::string>().find("line 3: schema:"), std::string::npos);

  nlohmann::json har = {{"log", {{"entries", {{{"request", {{"url", 5}}}}}}}}};
  HttpResult h = Post("/api/import", har.dump());
  EXPECT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.Json()["skipped"], 1);
  EXPECT_EQ(Fetch("/api/info").status, 200);
}

}  // namespace
}  // namespace mitmd::testing
