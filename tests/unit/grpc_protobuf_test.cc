#include <gtest/gtest.h>

#include "core/strings.h"
#include "decode/grpc.h"
#include "decode/protobuf.h"

namespace mitmd::decode {
namespace {

using nlohmann::json;

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

TEST(ProtobufTest, VarintStringNestedAndFixed) {
  // 1: 150; 2: "testing"; 3: {1: 150}; 4: fixed32 1.0f; 5: -1 as sint (zigzag 1).
  std::string msg = Bytes({0x08, 0x96, 0x01}) + Bytes({0x12, 0x07}) + "testing" +
                    Bytes({0x1a, 0x03, 0x08, 0x96, 0x01}) + Bytes({0x25, 0x00, 0x00, 0x80, 0x3f}) +
                    Bytes({0x28, 0x01});
  auto j = DecodeProtobuf(msg);
  ASSERT_TRUE(j) << j.error().message;
  ASSERT_EQ(j->size(), 5u);
  EXPECT_EQ((*j)[0], (json{{"field", 1}, {"wire", "varint"}, {"value", 150}, {"sint", 75}}));
  EXPECT_EQ((*j)[1]["string"], "testing");
  EXPECT_EQ((*j)[1]["size"], 7);
  EXPECT_EQ((*j)[2]["message"][0]["value"], 150);
  EXPECT_EQ((*j)[3]["wire"], "i32");
  EXPECT_EQ((*j)[3]["float"], 1.0);
  EXPECT_EQ((*j)[4]["sint"], -1);
}

TEST(ProtobufTest, BinaryThatIsNoMessageStaysBytes) {
  std::string msg = Bytes({0x0a, 0x03, 0xff, 0xff, 0xff});
  auto j = DecodeProtobuf(msg);
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)[0]["bytes"], Base64Encode(Bytes({0xff, 0xff, 0xff})));
  EXPECT_FALSE((*j)[0].contains("message"));
}

TEST(ProtobufTest, BytesThatAreNotStrictlyUtf8StayBytes) {
  // A lead byte past U+10FFFF (protobuf_fuzz's find), a surrogate and an overlong form: shown
  // as bytes, never as a string the viewer's JSON would have to replace.
  for (const std::string& bytes : {Bytes({0xf7, 0x97, 0x97, 0x90}), Bytes({0xed, 0xa0, 0x80}),
                                   Bytes({0xc0, 0xaf})}) {
    std::string msg = Bytes({0x0a, static_cast<int>(bytes.size())}) + bytes;
    auto j = DecodeProtobuf(msg);
    ASSERT_TRUE(j);
    EXPECT_EQ((*j)[0]["bytes"], Base64Encode(bytes));
    EXPECT_FALSE((*j)[0].contains("string"));
  }
}

TEST(ProtobufTest, GroupsAndErrors) {
  // 1: group { 2: 5 } end group.
  auto j = DecodeProtobuf(Bytes({0x0b, 0x10, 0x05, 0x0c}));
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ((*j)[0]["wire"], "group");
  EXPECT_EQ((*j)[0]["message"][0]["value"], 5);

  auto overrun = DecodeProtobuf(Bytes({0x0a, 0x10, 0x01}));
  ASSERT_FALSE(overrun);
  EXPECT_NE(overrun.error().message.find("offset 0"), std::string::npos);
  EXPECT_FALSE(DecodeProtobuf(Bytes({0x08})));        // varint missing
  EXPECT_FALSE(DecodeProtobuf(Bytes({0x0f, 0x00})));  // wire type 7
  EXPECT_FALSE(DecodeProtobuf(Bytes({0x00, 0x00})));  // field 0
}

TEST(ProtobufTest, DeepNestingIsBounded) {
  std::string msg = Bytes({0x08, 0x01});
  for (int i = 0; i < 40; ++i) msg = Bytes({0x0a, static_cast<int>(msg.size())}) + msg;
  ASSERT_LT(msg.size(), 128u);
  auto j = DecodeProtobuf(msg);
  ASSERT_TRUE(j) << j.error().message;
  int depth = 0;
  const json* at = &*j;
  while ((*at)[0].contains("message")) {
    at = &(*at)[0]["message"];
    ++depth;
  }
  EXPECT_EQ(depth, ProtobufLimits{}.max_depth - 1);  // deeper levels are shown as bytes
  EXPECT_TRUE((*at)[0].contains("bytes"));
}

TEST(GrpcTest, SplitsMessagesAndReportsACutOne) {
  std::string body = Bytes({0, 0, 0, 0, 2}) + Bytes({0x08, 0x01}) + Bytes({1, 0, 0, 0, 1}) + "z" +
                     Bytes({0, 0, 0, 0, 9}) + "abc";
  auto msgs = SplitGrpc(body);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].length, 2u);
  EXPECT_TRUE(msgs[0].complete);
  EXPECT_TRUE(msgs[1].compressed);
  EXPECT_EQ(msgs[1].data, "z");
  EXPECT_FALSE(msgs[2].complete);
  EXPECT_EQ(msgs[2].data, "abc");
  json view = GrpcMessagesJson(body, false);
  EXPECT_EQ(view["messages"][0]["protobuf"][0]["value"], 1);
  EXPECT_TRUE(view["messages"][1].contains("protobuf_error"));
  EXPECT_TRUE(view["messages"][2].contains("protobuf_error"));
}

TEST(GrpcTest, StatusFromTrailersOrHeaders) {
  EXPECT_EQ(GrpcStatusJson({}, {{"grpc-status", "5"}, {"grpc-message", "no%20such%20thing"}}),
            (json{{"status", 5}, {"status_name", "NOT_FOUND"}, {"message", "no such thing"}}));
  EXPECT_EQ(GrpcStatusJson({{"grpc-status", "0"}}, {}), (json{{"status", 0}, {"status_name", "OK"}}));
  EXPECT_TRUE(GrpcStatusJson({}, {}).is_null());
  EXPECT_TRUE(IsGrpcContentType("application/grpc"));
  EXPECT_TRUE(IsGrpcContentType("application/grpc+proto; charset=x"));
  EXPECT_TRUE(IsGrpcContentType("application/grpc-web"));
  EXPECT_FALSE(IsGrpcContentType("application/grpcx"));
  EXPECT_FALSE(IsGrpcContentType("text/plain"));
}

}  // namespace
}  // namespace mitmd::decode
