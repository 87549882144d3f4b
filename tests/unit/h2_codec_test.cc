// H2Codec: a client-side and a server-side codec talking to each other in memory, no sockets.

#include "http/h2_codec.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "http/translate.h"

namespace mitmd::http {
namespace {

// A connection's output, read by the other side.
class MemSink : public ByteSink {
 public:
  MemSink() : buf_(evbuffer_new()) {}
  ~MemSink() override { evbuffer_free(buf_); }
  void Write(std::string_view data) override { evbuffer_add(buf_, data.data(), data.size()); }
  size_t output_pending() const override { return evbuffer_get_length(buf_); }
  evbuffer* buf() { return buf_; }

 private:
  evbuffer* buf_;
};

struct StreamRecord {
  std::optional<Request> request;
  std::vector<Response> responses;  // interim ones first
  std::string data;
  std::optional<HeaderList> trailers;
  bool ended = false;
  std::optional<uint32_t> reset;
};

class Recorder : public CodecEvents {
 public:
  void OnHead(StreamId id, Request&& r) override { streams[id].request = std::move(r); }
  void OnHead(StreamId id, Response&& r) override { streams[id].responses.push_back(std::move(r)); }
  void OnData(StreamId id, std::string_view d) override {
    streams[id].data.append(d);
    if (auto_consume) consume_to->Consume(id, d.size());
  }
  void OnTrailers(StreamId id, const HeaderList& t) override { streams[id].trailers = t; }
  void OnEnd(StreamId id) override { streams[id].ended = true; }
  void OnStreamReset(StreamId id, uint32_t code, const std::string&) override {
    streams[id].reset = code;
  }

  std::map<StreamId, StreamRecord> streams;
  bool auto_consume = true;
  H2Codec* consume_to = nullptr;
};

class H2CodecTest : public ::testing::Test {
 protected:
  H2CodecTest() : client_(H2Codec::Side::kClient, to_server_), server_(H2Codec::Side::kServer, to_client_) {
    client_.Flush();
    server_.Flush();
    at_client_.consume_to = &client_;
    at_server_.consume_to = &server_;
  }

  // Moves bytes both ways until neither side has anything to say; |byte_by_byte| feeds the
  // server one byte at a time.
  void Pump(bool byte_by_byte = false) {
    for (int round = 0; round < 10000; ++round) {
      bool moved = false;
      if (evbuffer_get_length(to_server_.buf()) > 0) {
        moved = true;
        if (byte_by_byte) {
          evbuffer* one = evbuffer_new();
          evbuffer_remove_buffer(to_server_.buf(), one, 1);
          ASSERT_TRUE(server_.Receive(one, at_server_));
          evbuffer_free(one);
        } else {
          ASSERT_TRUE(server_.Receive(to_server_.buf(), at_server_));
        }
      }
      if (evbuffer_get_length(to_client_.buf()) > 0) {
        moved = true;
        ASSERT_TRUE(client_.Receive(to_client_.buf(), at_client_));
      }
      client_.Flush();
      server_.Flush();
      if (!moved) return;
    }
    FAIL() << "the codecs never went quiet";
  }

  static Request Get(std::string path) {
    Request r;
    r.head.method = "GET";
    r.head.target = path;
    r.head.version = "HTTP/1.1";
    r.head.headers = {{"Host", "example.test"}, {"Accept", "*/*"}, {"Connection", "keep-alive"}};
    return r;
  }
  static Response Ok() {
    Response r;
    r.head.version = "HTTP/2";
    r.head.status = 200;
    r.head.headers = {{":status", "200"}, {"content-type", "text/plain"}};
    return r;
  }

