// src/rules: spec parsing with mitmproxy's syntax, application to messages, rule sets swapped
// and persisted, edits, the flow control registry, and the flow fields rules fill in.

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "config/options.h"
#include "flow/flow_json.h"
#include "rules/apply.h"
#include "rules/controls.h"
#include "rules/edit.h"
#include "rules/rule_set.h"
#include "support/temp_dir.h"

namespace mitmd::rules {
namespace {

using testing::TempDir;
using testing::WriteFile;

Rule MustParse(RuleKind kind, std::string spec) {
  auto r = Rule::Parse(RuleSpec{kind, std::move(spec), true});
  EXPECT_TRUE(r) << r.error().message;
  return std::move(*r);
}

std::shared_ptr<const RuleSet> MustSet(std::vector<RuleSpec> specs, HoldSpec hold = {}) {
  auto set = RuleSet::Create(std::move(specs), std::move(hold));
  EXPECT_TRUE(set) << set.error().message;
  return set ? *set : RuleSet::Empty();
}

Flow RequestFlow(std::string host, std::string path, HeaderList headers = {}) {
  Flow f;
  f.id = "f1";
  HttpRequest& r = f.request.emplace();
  r.method = "GET";
  r.scheme = "https";
  r.host = std::move(host);
  r.port = 443;
  r.path = std::move(path);
  r.target = r.path;
  r.headers = std::move(headers);
  return f;
}

TEST(RuleParseTest, FirstCharacterIsTheSeparator) {
  Rule r = MustParse(RuleKind::kModifyHeaders, "#host:a.test#X-Env#dev|prod");
  EXPECT_EQ(r.header_name(), "X-Env");
  EXPECT_EQ(r.header_value(), "dev|prod");
  EXPECT_TRUE(r.Matches(RequestFlow("a.test", "/")));
  EXPECT_FALSE(r.Matches(RequestFlow("b.test", "/")));
  EXPECT_EQ(r.Written(), "modify-headers #host:a.test#X-Env#dev|prod");
}

TEST(RuleParseTest, TwoPartsMatchEveryFlowAsInMitmproxy) {
  Rule r = MustParse(RuleKind::kModifyHeaders, "|X-Env|dev");
  EXPECT_EQ(r.header_name(), "X-Env");
  EXPECT_TRUE(r.Matches(RequestFlow("anything.test", "/")));
  // The replacement keeps further separators.
  Rule b = MustParse(RuleKind::kModifyBody, "|host:a|x|y|z");
  EXPECT_EQ(b.replacement(), "y|z");
}

TEST(RuleParseTest, BadSpecsSayWhatIsWrong) {
  auto bad = [](RuleKind kind, std::string spec) {
    auto r = Rule::Parse(RuleSpec{kind, std::move(spec), true});
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message;
  };
  EXPECT_NE(bad(RuleKind::kMapRemote, "|host:a|(unclosed|x").find("regular expression"),
            std::string::npos);
  EXPECT_NE(bad(RuleKind::kModifyHeaders, "|((host:a|X|1").find("filter"), std::string::npos);
  EXPECT_NE(bad(RuleKind::kModifyHeaders, "|host:a|Bad Name|1").find("header name"),
            std::string::npos);
  EXPECT_NE(bad(RuleKind::kMapLocal, "|host:a|/no/such/path").find("does not exist"),
            std::string::npos);
  EXPECT_NE(bad(RuleKind::kModifyBody, "|x").find("too few parts"), std::string::npos);
  EXPECT_NE(bad(RuleKind::kModifyBody, "a|b|c").find("separator"), std::string::npos);
  EXPECT_NE(bad(RuleKind::kModifyBody, "|host:a|x|\\5").find("replacement"), std::string::npos);
  EXPECT_NE(bad(RuleKind::kModifyHeaders, "|X|@/no/such/file").find("cannot read"),
            std::string::npos);
}

TEST(RuleParseTest, ValuesFromFiles) {
  TempDir dir;
  WriteFile(dir.File("token"), "Bearer abc\n");
  WriteFile(dir.File("body"), "C:\\path \\1");
  Rule h = MustParse(RuleKind::kModifyHeaders, "|Authorization|@" + dir.File("token"));
  EXPECT_EQ(h.header_value(), "Bearer abc");  // the file's line end is not part of it
  auto set = MustSet({{RuleKind::kModifyBody, "|x|@" + dir.File("body"), true}});
  std::string body = "axb";
  std::vector<Modification> mods;
  Flow f = RequestFlow("a.test", "/");
  EXPECT_TRUE(ModifyBody(*set, f, Side::kRequest, body, mods));
  EXPECT_EQ(body, "aC:\\path \\1b");  // a file's backslashes are literal
}

TEST(RuleApplyTest, ModifyHeadersSetsRemovesAndRecords) {
  auto set = MustSet({{RuleKind::kModifyHeaders, "|host:a.test|X-Env|dev", true},
                      {RuleKind::kModifyHeaders, "|host:a.test|Cookie|", true},
                      {RuleKind::kModifyHeaders, "|host:b.test|X-Other|1", true}});
  HeaderList headers = {{"x-env", "prod"}, {"Cookie", "a=1"}, {"Accept", "*/*"}, {"X-Env", "2"}};
  Flow f = RequestFlow("a.test", "/", headers);
  std::vector<Modification> mods;
  EXPECT_TRUE(ModifyHeaders(*set, f, Side::kRequest, headers, mods));
  EXPECT_EQ(headers, (HeaderList{{"Accept", "*/*"}, {"X-Env", "dev"}}));
  ASSERT_EQ(mods.size(), 2u);
  EXPECT_EQ(mods[0].rule, "modify-headers |host:a.test|X-Env|dev");
  EXPECT_EQ(mods[0].what, "request header X-Env");
  EXPECT_EQ(mods[0].before, "prod");
  EXPECT_EQ(mods[0].after, "dev");
  EXPECT_EQ(mods[1].what, "request header Cookie");
  EXPECT_EQ(mods[1].after, "");

  // Removing a header that is not there changes nothing.
  HeaderList none = {{"Accept", "*/*"}};
  std::vector<Modification> no_mods;
  auto remove_only = MustSet({{RuleKind::kModifyHeaders, "|Cookie|", true}});
  EXPECT_FALSE(ModifyHeaders(*remove_only, f, Side::kResponse, none, no_mods));
  EXPECT_TRUE(no_mods.empty());
}

TEST(RuleApplyTest, DisabledRulesDoNothing) {
  auto set = MustSet({{RuleKind::kModifyHeaders, "|X-Env|dev", false}});
  EXPECT_TRUE(set->active().empty());
  EXPECT_TRUE(set->empty());
  EXPECT_EQ(set->specs().size(), 1u);
}

TEST(RuleApplyTest, MapRemoteRewritesTheUrlInOrder) {
  auto set =
      MustSet({{RuleKind::kMapRemote, "|host:a.test|://a\\.test/v1/|://b.test:8443/v2/", true},
               {RuleKind::kMapRemote, "|v2/(\\w+)|v2/\\1/x", true}});
  Flow f = RequestFlow("a.test", "/v1/users");
  std::vector<Modification> mods;
  auto url = MapRemote(*set, f, "https://a.test/v1/users", mods);
  ASSERT_TRUE(url);
  EXPECT_EQ(*url, "https://b.test:8443/v2/users/x");
  ASSERT_EQ(mods.size(), 2u);
  EXPECT_EQ(mods[0].before, "https://a.test/v1/users");
  EXPECT_EQ(mods[1].after, "https://b.test:8443/v2/users/x");
  std::vector<Modification> none;
  EXPECT_FALSE(MapRemote(*set, RequestFlow("c.test", "/"), "https://c.test/", none));
}

TEST(RuleApplyTest, ModifyBodyOnALargeBodyIsLinear) {
  // std::regex overflows the stack on 100 KB with this pattern; RE2 does not.
  auto set = MustSet({{RuleKind::kModifyBody, "|a.*b|X", true}});
  std::string body(1 << 20, 'a');
  body += "b";
  std::vector<Modification> mods;
  EXPECT_TRUE(ModifyBody(*set, RequestFlow("a.test", "/"), Side::kResponse, body, mods));
  EXPECT_EQ(body, "X");
  ASSERT_EQ(mods.size(), 1u);
  EXPECT_EQ(mods[0].what, "response body");
  EXPECT_NE(mods[0].before.find("bytes in all"), std::string::npos);  // capped
  EXPECT_LE(mods[0].before.size(), kModificationCap + 64);
}

TEST(RuleApplyTest, MapLocalServesFilesAndDirectories) {
  TempDir dir;
  WriteFile(dir.File("app.js"), "console.log(1)");
  WriteFile(dir.File("index.html"), "<h1>hi</h1>");
  auto file_set = MustSet({{RuleKind::kMapLocal, "|host:a.test|" + dir.File("app.js"), true}});
  const Rule* file_rule = FindMapLocal(*file_set, RequestFlow("a.test", "/x"));
  ASSERT_NE(file_rule, nullptr);
  EXPECT_EQ(FindMapLocal(*file_set, RequestFlow("b.test", "/x")), nullptr);
  LocalAnswer a = ServeLocal(*file_rule, "/anything?q=1");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "console.log(1)");
  EXPECT_EQ(a.content_type, "text/javascript; charset=utf-8");

