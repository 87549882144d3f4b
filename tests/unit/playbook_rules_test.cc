// Playbooks of hold, edit, kill and the rules (src/rules) in the proxy core: the orderings a
// socket test cannot reproduce (the client leaving while held, a resume arriving late, rules
// swapped mid-exchange). No sockets: see tests/support/playbook.h.

#include <gtest/gtest.h>

#include "core/strings.h"
#include "proxy/error_page.h"
#include "support/playbook.h"
#include "support/temp_dir.h"

namespace mitmd::testing {
namespace {

using rules::Command;
using rules::RuleKind;

constexpr char kGet[] = "GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n";
constexpr char kForwarded[] = "GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n";
constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

void SetRules(Playbook& pb, std::vector<rules::RuleSpec> specs, rules::HoldSpec hold = {}) {
  ASSERT_TRUE(pb.controls().SetHold(std::move(hold)));
  auto st = pb.controls().SetRules(std::move(specs));
  ASSERT_TRUE(st) << st.error().message;
}

// The id of the flow published last (the held one, in these playbooks).
std::string HeldId(const Playbook& pb) {
  for (auto it = pb.published().rbegin(); it != pb.published().rend(); ++it) {
    if ((*it)->state == FlowState::kHeld) return (*it)->id;
  }
  return "";
}

Event Send(Playbook& pb, Command command, Status* result, std::string what) {
  return Call(std::move(what), [&pb, command, result] {
    *result = pb.controls().flows().Send(HeldId(pb), command);
  });
}

Command Resume(rules::Edit edit = {}) { return Command{Command::Action::kResume, std::move(edit)}; }
Command Kill() { return Command{Command::Action::kKill, {}}; }

TEST(PlaybookRules, HeldRequestIsEditedAndResumed) {
  Playbook pb;
  SetRules(pb, {}, {{"host:a.test"}, {}});
  rules::Edit edit;
  edit.request.emplace();
  edit.request->url = "http://a.test/edited";
  edit.request->headers = HeaderList{{"Host", "a.test"}, {"X-Edited", "1"}};
  Status result;
  pb >> FromClient(kGet);    // held: nothing goes upstream
  pb >> TimerFired("idle");  // a held exchange is not idle
  pb >> Send(pb, Resume(edit), &result, "resume with edits") << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /edited HTTP/1.1\r\nHost: a.test\r\nX-Edited: 1\r\n\r\n");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/edited");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(result) << result.error().message;
  ASSERT_FALSE(pb.published().empty());
  bool saw_held = false;
  for (const auto& f : pb.published()) saw_held |= f->state == FlowState::kHeld;
  EXPECT_TRUE(saw_held);
  const Flow& f = *pb.recorded()[0];
  ASSERT_EQ(f.modified_by.size(), 2u);
  EXPECT_EQ(f.modified_by[0].rule, "edit");
  EXPECT_EQ(f.modified_by[0].before, "http://a.test/x");
  EXPECT_EQ(f.modified_by[1].what, "request headers");
  EXPECT_TRUE(pb.controls().flows().HeldIds().empty());
}

TEST(PlaybookRules, HeldRequestBodyIsReplacedAndReframed) {
  Playbook pb;
  SetRules(pb, {}, {{"method:POST"}, {}});
  rules::Edit edit;
  edit.request.emplace();
  edit.request->body = "goodbye";
  Status result;
  pb >> FromClient(
            "POST http://a.test/p HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n");
  pb >> Send(pb, Resume(edit), &result, "resume with a new body") << Dial("a.test:80");
  pb >>
      Dialed() << ToServer("POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 7\r\n\r\ngoodbye");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 POST http://a.test/p");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(result) << result.error().message;
  EXPECT_EQ(pb.recorded()[0]->request->body.content, "goodbye");
}

TEST(PlaybookRules, UneditedHeldRequestGoesOnByteForByte) {
  const std::string post =
      "POST http://a.test/p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello";
  Playbook pb;
  SetRules(pb, {}, {{"host:a.test"}, {}});
  Status result;
  pb >> FromClient(post);
  pb >> Send(pb, Resume(), &result, "resume") << Dial("a.test:80");
  pb >> Dialed() << ToServer("POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 POST http://a.test/p");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(pb.recorded()[0]->modified_by.empty());
}

TEST(PlaybookRules, KilledRequestGetsAnErrorAndIsRecordedAsKilled) {
  Playbook pb;
  SetRules(pb, {}, {{"host:a.test"}, {}});
  Status result;
  pb >> FromClient(kGet);
  pb >> Send(pb, Kill(), &result, "kill")
            << ToClient(proxy::Encode(
                   proxy::ErrorPage(502, "the mitmd user killed this exchange while it was held")))
            << Recorded("502 GET http://a.test/x error=killed") << CloseClient();
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(result);
  EXPECT_TRUE(pb.controls().flows().HeldIds().empty());
}

TEST(PlaybookRules, ClientLeavingWhileHeldIsRecordedAndALateResumeSaysSo) {
  Playbook pb;
  SetRules(pb, {}, {{"host:a.test"}, {}});
  std::string id;
  pb >> FromClient(kGet);
  pb >> Call("remember the held flow", [&] { id = HeldId(pb); });
  pb >> ClientEof() << Recorded("- GET http://a.test/x error=response") << CloseClient();
  ASSERT_TRUE(pb.Run());
  ASSERT_FALSE(id.empty());
  auto late = pb.controls().flows().Send(id, Resume());
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().message.find("not held"), std::string::npos);
}

