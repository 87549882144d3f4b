#include "http/translate.h"

#include <gtest/gtest.h>

namespace mitmd::http {
namespace {

TEST(TranslateTest, H1RequestToH2) {
  RequestHead h1{"GET", "/a?b=1", "HTTP/1.1",
                 {{"Host", "example.test:8443"}, {"User-Agent", "curl"},
                  {"Connection", "keep-alive, X-Private"}, {"X-Private", "hop"},
                  {"Proxy-Connection", "keep-alive"}, {"TE", "trailers"}, {"Upgrade", "h2c"},
                  {"Cookie", "a=1"}}};
  HeaderList h2 = ToH2Request(h1, "https");
  EXPECT_EQ(h2, (HeaderList{{":method", "GET"}, {":scheme", "https"},
                            {":authority", "example.test:8443"}, {":path", "/a?b=1"},
                            {"user-agent", "curl"}, {"te", "trailers"}, {"cookie", "a=1"}}));
}

TEST(TranslateTest, AbsoluteFormAndConnect) {
  RequestHead abs{"GET", "http://h.test:81/x", "HTTP/1.1", {{"TE", "gzip"}}};
  EXPECT_EQ(ToH2Request(abs, "http"),
            (HeaderList{{":method", "GET"}, {":scheme", "http"}, {":authority", "h.test:81"},
                        {":path", "/x"}}));
  RequestHead connect{"CONNECT", "h.test:443", "HTTP/1.1", {{"Host", "h.test:443"}}};
  EXPECT_EQ(ToH2Request(connect, "https"),
            (HeaderList{{":method", "CONNECT"}, {":authority", "h.test:443"}}));
}

TEST(TranslateTest, H2RequestToH1JoinsCookiesAndChunksUnknownLengths) {
  RequestHead h2{"POST", "/p", "HTTP/2",
                 {{":method", "POST"}, {":scheme", "https"}, {":authority", "h.test"},
                  {":path", "/p"}, {"cookie", "a=1"}, {"accept", "*/*"}, {"cookie", "b=2"}}};
  auto h1 = ToH1Request(h2, /*has_body=*/true);
  ASSERT_TRUE(h1);
  EXPECT_EQ(h1->request.head.method, "POST");
  EXPECT_EQ(h1->request.head.target, "/p");
  EXPECT_EQ(h1->request.head.version, "HTTP/1.1");
  EXPECT_EQ(h1->request.head.headers,
            (HeaderList{{"host", "h.test"}, {"cookie", "a=1; b=2"}, {"accept", "*/*"},
                        {"transfer-encoding", "chunked"}}));
  EXPECT_EQ(h1->framing, H1Framing::kChunked);

  h2.headers.emplace_back("content-length", "3");
  auto sized = ToH1Request(h2, true);
  EXPECT_EQ(sized->framing, H1Framing::kContentLength);
  EXPECT_EQ(FindHeader(sized->request.head.headers, "transfer-encoding"), nullptr);
  EXPECT_EQ(ToH1Request(h2, false)->framing, H1Framing::kNone);

  RequestHead broken{"GET", "/", "HTTP/2", {{":method", "GET"}}};
  EXPECT_FALSE(ToH1Request(broken, false));
  // Present but empty is as broken as absent (translate_fuzz found an empty :method).
  RequestHead empty_method{"", "/", "HTTP/2", {{":method", ""}, {":path", "/"}}};
  EXPECT_FALSE(ToH1Request(empty_method, false));
  RequestHead empty_path{"GET", "", "HTTP/2", {{":method", "GET"}, {":path", ""}}};
  EXPECT_FALSE(ToH1Request(empty_path, false));
  RequestHead empty_authority{"CONNECT", "", "HTTP/2", {{":method", "CONNECT"}, {":authority", ""}}};
  EXPECT_FALSE(ToH1Request(empty_authority, false));
}

TEST(TranslateTest, H2ResponseToH1) {
  ResponseHead h2{"HTTP/2", 0, "", {{":status", "204"}, {"server", "x"}}};
  auto h1 = ToH1Response(h2, true);
  ASSERT_TRUE(h1);
  EXPECT_EQ(h1->response.head.status, 204);
  EXPECT_EQ(h1->response.head.reason, "No Content");
  EXPECT_EQ(h1->framing, H1Framing::kNone);
  EXPECT_EQ(h1->response.head.headers, (HeaderList{{"server", "x"}}));
  ResponseHead ok{"HTTP/2", 0, "", {{":status", "200"}}};
  EXPECT_EQ(ToH1Response(ok, true)->framing, H1Framing::kChunked);
  EXPECT_EQ(ToH1Response(ok, true, /*head_request=*/true)->framing, H1Framing::kNone);
  ResponseHead bad{"HTTP/2", 0, "", {{":status", "2x0"}}};
  EXPECT_FALSE(ToH1Response(bad, true));
}

TEST(TranslateTest, H1ResponseToH2) {
  ResponseHead h1{"HTTP/1.1", 200, "OK",
                  {{"Content-Length", "5"}, {"Connection", "close"}, {"Set-Cookie", "a=1"}}};
  EXPECT_EQ(ToH2Response(h1),
            (HeaderList{{":status", "200"}, {"content-length", "5"}, {"set-cookie", "a=1"}}));
}

TEST(TranslateTest, Chunks) {
  EXPECT_EQ(ChunkOf("hello"), "5\r\nhello\r\n");
  EXPECT_EQ(ChunkOf(""), "");
  EXPECT_EQ(LastChunk(), "0\r\n\r\n");
  EXPECT_EQ(LastChunk({{"grpc-status", "0"}}), "0\r\ngrpc-status: 0\r\n\r\n");
}

TEST(TranslateTest, ExtendedConnectBecomesAnHttp1Upgrade) {
  RequestHead h2{"CONNECT", "/chat?x=1", "HTTP/2",
                 {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                  {":path", "/chat?x=1"}, {":authority", "ws.test:8443"},
                  {"sec-websocket-version", "13"}, {"sec-websocket-protocol", "chat"},
                  {"sec-websocket-key", "from-the-client"}, {"cookie", "a=1"}, {"cookie", "b=2"}}};
  ASSERT_NE(ExtendedConnectProtocol(h2.headers), nullptr);
  EXPECT_EQ(*ExtendedConnectProtocol(h2.headers), "websocket");
  auto up = UpgradeForExtendedConnect(h2, "dGhlIHNhbXBsZSBub25jZQ==");
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->head.method, "GET");
  EXPECT_EQ(up->head.target, "/chat?x=1");
  EXPECT_EQ(up->head.version, "HTTP/1.1");
  EXPECT_EQ(up->head.headers,
            (HeaderList{{"Host", "ws.test:8443"}, {"Connection", "Upgrade"},
                        {"Upgrade", "websocket"}, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                        {"sec-websocket-version", "13"}, {"sec-websocket-protocol", "chat"},
                        {"cookie", "a=1; b=2"}}));
  // A plain CONNECT, or any other request, is no extended CONNECT.
  RequestHead plain{"CONNECT", "h.test:443", "HTTP/2",
                    {{":method", "CONNECT"}, {":authority", "h.test:443"}}};
  EXPECT_EQ(ExtendedConnectProtocol(plain.headers), nullptr);
  EXPECT_FALSE(UpgradeForExtendedConnect(plain, "k"));
  RequestHead no_path{"CONNECT", "", "HTTP/2",
                      {{":method", "CONNECT"}, {":protocol", "websocket"},
                       {":authority", "h.test"}}};
  EXPECT_FALSE(UpgradeForExtendedConnect(no_path, "k"));
}

TEST(TranslateTest, A101AnswersAnExtendedConnectWith200) {
  ResponseHead h1{"HTTP/1.1", 101, "Switching Protocols",
                  {{"Upgrade", "websocket"}, {"Connection", "Upgrade"},
                   {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
                   {"Sec-WebSocket-Protocol", "chat"}}};
  EXPECT_EQ(ExtendedConnectResponse(h1),
            (HeaderList{{":status", "200"}, {"sec-websocket-protocol", "chat"}}));
  // RFC 6455's own example.
  EXPECT_EQ(WebSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
}  // namespace mitmd::http
