#include "http/body_decoder.h"

#include <brotli/encode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <string>

namespace mitmd {
namespace {

// window_bits: 16+15 gzip, 15 zlib, -15 raw deflate.
std::string Deflate(const std::string& in, int window_bits) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Gzip(const std::string& in) { return Deflate(in, 16 + 15); }

std::string Brotli(const std::string& in) {
  size_t size = BrotliEncoderMaxCompressedSize(in.size());
  std::string out(size, '\0');
  EXPECT_TRUE(BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, in.size(),
                                    reinterpret_cast<const uint8_t*>(in.data()), &size,
                                    reinterpret_cast<uint8_t*>(out.data())));
  out.resize(size);
  return out;
}

std::string Zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string Sample() {
  std::string s;
  for (int i = 0; i < 5000; ++i) s += "{\"item\":" + std::to_string(i) + ",\"name\":\"value\"}\n";
  return s;
}

TEST(BodyDecoderTest, ParsesContentEncodingInAppliedOrder) {
  EXPECT_EQ(ParseContentEncoding("gzip"), std::vector<std::string>{"gzip"});
  EXPECT_EQ(ParseContentEncoding(" GZip ,  br"), (std::vector<std::string>{"gzip", "br"}));
  EXPECT_EQ(ParseContentEncoding("identity"), std::vector<std::string>{});
  EXPECT_EQ(ParseContentEncoding(",,zstd,"), std::vector<std::string>{"zstd"});
  EXPECT_TRUE(IsSupportedCoding("x-gzip"));
  EXPECT_FALSE(IsSupportedCoding("compress"));
}

TEST(BodyDecoderTest, DecodesEachCoding) {
  const std::string plain = Sample();
  struct Case {
    const char* coding;
    std::string encoded;
  } cases[] = {{"gzip", Gzip(plain)},
               {"x-gzip", Gzip(plain)},
               {"deflate", Deflate(plain, 15)},
               {"br", Brotli(plain)},
               {"zstd", Zstd(plain)}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.coding);
    ASSERT_LT(c.encoded.size(), plain.size() / 4);
    auto out = DecodeBody(c.encoded, {c.coding}, 1 << 20);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->data, plain);
    EXPECT_FALSE(out->partial);
  }
}

TEST(BodyDecoderTest, DeflateAcceptsRawStreamsToo) {
  const std::string plain = Sample();
  auto out = DecodeBody(Deflate(plain, -15), {"deflate"}, 1 << 20);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->data, plain);
}

TEST(BodyDecoderTest, UndoesStackedCodingsLastFirst) {
  const std::string plain = "hello stacked world";
  auto out = DecodeBody(Brotli(Gzip(plain)), {"gzip", "br"}, 1 << 20);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->data, plain);
}

TEST(BodyDecoderTest, ConcatenatedGzipMembersDecodeWhole) {
  auto out = DecodeBody(Gzip("first ") + Gzip("second"), {"gzip"}, 1 << 20);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->data, "first second");
}

TEST(BodyDecoderTest, TruncatedInputDecodesAsFarAsItGoes) {
  const std::string plain = Sample();
  for (const char* coding : {"gzip", "br", "zstd"}) {
    SCOPED_TRACE(coding);
    std::string enc = std::string(coding) == "gzip" ? Gzip(plain)
                      : std::string(coding) == "br" ? Brotli(plain)
                                                    : Zstd(plain);
    auto out = DecodeBody(enc.substr(0, enc.size() / 2), {coding}, 1 << 20);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_TRUE(out->partial);
    EXPECT_LT(out->data.size(), plain.size());
    EXPECT_EQ(out->data, plain.substr(0, out->data.size()));
  }
}

TEST(BodyDecoderTest, OutputCapStopsDecompressionBombs) {
  std::string zeros(8 << 20, '\0');
  for (const char* coding : {"gzip", "br", "zstd"}) {
    SCOPED_TRACE(coding);
    std::string enc = std::string(coding) == "gzip" ? Gzip(zeros)
                      : std::string(coding) == "br" ? Brotli(zeros)
                                                    : Zstd(zeros);
    auto out = DecodeBody(enc, {coding}, 100000);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_TRUE(out->partial);
    EXPECT_EQ(out->data.size(), 100000u);
  }
}

TEST(BodyDecoderTest, CorruptInputIsAnErrorNamingTheCoding) {
  for (const char* coding : {"gzip", "br", "zstd"}) {
    auto out = DecodeBody("this is definitely not compressed data at all", {coding}, 1 << 20);
    ASSERT_FALSE(out) << coding;
    EXPECT_NE(out.error().message.find(coding), std::string::npos) << out.error().message;
  }
}

TEST(BodyDecoderTest, UnknownCodingIsAnError) {
  auto out = DecodeBody("abc", {"compress"}, 100);
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().message.find("compress"), std::string::npos);
}

TEST(BodyDecoderTest, EmptyBodyWithDeclaredCodingIsEmpty) {
  auto out = DecodeBody("", {"zstd"}, 100);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->data, "");
  EXPECT_FALSE(out->partial);
}

TEST(BodyDecoderTest, UsesTheContentEncodingHeader) {
  HeaderList headers = {{"Content-Type", "application/json"}, {"content-ENCODING", "gzip"}};
  auto out = DecodeBodyForHeaders(Gzip("{\"a\":1}"), headers, 1000);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->data, "{\"a\":1}");

  auto plain = DecodeBodyForHeaders("as is", {{"Content-Type", "text/plain"}}, 1000);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->data, "as is");
}

}  // namespace
}  // namespace mitmd
