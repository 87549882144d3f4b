// Issue 9, WebSocket through mitmd with Python websockets over TLS (permessage-deflate on): the
// frames are relayed untouched and every message is recorded on the upgrade's flow, in order,
// with the server's close code; the flow is live while the socket is open. Also over HTTP/2
// (RFC 8441), negotiated down to an HTTP/1.1 server.

#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

class WsTest : public ProxyTest {
 protected:
  // Runs tests/integration/scripts/|script| (its WebSocket server on the localhost leaf, its
  // client through mitmd trusting mitmd's root) and returns what it printed, parsed. |extra|:
  // more arguments for the script.
  nlohmann::json RunWsScript(const std::string& script, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        "/usr/bin/python3", std::string(MITMD_SOURCE_DIR) + "/tests/integration/scripts/" + script,
        std::to_string(mitmd_.port()), mitmd_.ca_cert_path(), localhost_files_.cert,
        localhost_files_.key};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ProcessResult r = RunProcess(argv, std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }
};

// A recorded WebSocket's messages as "opcode:text" (short text) or "opcode:size", each
// direction in the order its side sent them: {from the client, from the server}.
std::pair<std::vector<std::string>, std::vector<std::string>> MessageSequences(
    const nlohmann::json& ws) {
  std::vector<std::string> up, down;
  for (const auto& m : ws["messages"]) {
    std::string desc = m["opcode"].get<std::string>() + ":" +
                       (m["opcode"] == "text" && m["size"] < 100 ? m["content"].get<std::string>()
                                                                : std::to_string(m["size"].get<int>()));
    (m["from_client"].get<bool>() ? up : down).push_back(desc);
  }
  return {up, down};
}

