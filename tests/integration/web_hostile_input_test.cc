// Input any web page can make a browser send to the loopback viewer (a GET needs no token and no
// CORS), and uploads that must be refused before they are read.

#include <string>

#include "integration/web_fixture.h"

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

}  // namespace
}  // namespace mitmd::testing