  MemSink to_server_, to_client_;
  H2Codec client_, server_;
  Recorder at_client_, at_server_;
};

TEST_F(H2CodecTest, RequestAndResponseWithTrailersBothWays) {
  Request post = Get("/upload?x=1");
  post.head.method = "POST";
  StreamId name = 41;  // the caller's name; HTTP/2 calls it 1
  ASSERT_TRUE(client_.OpenStream(name, post, /*end_stream=*/false));
  client_.SendData(name, "hello ");
  client_.SendData(name, "world");
  client_.SendTrailers(name, {{"X-Checksum", "abc"}});
  Pump(/*byte_by_byte=*/true);

  ASSERT_EQ(at_server_.streams.count(1), 1u);
  StreamId id = 1;
  StreamRecord& at_server = at_server_.streams[id];
  ASSERT_TRUE(at_server.request);
  const RequestHead& head = at_server.request->head;
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/upload?x=1");
  EXPECT_EQ(head.version, "HTTP/2");
  // Pseudo-headers first, as sent; Host became :authority; Connection was dropped.
  ASSERT_GE(head.headers.size(), 5u);
  EXPECT_EQ(head.headers[0], (std::pair<std::string, std::string>{":method", "POST"}));
  EXPECT_EQ(*PseudoHeader(head.headers, ":authority"), "example.test");
  EXPECT_EQ(*PseudoHeader(head.headers, ":scheme"), "https");
  EXPECT_EQ(FindHeader(head.headers, "connection"), nullptr);
  EXPECT_EQ(FindHeader(head.headers, "host"), nullptr);
  EXPECT_EQ(*FindHeader(head.headers, "accept"), "*/*");
  EXPECT_EQ(at_server.data, "hello world");
  ASSERT_TRUE(at_server.trailers);
  EXPECT_EQ(*at_server.trailers, (HeaderList{{"x-checksum", "abc"}}));
  EXPECT_TRUE(at_server.ended);

  Response interim;
  interim.head.status = 103;
  interim.head.headers = {{":status", "103"}, {"link", "</a.css>; rel=preload"}};
  server_.SendResponse(id, interim, false);
  server_.SendResponse(id, Ok(), false);
  server_.SendData(id, "body");
  server_.SendTrailers(id, {{"grpc-status", "0"}});
  Pump();
  StreamRecord& at_client = at_client_.streams[name];
  ASSERT_EQ(at_client.responses.size(), 2u);
  EXPECT_EQ(at_client.responses[0].head.status, 103);
  EXPECT_EQ(at_client.responses[1].head.status, 200);
  EXPECT_EQ(at_client.responses[1].head.version, "HTTP/2");
  EXPECT_EQ(at_client.data, "body");
  EXPECT_EQ(*at_client.trailers, (HeaderList{{"grpc-status", "0"}}));
  EXPECT_TRUE(at_client.ended);
  EXPECT_FALSE(at_client.reset);
  EXPECT_TRUE(client_.idle());
  EXPECT_TRUE(server_.idle());
}

TEST_F(H2CodecTest, HundredConcurrentStreamsKeepTheirBodies) {
  std::map<StreamId, std::string> sent;
  for (StreamId i = 0; i < 100; ++i) {
    // Names as HTTP/2 would number them, so both sides' records line up.
    auto st = client_.OpenStream(2 * i + 1, Get("/" + std::to_string(i)), /*end_stream=*/true);
    ASSERT_TRUE(st) << st.error().message;
  }
  Pump();
  ASSERT_EQ(at_server_.streams.size(), 100u);
  for (auto& [id, rec] : at_server_.streams) {
    EXPECT_TRUE(rec.ended);
    EXPECT_TRUE(server_.RemoteEnded(id));
    std::string body(1000 + id * 37, static_cast<char>('a' + id % 26));
    body += rec.request->head.target;
    sent[id] = body;
    server_.SendResponse(id, Ok(), false);
    server_.SendData(id, body);
    server_.SendEnd(id);
  }
  Pump();
  for (auto& [id, body] : sent) {
    EXPECT_EQ(at_client_.streams[id].data, body) << "stream " << id;
    EXPECT_TRUE(at_client_.streams[id].ended);
  }
}

TEST_F(H2CodecTest, ResetFailsOneStreamWhileOthersContinue) {
  StreamId ids[3] = {1, 3, 5};
  for (StreamId id : ids) ASSERT_TRUE(client_.OpenStream(id, Get("/"), true));
  Pump();
  for (StreamId id : ids) server_.SendResponse(id, Ok(), false);
  server_.SendData(ids[0], "one");
  Pump();
  EXPECT_TRUE(client_.Reset(ids[1], kResetCancel));
  Pump();
  ASSERT_TRUE(at_server_.streams[ids[1]].reset);
  EXPECT_EQ(*at_server_.streams[ids[1]].reset, static_cast<uint32_t>(NGHTTP2_CANCEL));
  server_.SendData(ids[1], "ignored");  // a reset stream takes nothing more
  for (StreamId id : {ids[0], ids[2]}) {
    server_.SendData(id, "more");
    server_.SendEnd(id);
  }
  Pump();
  EXPECT_EQ(at_client_.streams[ids[0]].data, "onemore");
  EXPECT_TRUE(at_client_.streams[ids[0]].ended);
  EXPECT_TRUE(at_client_.streams[ids[2]].ended);
  EXPECT_FALSE(at_client_.streams[ids[0]].reset);
  EXPECT_EQ(at_client_.streams[ids[1]].data, "");
}

TEST_F(H2CodecTest, SlowStreamIsBoundedByItsWindowAndDoesNotStallOthers) {
  at_server_.auto_consume = false;  // the server side's reader of every stream is stalled...
  Request post = Get("/slow");
  post.head.method = "POST";
  StreamId slow = 1, fast = 3;
  ASSERT_TRUE(client_.OpenStream(slow, post, false));
  ASSERT_TRUE(client_.OpenStream(fast, post, false));
  const std::string big(4 * 1024 * 1024, 'x');
  client_.SendData(slow, big);
  client_.SendEnd(slow);
  Pump();
  // Only the advertised stream window crossed; the rest waits at the sender.
  EXPECT_EQ(at_server_.streams[slow].data.size(), H2Codec::kStreamWindow);
  EXPECT_EQ(server_.unconsumed(slow), H2Codec::kStreamWindow);
  EXPECT_EQ(client_.queued(slow), big.size() - H2Codec::kStreamWindow);
  EXPECT_FALSE(client_.Writable(slow));

  // ... yet another stream gets through: the connection window was given back.
  client_.SendData(fast, std::string(100000, 'f'));
  client_.SendEnd(fast);
  Pump();
  EXPECT_EQ(at_server_.streams[fast].data.size(), 100000u);
  EXPECT_TRUE(at_server_.streams[fast].ended);

  // The slow reader catches up: the rest arrives, in order.
  while (!at_server_.streams[slow].ended) {
    size_t pending = server_.unconsumed(slow);
    ASSERT_GT(pending, 0u) << "no progress";
    server_.Consume(slow, pending);
    Pump();
  }
  EXPECT_EQ(at_server_.streams[slow].data, big);
}

TEST_F(H2CodecTest, ClientSideStreamIsBoundedByItsWindowUntilConsumed) {
  // A shared upstream connection: the exchange that reads a stream gives its window back.
  at_client_.auto_consume = false;
  StreamId id = 1;
  ASSERT_TRUE(client_.OpenStream(id, Get("/big"), true));
  Pump();
  const std::string big(3 * H2Codec::kStreamWindow, 'y');
  server_.SendResponse(id, Ok(), false);
  server_.SendData(id, big);
  server_.SendEnd(id);
  Pump();
  EXPECT_EQ(at_client_.streams[id].data.size(), H2Codec::kStreamWindow);
  EXPECT_EQ(client_.unconsumed(id), H2Codec::kStreamWindow);
  for (int round = 0; round < 100 && !at_client_.streams[id].ended; ++round) {
    client_.Consume(id, client_.unconsumed(id));
    Pump();
  }
  EXPECT_EQ(at_client_.streams[id].data, big);
  EXPECT_TRUE(at_client_.streams[id].ended);
}

TEST_F(H2CodecTest, HeldHeadEndsTheStreamInOneFrameOrGoesAtTheNextFlush) {
  int deferred = 0;
  server_.set_on_deferred([&] { ++deferred; });
  ASSERT_TRUE(client_.OpenStream(1, Get("/a"), true));
  ASSERT_TRUE(client_.OpenStream(3, Get("/b"), true));
  Pump();
  // Trailers-only (gRPC errors): head, then the end at once.
  Response status = Ok();
  status.head.headers.emplace_back("grpc-status", "5");
  server_.SendResponse(1, status, false);
  server_.SendEnd(1);
  // A head whose body comes later: held until the owner flushes.
  server_.SendResponse(3, Ok(), false);
  EXPECT_EQ(deferred, 2);
  Pump();
  EXPECT_TRUE(at_client_.streams[1].ended);
  ASSERT_EQ(at_client_.streams[1].responses.size(), 1u);
  EXPECT_EQ(*FindHeader(at_client_.streams[1].responses[0].head.headers, "grpc-status"), "5");
  server_.Flush();
  Pump();
  ASSERT_EQ(at_client_.streams[3].responses.size(), 1u);
  EXPECT_FALSE(at_client_.streams[3].ended);
  server_.SendData(3, "later");
  server_.SendEnd(3);
  Pump();
  EXPECT_EQ(at_client_.streams[3].data, "later");
  EXPECT_TRUE(at_client_.streams[3].ended);
}

TEST_F(H2CodecTest, GoawayRefusesNewStreams) {
  StreamId first = 1;
  ASSERT_TRUE(client_.OpenStream(first, Get("/"), true));
  Pump();
  EXPECT_TRUE(client_.keep_alive());
  server_.Shutdown();
  Pump();
  EXPECT_TRUE(client_.goaway_received());
  EXPECT_FALSE(client_.keep_alive());
  EXPECT_FALSE(client_.CanOpenStream());
  auto refused = client_.OpenStream(3, Get("/"), true);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("GOAWAY"), std::string::npos);
  // Through the Codec interface the refusal arrives as a stream error.
  client_.SendHead(5, Get("/"));
  evbuffer* nothing = evbuffer_new();
  ASSERT_TRUE(client_.Receive(nothing, at_client_));
  evbuffer_free(nothing);
  ASSERT_TRUE(at_client_.streams[5].reset);
  EXPECT_EQ(*at_client_.streams[5].reset, static_cast<uint32_t>(kResetRefusedStream));
  // The stream opened before still completes.
  server_.SendResponse(first, Ok(), true);
  Pump();
  EXPECT_TRUE(at_client_.streams[first].ended);
}

TEST_F(H2CodecTest, GarbageIsAnErrorAndTheCodecStaysFailed) {
  evbuffer* in = evbuffer_new();
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  evbuffer_add(in, junk.data(), junk.size());
  Recorder events;
  auto st = server_.Receive(in, events);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("HTTP/2"), std::string::npos);
  EXPECT_FALSE(server_.Receive(in, events));
  EXPECT_TRUE(server_.done());
  evbuffer_free(in);
}