  auto dir_set = MustSet({{RuleKind::kMapLocal, "|host:a.test|" + dir.path(), true}});
  const Rule& d = dir_set->active()[0];
  EXPECT_EQ(ServeLocal(d, "/app.js?v=3").body, "console.log(1)");
  EXPECT_EQ(ServeLocal(d, "/").body, "<h1>hi</h1>");
  EXPECT_EQ(ServeLocal(d, "/missing.css").status, 404);
  LocalAnswer escape = ServeLocal(d, "/../../etc/passwd");
  EXPECT_EQ(escape.status, 403);
  EXPECT_EQ(escape.body.find("root:"), std::string::npos);
  // The files were read when the rule was parsed: the worker never touches the disk.
  WriteFile(dir.File("app.js"), "changed on disk");
  ::unlink(dir.File("index.html").c_str());
  EXPECT_EQ(ServeLocal(d, "/app.js").body, "console.log(1)");
  EXPECT_EQ(ServeLocal(d, "/").body, "<h1>hi</h1>");
}

TEST(RuleApplyTest, MapLocalRefusesFilesOverItsCap) {
  TempDir dir;
  WriteFile(dir.File("big.bin"), "");
  ASSERT_EQ(::truncate(dir.File("big.bin").c_str(), kMapLocalMaxFile + 1), 0);  // sparse: cheap
  auto set = RuleSet::Create({{RuleKind::kMapLocal, "|path:/x|" + dir.path(), true}});
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().message.find("more than the 16 MiB map-local serves"), std::string::npos)
      << set.error().message;
}

