// H1Codec's structured send path (what a codec of another protocol hands it): payload framed by
// the head it follows, trailers, ends, and what HTTP/1 cannot do (reset one stream).

#include "http/h1_codec.h"

#include <gtest/gtest.h>

namespace mitmd::http {
namespace {

class StringSink : public ByteSink {
 public:
  void Write(std::string_view data) override { out.append(data); }
  size_t output_pending() const override { return pending; }
  std::string out;
  size_t pending = 0;
};

Request Req(std::string method, HeaderList headers) {
  Request r;
  r.head.method = std::move(method);
  r.head.target = "/";
  r.head.version = "HTTP/1.1";
  r.head.headers = std::move(headers);
  return r;
}

Response Resp(int status, HeaderList headers) {
  Response r;
  r.head.status = status;
  r.head.reason = "X";
  r.head.version = "HTTP/1.1";
  r.head.headers = std::move(headers);
  return r;
}

// Feeds |bytes| to a server-side codec, so that it answers that request next.
void ReadRequest(H1Codec& codec, std::string_view bytes) {
  evbuffer* in = evbuffer_new();
  evbuffer_add(in, bytes.data(), bytes.size());
  CodecEvents ignore;
  ASSERT_TRUE(codec.Receive(in, ignore));
  evbuffer_free(in);
}

TEST(H1Codec, ChunkedRequestBodyIsFramedWithTrailers) {
  StringSink sink;
  H1Codec codec(H1Codec::Side::kClient, sink);
  codec.SendHead(1, Req("POST", {{"Host", "a"}, {"Transfer-Encoding", "chunked"}}));
  codec.SendData(1, "hello");
  codec.SendData(1, std::string(26, 'x'));
  codec.SendData(1, "");  // nothing: an empty chunk would end the body
  codec.SendTrailers(1, {{"X-Sum", "1"}});
  EXPECT_EQ(sink.out,
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n1a\r\n" + std::string(26, 'x') + "\r\n0\r\nX-Sum: 1\r\n\r\n");
  EXPECT_FALSE(codec.idle());  // its response is awaited
}

TEST(H1Codec, LengthFramedBodyGoesAsItIsAndTrailersAreDropped) {
  StringSink sink;
  H1Codec codec(H1Codec::Side::kClient, sink);
  codec.SendHead(1, Req("POST", {{"Content-Length", "5"}}));
  codec.SendData(1, "hel");
  codec.SendData(1, "lo");
  codec.SendTrailers(1, {{"X-Sum", "1"}});
  EXPECT_EQ(sink.out, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
}

TEST(H1Codec, ChunkedResponseEndsWithTheLastChunk) {
  StringSink sink;
  H1Codec codec(H1Codec::Side::kServer, sink);
  ReadRequest(codec, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  codec.SendHead(1, Resp(100, {}));  // interim: the final head decides the framing
  codec.SendHead(1, Resp(200, {{"Transfer-Encoding", "gzip, chunked"}}));
  codec.SendData(1, "abc");
  codec.SendEnd(1);
  EXPECT_EQ(sink.out,
            "HTTP/1.1 100 X\r\n\r\nHTTP/1.1 200 X\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n");
}

TEST(H1Codec, ResponsesWithoutABodyGetNoBodyBytes) {
  StringSink sink;
  H1Codec codec(H1Codec::Side::kServer, sink);
  ReadRequest(codec, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
  codec.SendHead(1, Resp(200, {{"Transfer-Encoding", "chunked"}}));
  codec.SendData(1, "abc");
  codec.SendEnd(1);
  EXPECT_EQ(sink.out, "HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n");

  sink.out.clear();
  codec.Resume();
  ReadRequest(codec, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  codec.SendHead(2, Resp(304, {{"Transfer-Encoding", "chunked"}}));
  codec.SendEnd(2);
  EXPECT_EQ(sink.out, "HTTP/1.1 304 X\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(H1Codec, OneStreamCannotBeResetAlone) {
  StringSink sink;
  H1Codec codec(H1Codec::Side::kClient, sink);
  codec.SendHead(1, Req("GET", {}));
  EXPECT_FALSE(codec.Reset(1, kResetCancel));
  EXPECT_EQ(codec.protocol(), Protocol::kHttp1);
  EXPECT_EQ(ToString(codec.protocol()), "http/1.1");
}

TEST(H1Codec, WritableFollowsTheOutputBackPressure) {
  StringSink sink;
  H1Codec codec(H1Codec::Side::kClient, sink);
  EXPECT_TRUE(codec.Writable(1));
  sink.pending = H1Codec::kHighWater + 1;
  EXPECT_FALSE(codec.Writable(1));
}

}  // namespace
}  // namespace mitmd::http
