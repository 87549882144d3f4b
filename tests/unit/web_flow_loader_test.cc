#include "flow/flow_loader.h"

#include <gtest/gtest.h>

#include "flow/flow_json.h"
#include "flow/har.h"
#include "support/temp_dir.h"
#include "unit/web_test_flows.h"

namespace mitmd {
namespace {

using testing::FlowSpec;
using testing::MakeFlow;

std::string Jsonl(const std::vector<Flow>& flows) {
  std::string out;
  for (const auto& f : flows) out += FlowToJsonLine(f) + "\n";
  return out;
}

TEST(WebFlowLoaderTest, ReadsASessionLogAndSkipsATornLastLine) {
  std::vector<Flow> flows = {MakeFlow({.path = "/1"}), MakeFlow({.path = "/2"}),
                             MakeFlow({.path = "/3"})};
  std::string text = Jsonl(flows);
  text += FlowToJsonLine(MakeFlow({})).substr(0, 40);  // a crash mid-write
  auto loaded = LoadFlowsFromText(text, 100);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->format, LoadedFlows::Format::kJsonl);
  ASSERT_EQ(loaded->flows.size(), 3u);
  EXPECT_EQ(loaded->skipped, 1u);
  EXPECT_EQ(loaded->flows[2].request->path, "/3");
  EXPECT_EQ(loaded->flows[0].id, flows[0].id);
}

TEST(WebFlowLoaderTest, KeepsOnlyTheNewestFlows) {
  std::vector<Flow> flows;
  for (int i = 0; i < 10; ++i) flows.push_back(MakeFlow({.path = "/" + std::to_string(i)}));
  testing::TempDir dir;
  testing::WriteFile(dir.File("flows.jsonl"), Jsonl(flows));
  auto loaded = LoadFlowsFile(dir.File("flows.jsonl"), 4);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_EQ(loaded->flows.size(), 4u);
  EXPECT_EQ(loaded->dropped, 6u);
  EXPECT_EQ(loaded->flows.front().request->path, "/6");
  EXPECT_EQ(loaded->flows.back().request->path, "/9");
}

TEST(WebFlowLoaderTest, DetectsHarFilesPrettyOrMinified) {
  std::vector<std::shared_ptr<const Flow>> flows = {
      std::make_shared<const Flow>(MakeFlow({.path = "/har"}))};
  nlohmann::json har = BuildHar(flows, {});
  testing::TempDir dir;
  for (int indent : {-1, 2}) {
    testing::WriteFile(dir.File("x.har"), har.dump(indent));
    auto loaded = LoadFlowsFile(dir.File("x.har"), 100);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->format, LoadedFlows::Format::kHar);
    ASSERT_EQ(loaded->flows.size(), 1u);
    EXPECT_EQ(loaded->flows[0].request->path, "/har");
    auto from_text = LoadFlowsFromText(har.dump(indent), 100);
    ASSERT_TRUE(from_text);
    EXPECT_EQ(from_text->flows.size(), 1u);
  }
}

TEST(WebFlowLoaderTest, EmptyFileIsNoFlows) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("empty.jsonl"), "\n\n");
  auto loaded = LoadFlowsFile(dir.File("empty.jsonl"), 10);
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(loaded->flows.empty());
}

TEST(WebFlowLoaderTest, ForeignFilesAreActionableErrors) {
  testing::TempDir dir;
  EXPECT_FALSE(LoadFlowsFile(dir.File("missing.jsonl"), 10));
  testing::WriteFile(dir.File("notes.txt"), "hello\nworld\n");
  auto text = LoadFlowsFile(dir.File("notes.txt"), 10);
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("notes.txt"), std::string::npos) << text.error().message;
  auto other_json = LoadFlowsFromText("{\"a\":1}\n{\"b\":2}\n", 10);
  ASSERT_FALSE(other_json);
  EXPECT_NE(other_json.error().message.find("no flow"), std::string::npos);
}

TEST(WebFlowLoaderTest, BadLinesAnywhereAreSkippedWithTheirLineNumber) {
  std::string good = Jsonl({MakeFlow({.path = "/ok"})});
  nlohmann::json wrong = nlohmann::json::parse(good);
  wrong["schema"] = "1";  // threw nlohmann::type_error out of the loader: mitmd did not start
  std::string text = "garbage first line\n" + good + wrong.dump() + "\n\n" + good;
  for (bool from_file : {false, true}) {
    testing::TempDir dir;
    testing::WriteFile(dir.File("log.jsonl"), text);
    auto loaded = from_file ? LoadFlowsFile(dir.File("log.jsonl"), 10) : LoadFlowsFromText(text, 10);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->flows.size(), 2u);
    EXPECT_EQ(loaded->skipped, 2u);
    ASSERT_EQ(loaded->warnings.size(), 2u);
    EXPECT_EQ(loaded->warnings[0], "line 1: not valid JSON (a torn or foreign line)");
    EXPECT_EQ(loaded->warnings[1],
              "line 3: schema: expected an integer from -2147483648 to 2147483647, got string");
  }
}

TEST(WebFlowLoaderTest, HarEntriesWithWrongTypesAreSkippedNamingTheEntry) {
  std::string har = R"({"log":{"version":"1.2","entries":[
      {"request":{"method":"GET","url":"http://a.test/x","headers":[{"name":1,"value":"v"}]}},
      {"request":{"method":"GET","url":"http://a.test/y"},"response":{"status":"200"}},
      {"request":{"method":"GET","url":"http://a.test/z"},"timings":{"wait":"5"}},
      {"request":{"method":"GET","url":"http://a.test/ok"},"response":{"status":200.0}}]}})";
  auto loaded = LoadFlowsFromText(har, 10);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_EQ(loaded->flows.size(), 1u);
  EXPECT_EQ(loaded->flows[0].response->status, 200);
  EXPECT_EQ(loaded->skipped, 3u);
  EXPECT_EQ(loaded->warnings, (std::vector<std::string>{
      "entry 1: request.headers[0].name: expected a string, got number",
      "entry 2: response.status: expected an integer from -2147483648 to 2147483647, got string",
      "entry 3: timings.wait: expected a number, got string"}));
  EXPECT_FALSE(LoadFlowsFromText(R"({"log": {"entries": [)", 10));
}

}  // namespace
}  // namespace mitmd