TEST(RuleSetTest, ErrorsNameTheRuleAndHoldFiltersMatch) {
  auto bad = RuleSet::Create(
      {{RuleKind::kModifyHeaders, "|X|1", true}, {RuleKind::kMapRemote, "|(|x", false}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("rule 2"), std::string::npos);
  EXPECT_FALSE(RuleSet::Create({}, HoldSpec{{""}, {}}));
  auto set = MustSet({}, HoldSpec{{"host:a.test", "method:POST"}, {"status:>=500"}});
  EXPECT_FALSE(set->empty());
  EXPECT_TRUE(set->HoldsRequest(RequestFlow("a.test", "/")));
  EXPECT_FALSE(set->HoldsRequest(RequestFlow("b.test", "/")));
  Flow f = RequestFlow("b.test", "/");
  EXPECT_FALSE(set->HoldsResponse(f));
  f.response.emplace().status = 503;
  EXPECT_TRUE(set->HoldsResponse(f));
}

TEST(RuleSetTest, JsonFormRoundTripsAndRejectsBadInput) {
  std::vector<RuleSpec> specs = {{RuleKind::kMapRemote, "|a|b|c", true},
                                 {RuleKind::kModifyBody, "|x|y", false}};
  auto back = RulesFromJson(RulesToJson(specs));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, specs);
  auto bad_kind =
      RulesFromJson(nlohmann::json::parse(R"({"rules":[{"kind":"nope","spec":"|a|b"}]})"));
  ASSERT_FALSE(bad_kind);
  EXPECT_NE(bad_kind.error().message.find("rules[0].kind"), std::string::npos);
  EXPECT_FALSE(
      RulesFromJson(nlohmann::json::parse(R"({"rules":[{"kind":"map-local","spec":5}]})")));
  EXPECT_FALSE(RulesFromJson(nlohmann::json::parse(R"([1])")));
  EXPECT_FALSE(HoldFromJson(nlohmann::json::parse(R"({"request":"host:a"})")));
  auto hold = HoldFromJson(nlohmann::json::parse(R"({"request":["host:a"]})"));
  ASSERT_TRUE(hold);
  EXPECT_EQ(hold->request, std::vector<std::string>{"host:a"});
}

