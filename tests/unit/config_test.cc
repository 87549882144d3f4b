#include "config/options.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <set>

#include "core/strings.h"

namespace mitmd {
namespace {

Result<Invocation> Parse(std::vector<std::string_view> args) { return ParseArgs(args, "/home/u"); }

TEST(ConfigTest, DefaultsFollowHome) {
  auto inv = Parse({});
  ASSERT_TRUE(inv) << inv.error().message;
  EXPECT_EQ(inv->config.confdir, "/home/u/.mitmd");
  EXPECT_EQ(inv->config.flows_path, "/home/u/.mitmd/flows.jsonl");
  EXPECT_EQ(inv->config.listen.ToString(), "127.0.0.1:8080");
  EXPECT_FALSE(inv->config.insecure);
}

TEST(ConfigTest, ParsesEveryOption) {
  auto inv = Parse({"--listen", "[::1]:0", "--confdir=/tmp/c", "--flows", "/tmp/f.jsonl",
                    "--upstream-ca", "a.pem", "--upstream-ca", "b.pem", "--upstream-allow",
                    "127.0.0.0/8,::1", "--max-body-record", "4k", "--insecure", "--workers", "3",
                    "--connect-timeout", "1.5"});
  ASSERT_TRUE(inv) << inv.error().message;
  const Config& c = inv->config;
  EXPECT_EQ(c.listen.host, "::1");
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.listen.ToString(), "[::1]:0");
  EXPECT_EQ(c.flows_path, "/tmp/f.jsonl");
  EXPECT_EQ(c.upstream_ca_files, (std::vector<std::string>{"a.pem", "b.pem"}));
  ASSERT_EQ(c.upstream_allow.size(), 2u);
  EXPECT_EQ(c.upstream_allow[1].ToString(), "::1/128");
  EXPECT_EQ(c.max_body_record, 4096u);
  EXPECT_TRUE(c.insecure);
  EXPECT_EQ(c.workers, 3);
  EXPECT_EQ(c.connect_timeout.count(), 1500);
}

TEST(ConfigTest, BadInputIsAnActionableError) {
  auto unknown = Parse({"--frobnicate"});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown option '--frobnicate'"), std::string::npos);
  auto missing = Parse({"--listen"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("--listen needs a value"), std::string::npos);
  EXPECT_FALSE(Parse({"--listen", "localhost"}));
  EXPECT_FALSE(Parse({"--listen", "1.2.3.4:70000"}));
  EXPECT_FALSE(Parse({"--upstream-allow", "10.0.0.0/33"}));
  EXPECT_FALSE(Parse({"--max-body-record", "lots"}));
}

TEST(ConfigTest, HelpWins) {
  auto inv = Parse({"--listen", "x", "--help"});
  // --listen x fails before --help is reached: errors are reported in order.
  EXPECT_FALSE(inv);
  auto help = Parse({"--help"});
  ASSERT_TRUE(help);
  EXPECT_EQ(help->command, Command::kHelp);
}

TEST(CidrTest, Contains) {
  auto net = Cidr::Parse("127.0.0.0/8");
  ASSERT_TRUE(net);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.1.2.3", &a.sin_addr);
  EXPECT_TRUE(net->Contains(reinterpret_cast<sockaddr*>(&a)));
  inet_pton(AF_INET, "128.0.0.1", &a.sin_addr);
  EXPECT_FALSE(net->Contains(reinterpret_cast<sockaddr*>(&a)));
  sockaddr_in6 m{};
  m.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
  EXPECT_TRUE(net->Contains(reinterpret_cast<sockaddr*>(&m)));
  auto v6 = Cidr::Parse("::1");
  ASSERT_TRUE(v6);
  inet_pton(AF_INET6, "::1", &m.sin6_addr);
  EXPECT_TRUE(v6->Contains(reinterpret_cast<sockaddr*>(&m)));
  EXPECT_FALSE(v6->Contains(reinterpret_cast<sockaddr*>(&a)));
}

TEST(HostTest, Loopback) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.9.9.9"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("192.168.1.1"));
}

}  // namespace
}  // namespace mitmd

namespace mitmd {
namespace {

// The table is the one source: every row is documented, names are unique, flags take no value
// and value options refuse to be given without one.
TEST(OptionTableTest, EveryOptionIsDocumentedAndParses) {
  const std::string usage = UsageText();
  std::set<std::string_view> names;
  for (const OptionSpec& o : Options()) {
    EXPECT_TRUE(names.insert(o.name).second) << "duplicate option " << o.name;
    EXPECT_NE(usage.find(StrCat("  ", o.name, o.metavar.empty() ? "" : " ", o.metavar)),
              std::string::npos)
        << o.name << " is missing from --help";
    EXPECT_FALSE(o.help.empty()) << o.name;
    if (o.arity == OptionSpec::Arity::kFlag) {
      auto with_value = ParseArgs({StrCat(o.name, "=x")}, "/home/u");
      ASSERT_FALSE(with_value) << o.name;
      EXPECT_NE(with_value.error().message.find("takes no value"), std::string::npos);
    } else {
      auto missing = ParseArgs({o.name}, "/home/u");
      ASSERT_FALSE(missing) << o.name;
      EXPECT_NE(missing.error().message.find("needs a value"), std::string::npos);
    }
  }
}

TEST(OptionTableTest, SizesAndSecondsAreBounded) {
  EXPECT_FALSE(ParseSize("99999999999999999g", "--x"));
  EXPECT_FALSE(ParseSeconds("1e300", "--x"));
  EXPECT_FALSE(ParseSeconds("nan", "--x"));
  EXPECT_EQ(*ParseSize("2k", "--x"), 2048u);
}

}  // namespace
}  // namespace mitmd
