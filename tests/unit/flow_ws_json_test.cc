// The HTTP/2 and WebSocket members of a flow: both JSON writers agree and the reader reads back.

#include <gtest/gtest.h>

#include "flow/filter.h"
#include "flow/flow_json.h"
#include "flow/har.h"

namespace mitmd {
namespace {

using nlohmann::json;

Flow WebSocketFlow() {
  Flow f;
  f.id = "ws-1";
  f.stream_id = 7;
  f.request.emplace().method = "GET";
  WebSocketRecord& ws = f.websocket.emplace();
  ws.messages.push_back({true, "text", 1700000000.5, 5, "hello", false, false});
  ws.messages.push_back({false, "binary", 1700000000.75, 4, std::string("\x00\xff\x01\x80", 4),
                         false, true});
  ws.messages.push_back({true, "close", 1700000001.0, 5, std::string("\x03\xe8" "bye", 5), false,
                         false});
  ws.dropped = 3;
  ws.close = WebSocketClose{true, 1000, "bye"};
  ws.error = "frames stopped: \"bad\"";
  return f;
}

TEST(FlowWebSocketJsonTest, LineWriterMatchesTheDomAndReadsBack) {
  Flow f = WebSocketFlow();
  std::string line = FlowToJsonLine(f);
  EXPECT_EQ(line, FlowToJson(f).dump(-1, ' ', false, json::error_handler_t::replace));
  auto back = FlowFromJson(json::parse(line));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->stream_id, 7u);
  ASSERT_TRUE(back->websocket);
  const WebSocketRecord& ws = *back->websocket;
  ASSERT_EQ(ws.messages.size(), 3u);
  EXPECT_EQ(ws.messages[0].content, "hello");
  EXPECT_TRUE(ws.messages[0].from_client);
  EXPECT_EQ(ws.messages[1].content, std::string("\x00\xff\x01\x80", 4));
  EXPECT_TRUE(ws.messages[1].compressed);
  EXPECT_EQ(ws.messages[1].opcode, "binary");
  EXPECT_EQ(ws.messages[2].time, 1700000001.0);
  EXPECT_EQ(ws.dropped, 3u);
  ASSERT_TRUE(ws.close);
  EXPECT_EQ(ws.close->code, 1000);
  EXPECT_TRUE(ws.close->by_client);
  EXPECT_EQ(ws.error, "frames stopped: \"bad\"");
}

TEST(FlowWebSocketJsonTest, AbsentMembersStayAbsent) {
  Flow f;
  f.id = "plain";
  json j = FlowToJson(f);
  EXPECT_FALSE(j.contains("stream_id"));
  EXPECT_FALSE(j.contains("websocket"));
  EXPECT_EQ(FlowToJsonLine(f), j.dump());
}

TEST(FlowWebSocketJsonTest, WrongTypedMessageIsAnError) {
  json j = FlowToJson(WebSocketFlow());
  j["websocket"]["messages"][1]["size"] = "big";
  auto back = FlowFromJson(j);
  ASSERT_FALSE(back);
  EXPECT_NE(back.error().message.find("websocket.messages[1].size"), std::string::npos)
      << back.error().message;
}

bool Matches(std::string_view filter, const Flow& f) {
  auto parsed = Filter::Parse(filter);
  EXPECT_TRUE(parsed) << filter;
  return parsed && parsed->Matches(f);
}

TEST(FlowWebSocketJsonTest, FilterTerms) {
  Flow ws = WebSocketFlow();
  Flow plain;
  plain.request.emplace().version = "HTTP/1.1";
  Flow grpc;
  grpc.request.emplace().version = "HTTP/2";
  grpc.request->headers = {{":method", "POST"}, {"content-type", "application/grpc+proto"}};
  EXPECT_TRUE(Matches("is:ws", ws));
  EXPECT_FALSE(Matches("is:ws", plain));
  EXPECT_TRUE(Matches("ws:HELLO", ws));
  EXPECT_TRUE(Matches("ws:bye", ws));
  EXPECT_FALSE(Matches("ws:absent", ws));
  EXPECT_FALSE(Matches("ws:hello", plain));
  EXPECT_TRUE(Matches("is:h2", ws));  // a stream id: it came over HTTP/2
  EXPECT_TRUE(Matches("is:h2", grpc));
  EXPECT_FALSE(Matches("is:h2", plain));
  EXPECT_TRUE(Matches("is:grpc", grpc));
  EXPECT_FALSE(Matches("is:grpc", plain));
}

TEST(FlowWebSocketJsonTest, HarCarriesWebSocketMessagesAsChromeDoes) {
  Flow f = WebSocketFlow();
  f.request->scheme = "https";
  f.request->host = "ws.test";
  f.request->path = "/socket";
  json entry = BuildHarEntry(f, HarOptions{});
  ASSERT_TRUE(entry.contains("_webSocketMessages"));
  const json& m = entry["_webSocketMessages"];
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0], (json{{"type", "send"}, {"time", 1700000000.5}, {"opcode", 1}, {"data", "hello"}}));
  EXPECT_EQ(m[1]["type"], "receive");
  EXPECT_EQ(m[1]["opcode"], 2);
  EXPECT_EQ(m[1]["data"], "AP8BgA==");
  EXPECT_EQ(m[2]["opcode"], 8);
}

}  // namespace
}  // namespace mitmd