TEST(ControlsTest, RulesPersistAndCommandLineRulesJoinThem) {
  TempDir dir;
  std::string path = dir.File("rules.json");
  {
    auto c = Controls::Open(path, {}, {});
    ASSERT_TRUE(c) << c.error().message;
    std::shared_ptr<const RuleSet> before = (*c)->Current();
    ASSERT_TRUE((*c)->SetRules({{RuleKind::kModifyHeaders, "|X-A|1", true}}));
    EXPECT_TRUE(before->empty());  // a snapshot taken earlier does not change
    EXPECT_EQ((*c)->Current()->active().size(), 1u);
    auto refused = (*c)->SetRules({{RuleKind::kMapRemote, "|(|x", true}});
    EXPECT_FALSE(refused);
    EXPECT_EQ((*c)->Current()->active().size(), 1u);  // the old set stays
    ASSERT_TRUE((*c)->SetHold(HoldSpec{{"host:a"}, {}}));
    EXPECT_EQ((*c)->Current()->active().size(), 1u);  // hold keeps the rules
  }
  auto c = Controls::Open(
      path,
      {{RuleKind::kModifyHeaders, "|X-A|1", true}, {RuleKind::kModifyHeaders, "|X-B|2", true}}, {});
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ((*c)->Current()->specs().size(), 2u);  // X-A once
  EXPECT_EQ((*c)->Current()->specs()[1].spec, "|X-B|2");

  WriteFile(path, "{not json");
  auto broken = Controls::Open(path, {}, {});
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("rules.json"), std::string::npos);
}

class FakeHeld : public Holdable {
 public:
  Status Control(Command command) override {
    last = command;
    ++calls;
    if (command.action == Command::Action::kResume && command.edit.response) {
      return Fail("this flow is held before upstream: edit its request");
    }
    return {};
  }
  std::optional<Command> last;
  int calls = 0;
};