TEST_F(H2CodecTest, EofWithOpenStreamsResetsThem) {
  StreamId id = 1;
  ASSERT_TRUE(client_.OpenStream(id, Get("/"), true));
  Pump();
  server_.SendResponse(id, Ok(), false);
  server_.SendData(id, "partial");
  Pump();
  Recorder events;
  EXPECT_FALSE(client_.ReceiveEof(at_client_));
  EXPECT_TRUE(at_client_.streams[id].reset);
}

TEST_F(H2CodecTest, H1ResponseHeadIsTranslatedOnTheWayOut) {
  StreamId id = 1;
  ASSERT_TRUE(client_.OpenStream(id, Get("/"), true));
  Pump();
  Response h1;
  h1.head.version = "HTTP/1.1";
  h1.head.status = 404;
  h1.head.reason = "Not Found";
  h1.head.headers = {{"Content-Type", "text/html"}, {"Transfer-Encoding", "chunked"},
                     {"Connection", "close, X-Hop"}, {"X-Hop", "1"}, {"Keep-Alive", "5"}};
  server_.SendResponse(id, h1, false);
  server_.SendData(id, "gone");
  server_.SendEnd(id);
  Pump();
  const Response& got = at_client_.streams[id].responses.at(0);
  EXPECT_EQ(got.head.status, 404);
  EXPECT_EQ(got.head.reason, "Not Found");
  EXPECT_EQ(got.head.headers, (HeaderList{{":status", "404"}, {"content-type", "text/html"}}));
  EXPECT_EQ(at_client_.streams[id].data, "gone");
}

