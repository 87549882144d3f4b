// The viewer's command-line options (src/core/config.h: web_*, load_files, fresh).

#include <gtest/gtest.h>

#include "config/options.h"

namespace mitmd {
namespace {

Result<Invocation> Parse(std::vector<std::string_view> args) { return ParseArgs(args, "/home/u"); }

TEST(WebConfigTest, ViewerDefaultsToLoopback8081) {
  auto inv = Parse({});
  ASSERT_TRUE(inv) << inv.error().message;
  const Config& c = inv->config;
  EXPECT_TRUE(c.web_enabled);
  EXPECT_EQ(c.web_listen.ToString(), "127.0.0.1:8081");
  EXPECT_FALSE(c.web_listen_given);
  EXPECT_FALSE(c.web_tls);
  EXPECT_FALSE(c.fresh);
  EXPECT_TRUE(c.load_files.empty());
}

TEST(WebConfigTest, ParsesEveryViewerOption) {
  auto inv = Parse({"--web", "[::1]:0", "--web-tls", "--web-token=t0k", "--load", "a.har",
                    "--load=b.jsonl", "--fresh"});
  ASSERT_TRUE(inv) << inv.error().message;
  const Config& c = inv->config;
  EXPECT_EQ(c.web_listen.host, "::1");
  EXPECT_EQ(c.web_listen.port, 0);
  EXPECT_TRUE(c.web_listen_given);
  EXPECT_TRUE(c.web_tls);
  EXPECT_EQ(c.web_token, "t0k");
  EXPECT_EQ(c.load_files, (std::vector<std::string>{"a.har", "b.jsonl"}));
  EXPECT_TRUE(c.fresh);
  auto off = Parse({"--no-web"});
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->config.web_enabled);
}

TEST(WebConfigTest, BadViewerOptionsAreActionable) {
  auto bad = Parse({"--web", "nonsense"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("--web"), std::string::npos) << bad.error().message;
  auto empty = Parse({"--web-token", ""});
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("--web-token"), std::string::npos);
  EXPECT_FALSE(Parse({"--load"}));
}

TEST(WebConfigTest, HelpDocumentsTheViewerOptions) {
  std::string usage = UsageText();
  for (const char* option : {"--web HOST:PORT", "--no-web", "--web-tls", "--web-token", "--load", "--fresh"}) {
    EXPECT_NE(usage.find(option), std::string::npos) << option;
  }
}

}  // namespace
}  // namespace mitmd