TEST(FlowControlTest, CommandsRunOnTheOwningThreadAndLateOnesSaySo) {
  FlowControl control;
  FakeHeld held;
  // A stand-in worker: runs posted functions on its own thread.
  std::vector<std::function<void()>> queue;
  std::mutex mu;
  FlowControl::Post post = [&](std::function<void()> fn) {
    std::lock_guard lock(mu);
    queue.push_back(std::move(fn));
  };
  std::atomic<bool> stop = false;
  std::thread worker([&] {
    while (!stop) {
      std::vector<std::function<void()>> run;
      {
        std::lock_guard lock(mu);
        run.swap(queue);
      }
      for (auto& fn : run) fn();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  control.Hold("f1", &held, post);
  EXPECT_EQ(control.HeldIds(), std::vector<std::string>{"f1"});
  EXPECT_TRUE(control.Send("f1", Command{Command::Action::kKill, {}}));
  EXPECT_EQ(held.calls, 1);
  Command edit{Command::Action::kResume, {}};
  edit.edit.response.emplace();
  auto refused = control.Send("f1", edit);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("edit its request"), std::string::npos);
  control.Unhold("f1");
  auto late = control.Send("f1", Command{});
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().message.find("not held"), std::string::npos);
  EXPECT_EQ(held.calls, 2);
  stop = true;
  worker.join();
}

TEST(EditTest, ParsesAndValidates) {
  auto e = EditFromJson(nlohmann::json::parse(
      R"({"request":{"method":"PUT","url":"https://a.test/x","headers":[["A","1"]],"body":"hi"}})"));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(*e->request->method, "PUT");
  EXPECT_EQ(*e->request->headers, (HeaderList{{"A", "1"}}));
  EXPECT_FALSE(e->response);
  EXPECT_TRUE(EditFromJson(nlohmann::json())->empty());
  EXPECT_FALSE(EditFromJson(nlohmann::json::parse(R"({"request":{"url":"ftp://x"}})")));
  EXPECT_FALSE(EditFromJson(nlohmann::json::parse(R"({"request":{"headers":[["A\n","1"]]}})")));
  EXPECT_FALSE(
      EditFromJson(nlohmann::json::parse(R"({"request":{"headers":[["A","1\r\nB: 2"]]}})")));
  EXPECT_FALSE(EditFromJson(nlohmann::json::parse(R"({"response":{"status":100}})")));
  EXPECT_FALSE(EditFromJson(nlohmann::json::parse(R"({"response":{"status":"200"}})")));
  auto r = EditFromJson(nlohmann::json::parse(R"({"response":{"status":404,"reason":"Gone"}})"));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->response->status, 404);
}

TEST(EditTest, BinaryBodiesComeAsBase64) {
  auto e = EditFromJson(nlohmann::json::parse(R"({"request":{"body_base64":"AP8Kgw=="}})"));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(*e->request->body, std::string("\x00\xff\n\x83", 4));
  auto r = EditFromJson(nlohmann::json::parse(R"({"response":{"body_base64":""}})"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->response->body, "");
  auto bad = EditFromJson(nlohmann::json::parse(R"({"request":{"body_base64":"not base64!"}})"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("request.body_base64"), std::string::npos);
  auto both =
      EditFromJson(nlohmann::json::parse(R"({"response":{"body":"a","body_base64":"YQ=="}})"));
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().message.find("not both"), std::string::npos);
}

TEST(RuleFlowJsonTest, ModifiedByAndReplayOfRoundTripInBothWriters) {
  Flow f = RequestFlow("a.test", "/");
  f.replay_of = "0f1e";
  f.modified_by.push_back({"modify-headers |X|1", "request header X", "", "1"});
  f.modified_by.push_back({"edit", "response body", "{\"a\":1}", "caf\xc3\xa9"});
  std::string line = FlowToJsonLine(f);
  EXPECT_EQ(nlohmann::json::parse(line), FlowToJson(f));
  auto back = FlowFromJson(nlohmann::json::parse(line));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->replay_of, "0f1e");
  ASSERT_EQ(back->modified_by.size(), 2u);
  EXPECT_EQ(back->modified_by[0].what, "request header X");
  EXPECT_EQ(back->modified_by[1].before, "{\"a\":1}");
  auto bad = FlowFromJson(nlohmann::json::parse(
      R"({"schema":1,"id":"x","client":{},"server":{},"modified_by":[{"rule":3}]})"));
  EXPECT_FALSE(bad);
}

TEST(RuleOptionsTest, OptionsParseAndRefuseBadRules) {
  TempDir dir;
  auto inv =
      ParseArgs({"--modify-headers", "|host:a|X-A|1", "--map-local", "|path:/x|" + dir.path(),
                 "--hold", "host:a", "--hold-response", "status:500", "--hold-max-body", "1m"},
                "/home/u");
  ASSERT_TRUE(inv) << inv.error().message;
  ASSERT_EQ(inv->config.rules.size(), 2u);
  EXPECT_EQ(inv->config.rules[1].kind, RuleKind::kMapLocal);
  EXPECT_EQ(inv->config.hold_requests, std::vector<std::string>{"host:a"});
  EXPECT_EQ(inv->config.hold_max_body, 1u << 20);
  auto bad = ParseArgs({"--map-remote", "|host:a|(|x"}, "/home/u");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("--map-remote", 0), 0u) << bad.error().message;
  EXPECT_FALSE(ParseArgs({"--hold", "(("}, "/home/u"));
}

}  // namespace
}  // namespace mitmd::rules
