#include "proxy/ws_recorder.h"

#include <gtest/gtest.h>

namespace mitmd::proxy {
namespace {

std::string Frame(uint8_t opcode, std::string_view payload, bool masked) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  f += static_cast<char>((masked ? 0x80 : 0) | payload.size());  // short frames only
  const char key[4] = {9, 8, 7, 6};
  if (masked) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) f += masked ? payload[i] ^ key[i & 3] : payload[i];
  return f;
}

class WsRecorderTest : public ::testing::Test {
 protected:
  WsRecorderTest() { flow.body_record_cap = 8; }
  Flow flow;
  double clock = 100;
};

TEST_F(WsRecorderTest, RecordsBothDirectionsInOrderWithTheCloseCode) {
  WsRecorder rec(flow, {{"Upgrade", "websocket"}}, [this] { return clock += 1; });
  // Split anywhere: the recorder reads a byte stream, not frames.
  std::string up = Frame(0x1, "hi", true) + Frame(0x9, "", true);
  EXPECT_FALSE(rec.Feed(true, up.substr(0, 3)));
  EXPECT_TRUE(rec.Feed(true, up.substr(3)));
  EXPECT_TRUE(rec.Feed(false, Frame(0x2, "0123456789", false)));
  EXPECT_TRUE(rec.Feed(false, Frame(0x8, "\x03\xe9" "away", false)));
  ASSERT_TRUE(flow.websocket);
  const auto& m = flow.websocket->messages;
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].opcode, "text");
  EXPECT_TRUE(m[0].from_client);
  EXPECT_EQ(m[0].content, "hi");
  EXPECT_EQ(m[1].opcode, "ping");
  EXPECT_EQ(m[2].opcode, "binary");
  EXPECT_FALSE(m[2].from_client);
  EXPECT_EQ(m[2].size, 10u);
  EXPECT_EQ(m[2].content, "01234567");  // the body record cap
  EXPECT_TRUE(m[2].truncated);
  EXPECT_LT(m[0].time, m[2].time);
  ASSERT_TRUE(flow.websocket->close);
  EXPECT_EQ(flow.websocket->close->code, 1001);
  EXPECT_EQ(flow.websocket->close->reason, "away");
  EXPECT_FALSE(flow.websocket->close->by_client);
}

TEST_F(WsRecorderTest, CountCapIsVisible) {
  flow.body_record_cap = 1024;  // the content budget is not what ends it
  WsRecorder rec(flow, {}, [] { return 0.0; });
  std::string many;
  for (size_t i = 0; i < WsRecorder::kMaxMessages + 5; ++i) many += Frame(0x1, "x", false);
  rec.Feed(false, many);
  EXPECT_EQ(flow.websocket->messages.size(), WsRecorder::kMaxMessages);
  EXPECT_EQ(flow.websocket->dropped, 5u);
}

TEST_F(WsRecorderTest, ContentBudgetIsVisible) {
  WsRecorder rec(flow, {}, [] { return 0.0; });
  std::string many;
  for (int i = 0; i < 20; ++i) many += Frame(0x1, "12345678", false);  // 8 bytes each
  rec.Feed(false, many);
  EXPECT_EQ(flow.websocket->messages.size(), WsRecorder::kMaxContentFactor);
  EXPECT_EQ(flow.websocket->dropped, 20 - WsRecorder::kMaxContentFactor);
}

TEST_F(WsRecorderTest, BrokenFramesStopRecordingWithAReason) {
  WsRecorder rec(flow, {}, [] { return 0.0; });
  EXPECT_TRUE(rec.Feed(true, Frame(0x1, "unmasked", false)));
  EXPECT_NE(flow.websocket->error.find("client frames"), std::string::npos);
  EXPECT_FALSE(rec.Feed(true, Frame(0x1, "x", true)));
  EXPECT_TRUE(flow.websocket->messages.empty());
}

TEST_F(WsRecorderTest, RecognizesTheUpgrade) {
  EXPECT_TRUE(WsRecorder::IsWebSocketUpgrade({{"Upgrade", "websocket"}}, 101,
                                             {{"upgrade", "WebSocket"}}));
  EXPECT_FALSE(WsRecorder::IsWebSocketUpgrade({{"Upgrade", "h2c"}}, 101, {{"Upgrade", "h2c"}}));
  EXPECT_FALSE(WsRecorder::IsWebSocketUpgrade({{"Upgrade", "websocket"}}, 200, {}));
}

}  // namespace
}  // namespace mitmd::proxy
