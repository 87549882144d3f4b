// The control API (web/control_api.h) without sockets, and replayed requests (rules/replay.h).

#include <gtest/gtest.h>

#include "rules/replay.h"
#include "web/control_api.h"

namespace mitmd::web {
namespace {

using nlohmann::json;

Flow Recorded(std::string body = "a=1", bool truncated = false) {
  Flow f;
  f.id = "1111";
  HttpRequest& r = f.request.emplace();
  r.method = "POST";
  r.scheme = "https";
  r.host = "a.test";
  r.port = 443;
  r.path = "/p?q=1";
  r.headers = {{"Host", "a.test"},
               {"Transfer-Encoding", "chunked"},
               {"Connection", "keep-alive"},
               {"X-Mitmd-Replay", "spoof"},
               {"Cookie", "c=1"}};
  r.body.content = std::move(body);
  r.body.size = truncated ? 10'000'000 : r.body.content.size();
  r.body.truncated = truncated;
  return f;
}

TEST(ReplayRequestTest, AbsoluteFormWithLengthFramingAndTheReplayHeader) {
  auto req = rules::BuildReplayRequest(Recorded(), {}, "1111");
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(*req,
            "POST https://a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\nCookie: c=1\r\n"
            "Content-Length: 3\r\nConnection: close\r\nX-Mitmd-Replay: 1111\r\n\r\na=1");
}

TEST(ReplayRequestTest, EditsReplaceTheRecordedParts) {
  rules::Edit edit;
  edit.request.emplace();
  edit.request->url = "http://b.test:8080/new";
  edit.request->method = "PUT";
  edit.request->body = "changed";
  auto req = rules::BuildReplayRequest(Recorded(), edit, "x");
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(req->rfind("PUT http://b.test:8080/new HTTP/1.1\r\nHost: b.test:8080\r\n", 0), 0u)
      << *req;
  EXPECT_TRUE(req->ends_with("\r\n\r\nchanged"));
}

TEST(ReplayRequestTest, CutBodiesAndTunnelsAreRefusedWithAReason) {
  auto cut = rules::BuildReplayRequest(Recorded("abc", true), {}, "x");
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message.find("--max-body-record"), std::string::npos);
  rules::Edit edit;
  edit.request.emplace();
  edit.request->body = "new";
  EXPECT_TRUE(rules::BuildReplayRequest(Recorded("abc", true), edit, "x"));
  Flow tunnel;
  tunnel.id = "t";
  tunnel.kind = Flow::Kind::kTunnel;
  EXPECT_FALSE(rules::BuildReplayRequest(tunnel, {}, "x"));
}

class ControlApiTest : public ::testing::Test {
 protected:
  std::optional<ApiReply> Call(std::string_view method, std::string_view path,
                               std::string_view body = {}) {
    FlowLookup lookup = [this](std::string_view id) -> Result<std::shared_ptr<const Flow>> {
      if (id == flow_.id) return std::make_shared<const Flow>(flow_);
      return nullptr;
    };
    return ControlApi(controls_, nullptr).Handle(method, path, body, lookup);
  }
  rules::Controls controls_;
  Flow flow_ = Recorded();
};

TEST_F(ControlApiTest, RulesAreReadAndReplaced) {
  auto put = Call("PUT", "/api/rules",
                  R"({"rules":[{"kind":"modify-headers","spec":"|X-A|1","enabled":true}]})");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200) << put->body.dump();
  auto get = Call("GET", "/api/rules");
  EXPECT_EQ(get->body["rules"][0]["spec"], "|X-A|1");
  auto bad = Call("PUT", "/api/rules", R"({"rules":[{"kind":"map-remote","spec":"|(|x"}]})");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body["error"].get<std::string>().find("rule 1"), std::string::npos);
  EXPECT_EQ(Call("PUT", "/api/rules", "not json")->status, 400);
  EXPECT_EQ(Call("POST", "/api/rules", "{}")->status, 405);
  EXPECT_EQ(controls_.Current()->active().size(), 1u);  // the refused sets changed nothing
}

TEST_F(ControlApiTest, HoldFiltersAndHeldFlows) {
  auto put = Call("PUT", "/api/hold", R"({"request":["host:a.test"],"response":[]})");
  EXPECT_EQ(put->status, 200);
  auto get = Call("GET", "/api/hold");
  EXPECT_EQ(get->body["request"][0], "host:a.test");
  EXPECT_TRUE(get->body["held"].empty());
  EXPECT_EQ(Call("PUT", "/api/hold", R"({"request":["(("]})")->status, 400);
  EXPECT_EQ(Call("POST", "/api/hold/resume")->body["resumed"], 0);
}

TEST_F(ControlApiTest, ActionsOnFlowsThatAreNotHeldSaySo) {
  auto resume = Call("POST", "/api/flows/1111/resume");
  ASSERT_TRUE(resume);
  EXPECT_EQ(resume->status, 409);
  EXPECT_NE(resume->body["error"].get<std::string>().find("not held"), std::string::npos);
  EXPECT_EQ(Call("POST", "/api/flows/1111/kill", R"({"request":{}})")->status, 400);
  EXPECT_EQ(Call("POST", "/api/flows/1111/resume", R"({"request":{"url":"ftp://x"}})")->status,
            400);
  EXPECT_EQ(Call("GET", "/api/flows/1111/resume")->status, 405);
  EXPECT_EQ(Call("POST", "/api/flows/1111/replay")->status, 503);  // no replayer here
  EXPECT_FALSE(Call("GET", "/api/flows/1111"));                    // not this API's
  EXPECT_FALSE(Call("GET", "/api/flows"));
}

}  // namespace
}  // namespace mitmd::web