TEST(PlaybookRules, ResumeAfterTheFlowWentOnDoesNothing) {
  Playbook pb;
  SetRules(pb, {}, {{"host:a.test"}, {}});
  Status first, second;
  std::string id;
  pb >> FromClient(kGet);
  pb >> Call("remember the held flow", [&] { id = HeldId(pb); });
  pb >> Send(pb, Resume(), &first, "resume") << Dial("a.test:80");
  pb >> Call("resume again", [&] { second = pb.controls().flows().Send(id, Resume()); });
  pb >> Dialed() << ToServer(kForwarded);
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
}

TEST(PlaybookRules, HeldResponseIsEditedAndResumed) {
  Playbook pb;
  SetRules(pb, {}, {{}, {"status:200"}});
  rules::Edit edit;
  edit.response.emplace();
  edit.response->status = 201;
  edit.response->body = "bye";
  Status wrong_side, result;
  rules::Edit request_edit;
  request_edit.request.emplace();
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
  pb >> Send(pb, Resume(request_edit), &wrong_side, "resume with a request edit");
  pb >> Send(pb, Resume(edit), &result, "resume with a new status and body")
            << ToClient("HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nbye")
            << Recorded("201 GET http://a.test/x");
  pb >> FromClient(kGet) << ToServer(kForwarded);  // the upstream went back to the pool
  ASSERT_TRUE(pb.Run());
  ASSERT_FALSE(wrong_side);
  EXPECT_NE(wrong_side.error().message.find("edit the response"), std::string::npos);
  EXPECT_TRUE(result) << result.error().message;
  const Flow& f = *pb.recorded()[0];
  EXPECT_EQ(f.response->body.content, "bye");
  ASSERT_EQ(f.modified_by.size(), 2u);
  EXPECT_EQ(f.modified_by[1].before, "hi");
}

TEST(PlaybookRules, HeldResponseKilled) {
  Playbook pb;
  SetRules(pb, {}, {{}, {"status:200"}});
  Status result;
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(kOk);
  pb >> Send(pb, Kill(), &result, "kill")
            << ToClient(proxy::Encode(
                   proxy::ErrorPage(502, "the mitmd user killed this exchange while it was held")))
            << Recorded("502 GET http://a.test/x error=killed") << CloseClient();
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookRules, BodiesOverTheHoldCapStreamUnheld) {
  Playbook pb([](Config& c) { c.hold_max_body = 4; });
  SetRules(pb, {}, {{"host:a.test"}, {}});
  pb >> FromClient(
            "POST http://a.test/p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n0123456789")
            << Dial("a.test:80");
  pb >> Dialed() << ToServer(
            "POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n0123456789");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 POST http://a.test/p");
  ASSERT_TRUE(pb.Run());
  EXPECT_NE(pb.recorded()[0]->note.find("--hold-max-body"), std::string::npos);
}

TEST(PlaybookRules, MapLocalAnswersFromAFile) {
  TempDir dir;
  WriteFile(dir.File("x.json"), "{\"mock\":true}");
  Playbook pb;
  SetRules(pb, {{RuleKind::kMapLocal, "|path:/x|" + dir.path(), true}});
  pb >> FromClient("GET http://a.test/x.json HTTP/1.1\r\nHost: a.test\r\n\r\n")
            << ToClient(
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n"
                   "Cache-Control: no-store\r\nConnection: close\r\n\r\n{\"mock\":true}")
            << Recorded("200 GET http://a.test/x.json") << CloseClient();
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  ASSERT_EQ(f.modified_by.size(), 1u);
  EXPECT_EQ(f.modified_by[0].rule, "map-local |path:/x|" + dir.path());
  EXPECT_NE(f.note.find("x.json"), std::string::npos);
}