// RFC 8441: the server side announces SETTINGS_ENABLE_CONNECT_PROTOCOL, accepts an extended
// CONNECT, answers an HTTP/1.1 101 for it with 200, and the stream then carries bytes both ways.
TEST_F(H2CodecTest, ExtendedConnectIsAcceptedAndA101BecomesA200) {
  Pump();  // SETTINGS both ways
  EXPECT_TRUE(client_.peer_allows_extended_connect());
  EXPECT_FALSE(server_.peer_allows_extended_connect()) << "a client announces no such thing";
  Request connect;
  connect.head.method = "CONNECT";
  connect.head.version = "HTTP/2";
  connect.head.headers = {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                          {":path", "/chat"}, {":authority", "example.test"},
                          {"sec-websocket-version", "13"}};
  StreamId id = 1;
  ASSERT_TRUE(client_.OpenStream(id, connect, false));
  Pump();
  ASSERT_TRUE(at_server_.streams[id].request) << "the server refused the extended CONNECT";
  EXPECT_EQ(*PseudoHeader(at_server_.streams[id].request->head.headers, ":protocol"), "websocket");
  Response switching;
  switching.head.version = "HTTP/1.1";
  switching.head.status = 101;
  switching.head.reason = "Switching Protocols";
  switching.head.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"},
                            {"Sec-WebSocket-Accept", "x"}, {"Sec-WebSocket-Protocol", "chat"}};
  server_.SendResponse(id, switching, false);
  server_.SendData(id, "from server");
  client_.SendData(id, "from client");
  Pump();
  ASSERT_EQ(at_client_.streams[id].responses.size(), 1u);
  EXPECT_EQ(at_client_.streams[id].responses[0].head.headers,
            (HeaderList{{":status", "200"}, {"sec-websocket-protocol", "chat"}}));
  EXPECT_EQ(at_client_.streams[id].data, "from server");
  EXPECT_EQ(at_server_.streams[id].data, "from client");
  EXPECT_FALSE(at_client_.streams[id].ended);
  EXPECT_FALSE(at_client_.streams[id].reset);
}

