#include "http/ws_frame.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

namespace mitmd::http {
namespace {

std::string Frame(bool fin, uint8_t opcode, std::string_view payload, bool masked,
                  bool rsv1 = false) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode);
  uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f += static_cast<char>(mask_bit | payload.size());
  } else if (payload.size() < 65536) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xff);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff);
  }
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f += masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
  }
  return f;
}

// permessage-deflate: raw deflate with a sync flush, the 4-byte tail removed.
std::string Deflate(z_stream& z, std::string_view data) {
  std::string out(data.size() + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = data.size();
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = out.size();
  EXPECT_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  out.resize(out.size() - z.avail_out);
  EXPECT_TRUE(out.ends_with(std::string("\x00\x00\xff\xff", 4)));
  out.resize(out.size() - 4);
  return out;
}

class WsFrameTest : public ::testing::Test {
 protected:
  WsFrameReader Reader(bool from_client, WsDeflate deflate = {}, size_t cap = 1 << 20) {
    return WsFrameReader(from_client, deflate, cap,
                         [this](WsMessage&& m) { messages.push_back(std::move(m)); });
  }
  // Feeds |bytes| whole and then byte by byte; both must give the same messages.
  void FeedBothWays(bool from_client, const std::string& bytes, WsDeflate deflate = {}) {
    auto whole = Reader(from_client, deflate);
    ASSERT_TRUE(whole.Feed(bytes));
    std::vector<WsMessage> first = std::move(messages);
    messages.clear();
    auto bytewise = Reader(from_client, deflate);
    for (char c : bytes) ASSERT_TRUE(bytewise.Feed(std::string_view(&c, 1)));
    ASSERT_EQ(first.size(), messages.size());
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].payload, messages[i].payload);
  }
  std::vector<WsMessage> messages;
};

TEST_F(WsFrameTest, TextBinaryFragmentsAndInterleavedControl) {
  std::string bytes = Frame(true, 0x1, "hello", true) + Frame(false, 0x2, "ab", true) +
                      Frame(true, 0x9, "ping!", true) + Frame(false, 0x0, "cd", true) +
                      Frame(true, 0x0, "ef", true) + Frame(true, 0x8, "\x03\xe8" "bye", true);
  FeedBothWays(true, bytes);
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].opcode, WsOpcode::kText);
  EXPECT_EQ(messages[0].payload, "hello");
  EXPECT_EQ(messages[1].opcode, WsOpcode::kPing);  // a control frame may come between fragments
  EXPECT_EQ(messages[1].payload, "ping!");
  EXPECT_EQ(messages[2].opcode, WsOpcode::kBinary);
  EXPECT_EQ(messages[2].payload, "abcdef");
  EXPECT_EQ(messages[2].size, 6u);
  EXPECT_EQ(messages[3].opcode, WsOpcode::kClose);
  EXPECT_EQ(messages[3].close_code, 1000);
  EXPECT_EQ(messages[3].close_reason, "bye");
}

TEST_F(WsFrameTest, LargeMessageIsCappedButCounted) {
  std::string big(1 << 20, 'x');
  auto reader = Reader(false, {}, /*cap=*/1000);
  ASSERT_TRUE(reader.Feed(Frame(true, 0x2, big, false)));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].size, big.size());
  EXPECT_EQ(messages[0].payload.size(), 1000u);
  EXPECT_TRUE(messages[0].truncated);
}

TEST_F(WsFrameTest, SixtyFourBitLength) {
  std::string big(70000, 'y');
  FeedBothWays(false, Frame(true, 0x1, big, false));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].payload, big);
}

TEST_F(WsFrameTest, PermessageDeflateWithContextTakeover) {
  WsDeflate deflate = ParseWsDeflate("permessage-deflate; client_max_window_bits", false);
  ASSERT_TRUE(deflate.enabled);
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string text = "the same words again and again and again";
  std::string bytes = Frame(true, 0x1, Deflate(z, text), false, /*rsv1=*/true);
  std::string second = Deflate(z, text);  // refers back to the first message's window
  bytes += Frame(false, 0x1, second.substr(0, 3), false, true) +
           Frame(true, 0x0, second.substr(3), false);
  deflateEnd(&z);
  FeedBothWays(false, bytes, deflate);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_TRUE(messages[0].compressed);
  EXPECT_EQ(messages[0].payload, text);
  EXPECT_EQ(messages[1].payload, text);
  EXPECT_EQ(messages[1].size, text.size());
}

TEST_F(WsFrameTest, ExtensionParameters) {
  WsDeflate d = ParseWsDeflate(
      "x-other, permessage-deflate; client_no_context_takeover; server_max_window_bits=10", true);
  EXPECT_TRUE(d.enabled);
  EXPECT_TRUE(d.no_context_takeover);
  EXPECT_EQ(d.window_bits, 15);
  d = ParseWsDeflate("permessage-deflate; server_max_window_bits=10", false);
  EXPECT_EQ(d.window_bits, 10);
  EXPECT_FALSE(d.no_context_takeover);
  EXPECT_FALSE(ParseWsDeflate("x-webkit-deflate-frame", false).enabled);
}

TEST_F(WsFrameTest, ProtocolViolationsAreErrors) {
  struct Case {
    bool from_client;
    std::string bytes;
    std::string_view why;
  } cases[] = {
      {true, Frame(true, 0x1, "x", false), "not masked"},
      {false, Frame(true, 0x1, "x", true), "is masked"},
      {false, Frame(true, 0x3, "x", false), "reserved opcode"},
      {false, Frame(false, 0x9, "x", false), "fragmented"},
      {false, Frame(true, 0x9, std::string(126, 'p'), false), "125"},
      {false, Frame(true, 0x0, "x", false), "continuation"},
      {false, Frame(false, 0x1, "x", false) + Frame(true, 0x1, "y", false), "previous one"},
      {false, Frame(true, 0x1, "x", false, /*rsv1=*/true), "reserved bits"},
      {false, Frame(true, 0x8, "x", false), "1-byte"},
  };
  for (const Case& c : cases) {
    auto reader = Reader(c.from_client);
    auto st = reader.Feed(c.bytes);
    ASSERT_FALSE(st) << c.why;
    EXPECT_NE(st.error().message.find(c.why), std::string::npos) << st.error().message;
    EXPECT_TRUE(reader.failed());
    EXPECT_FALSE(reader.Feed("more"));
  }
}

}  // namespace
}  // namespace mitmd::http