TEST_F(WsTest, MessagesOfAWebSocketAreRecordedInOrder) {
  if (system("/usr/bin/python3 -c 'import websockets' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-websockets is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  nlohmann::json result = RunWsScript("ws_session.py");
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["got"], nlohmann::json::parse(R"(["hello", "0001ff", 1048576, [4001, "done"]])"));
  EXPECT_EQ(result["extensions"], nlohmann::json::parse(R"(["permessage-deflate"])"));

  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_EQ(f["response"]["status"], 101) << f.dump().substr(0, 2000);
  ASSERT_TRUE(f.contains("websocket")) << f.dump().substr(0, 2000);
  const auto& ws = f["websocket"];
  EXPECT_EQ(ws["close"]["code"], 4001);
  EXPECT_EQ(ws["close"]["reason"], "done");
  EXPECT_EQ(ws["close"]["by"], "server");
  auto [up, down] = MessageSequences(ws);
  for (const auto& m : ws["messages"]) {
    if (m["size"] == 1048576) {
      EXPECT_EQ(m["compressed"], true) << "permessage-deflate was on";
    }
  }
  EXPECT_EQ(up, (std::vector<std::string>{"text:hello", "binary:3", "ping:2", "text:1048576",
                                          "close:6"}));
  EXPECT_EQ(down, (std::vector<std::string>{"text:hello", "binary:3", "pong:2", "text:1048576",
                                            "close:6"}));
}

// RFC 8441: a Python h2 client opens the WebSocket as an extended CONNECT stream on its HTTP/2
// connection to mitmd, which announced SETTINGS_ENABLE_CONNECT_PROTOCOL; the websockets server
// speaks HTTP/1.1 only, so mitmd sends it the Upgrade and relays the socket on the stream. The
// messages are recorded as for a WebSocket over HTTP/1.1; the flow shows both sides' heads.
TEST_F(WsTest, AWebSocketOverHttp2IsNegotiatedDownAndRecorded) {
  if (system("/usr/bin/python3 -c 'import websockets, h2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-websockets or python3-h2 is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  nlohmann::json result = RunWsScript("ws_over_h2.py");
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["enable_connect_protocol"], 1);
  EXPECT_EQ(result["status"], "200");
  EXPECT_EQ(result["got"],
            nlohmann::json::parse(R"(["hello", "0001ff", [10, "p1"], 300000, [8, 1000, "bye"]])"));

  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_EQ(f["request"]["version"], "HTTP/2") << f.dump().substr(0, 2000);
  EXPECT_EQ(f["request"]["method"], "CONNECT");
  EXPECT_EQ(HeaderValue(f["request"]["headers"], ":protocol"), "websocket");
  EXPECT_EQ(f["request"]["path"], "/chat?room=1");
  EXPECT_EQ(f["response"]["status"], 101);
  EXPECT_EQ(f["response"]["version"], "HTTP/1.1");
  EXPECT_TRUE(!f.contains("error") || f["error"].is_null()) << f.dump().substr(0, 2000);
  ASSERT_TRUE(f.contains("websocket")) << f.dump().substr(0, 2000);
  const auto& ws = f["websocket"];
  EXPECT_EQ(ws["close"]["code"], 1000);
  EXPECT_EQ(ws["close"]["reason"], "bye");
  auto [up, down] = MessageSequences(ws);
  EXPECT_EQ(up, (std::vector<std::string>{"text:hello", "binary:3", "ping:2", "text:300000",
                                          "close:5"}));
  EXPECT_EQ(down, (std::vector<std::string>{"text:hello", "binary:3", "pong:2", "text:300000",
                                            "close:5"}));
  EXPECT_GT(f["bytes"]["up"], 300000);
  EXPECT_GT(f["bytes"]["down"], 300000);
}

// RFC 8441 on both sides: the server speaks HTTP/2 only and announces
// SETTINGS_ENABLE_CONNECT_PROTOCOL, so mitmd sends the client's extended CONNECT upstream on its
// HTTP/2 connection (no HTTP/1.1 Upgrade, which this server would refuse) and relays the
// stream's DATA both ways. The server saw the extended CONNECT with the client's path and
// sec-websocket-version; the messages are recorded as for any other WebSocket. (Before mitmd
// sent extended CONNECT upstream, it dialed the server again for an HTTP/1.1 Upgrade, which this
// h2-only server closes: a 502.)
TEST_F(WsTest, AWebSocketOverHttp2IsRelayedAsExtendedConnectToAnH2Server) {
  if (system("/usr/bin/python3 -c 'import h2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h2 is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  nlohmann::json result = RunWsScript("ws_over_h2.py", {"h2"});
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["status"], "200");
  EXPECT_EQ(result["got"],
            nlohmann::json::parse(R"(["hello", "0001ff", [10, "p1"], 300000, [8, 1000, "bye"]])"));
  const auto& saw = result["server_saw"];
  EXPECT_FALSE(saw.contains("errors")) << result.dump();
  EXPECT_EQ(saw[":method"], "CONNECT") << result.dump();
  EXPECT_EQ(saw[":protocol"], "websocket");
  EXPECT_EQ(saw[":scheme"], "https");
  EXPECT_EQ(saw[":path"], "/chat?room=1");
  EXPECT_EQ(saw["sec-websocket-version"], "13");

  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_EQ(f["request"]["version"], "HTTP/2") << f.dump().substr(0, 2000);
  EXPECT_EQ(f["request"]["method"], "CONNECT");
  EXPECT_EQ(f["response"]["status"], 200);
  EXPECT_EQ(f["response"]["version"], "HTTP/2");
  EXPECT_NE(f["note"].get<std::string>().find("RFC 8441) on both sides"), std::string::npos)
      << f["note"];
  EXPECT_TRUE(!f.contains("error") || f["error"].is_null()) << f.dump().substr(0, 2000);
  ASSERT_TRUE(f.contains("websocket")) << f.dump().substr(0, 2000);
  const auto& ws = f["websocket"];
  EXPECT_EQ(ws["close"]["code"], 1000);
  auto [up, down] = MessageSequences(ws);
  EXPECT_EQ(up, (std::vector<std::string>{"text:hello", "binary:3", "ping:2", "text:300000",
                                          "close:5"}));
  EXPECT_EQ(down, (std::vector<std::string>{"text:hello", "binary:3", "pong:2", "text:300000",
                                            "close:5"}));
}

// An HTTP/2 server whose SETTINGS do not allow extended CONNECT gets the HTTP/1.1 Upgrade
// instead; this one speaks only HTTP/2 and closes that connection, so the client gets a 502
// whose flow says why the WebSocket did not go over HTTP/2.
TEST_F(WsTest, AnH2OnlyServerThatDoesNotAllowExtendedConnectIsAClear502) {
  if (system("/usr/bin/python3 -c 'import h2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h2 is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  nlohmann::json result = RunWsScript("ws_over_h2.py", {"h2-noext"});
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["status"], "502");
  EXPECT_FALSE(result["server_saw"].contains(":protocol")) << "nothing sent :protocol to it";
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_EQ(f["response"]["status"], 502) << f.dump().substr(0, 2000);
  ASSERT_TRUE(f.contains("error") && f["error"].is_object()) << f.dump().substr(0, 2000);
  EXPECT_NE(f["note"].get<std::string>().find("SETTINGS do not allow extended CONNECT"),
            std::string::npos)
      << f["note"];
}

// The server resetting the WebSocket's stream, or closing its connection, mid-socket: the
// client's stream is reset too and the flow is recorded once, with the message that had gone
// through and an error saying what happened.
TEST_F(WsTest, AnH2ServerEndingTheSocketAbruptlyEndsTheFlowOnce) {
  if (system("/usr/bin/python3 -c 'import h2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h2 is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  struct Case {
    std::string mode;
    int reset;
    std::string error;
  } cases[] = {{"h2-reset", 2, "the server reset the WebSocket's stream"},
               {"h2-drop", 2, "closed its connection with the WebSocket open"}};
  size_t seen = 0;
  for (const Case& c : cases) {
    nlohmann::json result = RunWsScript("ws_over_h2.py", {c.mode});
    ASSERT_TRUE(result.is_object()) << c.mode;
    EXPECT_EQ(result["status"], "200") << c.mode;
    EXPECT_EQ(result["got"], nlohmann::json::parse(R"(["hello"])")) << c.mode;
    EXPECT_EQ(result["reset"], c.reset) << c.mode;
    auto flows = mitmd_.WaitForFlows(++seen);
    ASSERT_EQ(flows.size(), seen) << c.mode << ": recorded once";
    const auto& f = flows.back();
    EXPECT_EQ(f["response"]["status"], 200) << f.dump().substr(0, 2000);
    ASSERT_TRUE(f.contains("error") && f["error"].is_object()) << f.dump().substr(0, 2000);
    EXPECT_NE(f["error"]["message"].get<std::string>().find(c.error), std::string::npos)
        << f["error"];
    auto [up, down] = MessageSequences(f["websocket"]);
    EXPECT_EQ(up, std::vector<std::string>{"text:hello"}) << c.mode;
    EXPECT_EQ(down, std::vector<std::string>{"text:hello"}) << c.mode;
  }
}

}  // namespace
}  // namespace mitmd::testing