// A client-side codec tells whether the server allows extended CONNECT (RFC 8441) from the
// server's SETTINGS alone: not before they arrive, not when they lack the setting or say 0.
TEST(H2CodecSettingsTest, PeerAllowsExtendedConnectOnlyWhenItsSettingsSaySo) {
  // A SETTINGS frame (type 4, stream 0) holding |payload| (6 bytes per setting).
  auto settings = [](std::string payload) {
    std::string frame = {0, 0, static_cast<char>(payload.size()), 4, 0, 0, 0, 0, 0};
    return frame + payload;
  };
  const std::string kEnable(std::string_view("\x00\x08\x00\x00\x00\x01", 6));
  const std::string kDisable(std::string_view("\x00\x08\x00\x00\x00\x00", 6));
  const std::string kMaxStreams(std::string_view("\x00\x03\x00\x00\x00\x0a", 6));
  struct Case {
    std::string frames;
    bool allows;
  } cases[] = {{"", false},
               {settings(""), false},
               {settings(kMaxStreams), false},
               {settings(kDisable), false},
               {settings(kMaxStreams + kEnable), true}};
  Request connect;
  connect.head.method = "CONNECT";
  connect.head.version = "HTTP/2";
  connect.head.headers = {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                          {":path", "/chat"}, {":authority", "example.test"}};
  Request get;
  get.head.method = "GET";
  get.head.version = "HTTP/2";
  get.head.headers = {{":method", "GET"}, {":scheme", "https"}, {":path", "/"},
                      {":authority", "example.test"}};
  for (const Case& c : cases) {
    MemSink out;
    H2Codec client(H2Codec::Side::kClient, out);
    client.Flush();
    Recorder events;
    evbuffer* in = evbuffer_new();
    evbuffer_add(in, c.frames.data(), c.frames.size());
    EXPECT_TRUE(client.Receive(in, events));
    evbuffer_free(in);
    EXPECT_EQ(client.peer_settings_received(), !c.frames.empty()) << c.frames.size() << " bytes";
    EXPECT_EQ(client.peer_allows_extended_connect(), c.allows) << c.frames.size() << " bytes";
    // nghttp2 would send :protocol to any server: the codec refuses it until allowed.
    size_t before = out.output_pending();
    Status opened = client.OpenStream(1, connect, false);
    EXPECT_EQ(static_cast<bool>(opened), c.allows) << c.frames.size() << " bytes";
    EXPECT_EQ(out.output_pending() > before, c.allows) << "a refused stream sends no HEADERS";
    if (!c.allows) {
      EXPECT_NE(opened.error().message.find("extended CONNECT"), std::string::npos);
    }
    EXPECT_TRUE(client.OpenStream(2, get, true)) << "other requests go on";
  }
}

}  // namespace
}  // namespace mitmd::http