TEST(PlaybookRules, MapRemoteSendsTheRequestElsewhere) {
  Playbook pb;
  SetRules(pb,
           {{RuleKind::kMapRemote, "|host:a.test|http://a\\.test/|http://b.test:8080/v2/", true}});
  pb >> FromClient(kGet) << Dial("b.test:8080");
  pb >> Dialed() << ToServer("GET /v2/x HTTP/1.1\r\nHost: b.test:8080\r\n\r\n");
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://b.test:8080/v2/x");
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  ASSERT_EQ(f.modified_by.size(), 1u);
  EXPECT_EQ(f.modified_by[0].before, "http://a.test/x");
  EXPECT_EQ(f.server_host, "b.test");
}

TEST(PlaybookRules, MapRemoteToMitmdItselfIsRefused) {
  Playbook pb;
  SetRules(pb, {{RuleKind::kMapRemote, "|http://a\\.test/|http://127.0.0.1:8080/", true}});
  const std::string message =
      "127.0.0.1:8080 is mitmd's own proxy address: mitmd does not proxy to itself";
  pb >> FromClient(kGet) << ToClient(proxy::Encode(proxy::ErrorPage(502, message)))
                         << Recorded("502 GET http://a.test/x error=proxy_request")
                         << CloseClient();
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookRules, ModifyHeadersOnRequestAndResponse) {
  Playbook pb;
  SetRules(pb, {{RuleKind::kModifyHeaders, "|host:a.test|X-Env|dev", true},
                {RuleKind::kModifyHeaders, "|status:200|Server|", true}});
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /x HTTP/1.1\r\nHost: a.test\r\nX-Env: dev\r\n\r\n");
  pb >> FromServer("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nhi")
            << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Env: dev\r\n\r\nhi")
            << Recorded("200 GET http://a.test/x");
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  ASSERT_EQ(f.modified_by.size(), 3u);
  EXPECT_EQ(f.modified_by[0].what, "request header X-Env");
  EXPECT_EQ(f.modified_by[1].what, "response header X-Env");
  EXPECT_EQ(f.modified_by[2].what, "response header Server");
  EXPECT_EQ(f.modified_by[2].before, "nginx");
}

TEST(PlaybookRules, ModifyBodyRewritesAChunkedResponse) {
  Playbook pb;
  SetRules(pb, {{RuleKind::kModifyBody, "|host:a.test|world|mitmd", true}});
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer(kForwarded);
  pb >> FromServer(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello "
            "\r\n5\r\nworld\r\n0\r\n\r\n")
            << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello mitmd")
            << Recorded("200 GET http://a.test/x");
  pb >> FromClient(kGet) << ToServer(kForwarded);
  pb >> FromServer(kOk) << ToClient(kOk) << Recorded("200 GET http://a.test/x");  // unchanged
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(pb.recorded()[0]->response->body.content, "hello mitmd");
  EXPECT_EQ(pb.recorded()[0]->modified_by.size(), 1u);
  EXPECT_TRUE(pb.recorded()[1]->modified_by.empty());
}

TEST(PlaybookRules, ModifyBodyRewritesARequest) {
  Playbook pb;
  SetRules(pb, {{RuleKind::kModifyBody, "|method:POST|secret|xxxxxx", true}});
  pb >> FromClient(
            "POST http://a.test/p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 8\r\n\r\nsecret=1")
            << Dial("a.test:80");
  pb >>
      Dialed() << ToServer("POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 8\r\n\r\nxxxxxx=1");
  ASSERT_TRUE(pb.Run());
}

TEST(PlaybookRules, ARuleSetChangedMidExchangeAppliesToTheNextOne) {
  Playbook pb;
  SetRules(pb, {{RuleKind::kModifyHeaders, "|X-Set|old", true}});
  pb >> FromClient(kGet) << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /x HTTP/1.1\r\nHost: a.test\r\nX-Set: old\r\n\r\n");
  pb >> Call("swap the rules", [&] {
    ASSERT_TRUE(pb.controls().SetRules({{RuleKind::kModifyHeaders, "|X-Set|new", true}}));
  });
  // The response still sees the set the exchange started with.
  pb >> FromServer(kOk) << ToClient("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Set: old\r\n\r\nhi")
                        << Recorded("200 GET http://a.test/x");
  pb >> FromClient(kGet) << ToServer("GET /x HTTP/1.1\r\nHost: a.test\r\nX-Set: new\r\n\r\n");
  ASSERT_TRUE(pb.Run());
}

}  // namespace
}  // namespace mitmd::testing
