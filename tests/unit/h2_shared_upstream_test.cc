// Shared upstream HTTP/2 connections (proxy/upstream/shared_h2.h) through the pool, without
// sockets: a fake dialer, a FakeWire, and a server-side H2Codec as the server. Concurrent
// Connects wait for one dial and share its connection; each lease carries its own stream; a slow
// stream holds back only itself; after GOAWAY the streams in flight finish, new ones go to a
// fresh connection, and the old one closes once its last stream ended.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "http/h2_codec.h"
#include "http/translate.h"
#include "proxy/upstream/pool.h"
#include "proxy/upstream/shared_h2.h"
#include "support/playbook.h"

namespace mitmd::testing {
namespace {

using http::H2Codec;

class MemSink : public http::ByteSink {
 public:
  void Write(std::string_view data) override { bytes.append(data); }
  size_t output_pending() const override { return 0; }
  std::string bytes;
};

// The origin server: a server-side codec that records what each stream asked.
class Server : public http::CodecEvents {
 public:
  Server() : codec(H2Codec::Side::kServer, out) { codec.Flush(); }
  void OnHead(http::StreamId id, http::Request&& r) override {
    paths[id] = r.head.target;
    if (const std::string* p = http::ExtendedConnectProtocol(r.head.headers)) protocols[id] = *p;
  }
  void OnData(http::StreamId id, std::string_view d) override { codec.Consume(id, d.size()); }

  MemSink out;
  H2Codec codec;
  std::map<http::StreamId, std::string> paths;  // by the stream id on the wire
  std::map<http::StreamId, std::string> protocols;  // RFC 8441's :protocol, when sent
};

// An exchange's view of a lease: it reads its stream's events when the lease says so.
class Client : public http::CodecEvents, public proxy::WireObserver {
 public:
  explicit Client(std::unique_ptr<proxy::UpstreamConn> c) : conn(std::move(c)) {
    conn->wire->set_observer(this);
  }
  ~Client() override {
    if (conn) conn->wire->set_observer(nullptr);
  }
  void Get(const std::string& path) {
    http::Request r;
    r.head.method = "GET";
    r.head.target = path;
    r.head.version = "HTTP/1.1";
    r.head.headers = {{"Host", "a.test"}};
    conn->codec->SendHead(7, r);  // every exchange may name its stream alike
    conn->codec->SendEnd(7);
  }
  void OnWireEvent(proxy::Wire&, proxy::WireEvent event) override {
    if (event == proxy::WireEvent::kReadable) {
      ++readable;
      (void)conn->codec->Receive(conn->wire->input(), *this);
    } else if (event == proxy::WireEvent::kEof || event == proxy::WireEvent::kError) {
      (void)conn->codec->ReceiveEof(*this);
    }
  }
  void OnHead(http::StreamId id, http::Response&& r) override {
    EXPECT_EQ(id, 7u);
    status = r.head.status;
  }
  void OnData(http::StreamId, std::string_view d) override { body.append(d); }
  void OnEnd(http::StreamId) override { ended = true; }
  void OnStreamReset(http::StreamId, uint32_t, const std::string& m) override { reset = m; }

  std::unique_ptr<proxy::UpstreamConn> conn;
  int status = 0;
  std::string body;
  bool ended = false;
  std::string reset;
  int readable = 0;  // kReadable events
};

class SharedH2Test : public ::testing::Test {
 protected:
  SharedH2Test() : timers_(&clock_), dialer_(registry_), pool_(dialer_, timers_) {}

  // Connects and keeps what it gets in |clients_|.
  std::unique_ptr<proxy::Upstreams::Pending> Connect() {
    return pool_.Connect(key_, 1, [this](proxy::Upstreams::Outcome o) {
      ASSERT_TRUE(o.has_value());
      clients_.push_back(std::make_unique<Client>(std::move(*o)));
    });
  }
  // Moves bytes between mitmd's side of |wire| and |server| until neither has more to say.
  void Pump(FakeWire* wire, Server& server) {
    for (int round = 0; round < 1000; ++round) {
      timers_.RunZeroDelay();
      std::string to_server = wire->TakeWritten();
      if (!to_server.empty()) {
        evbuffer* in = evbuffer_new();
        evbuffer_add(in, to_server.data(), to_server.size());
        EXPECT_TRUE(server.codec.Receive(in, server));
        evbuffer_free(in);
      }
      server.codec.Flush();
      std::string to_client = std::exchange(server.out.bytes, {});
      if (!to_client.empty()) wire->Deliver(to_client);
      if (to_server.empty() && to_client.empty()) return;
    }
    ADD_FAILURE() << "the two sides kept talking";
  }
  void Respond(Server& server, http::StreamId id, const std::string& body) {
    http::Response r;
    r.head.status = 200;
    r.head.headers = {{":status", "200"}};
    server.codec.SendResponse(id, r, false);
    server.codec.SendData(id, body);
    server.codec.SendEnd(id);
  }

  double clock_ = 0;
  FakeTimers timers_;
  ConnectionRegistry registry_;
  FakeUpstreams dialer_;
  proxy::UpstreamPool pool_;
  proxy::UpstreamKey key_{"a.test", 443, true, "a.test", {"h2", "http/1.1"}, false};
  std::vector<std::unique_ptr<Client>> clients_;
};

TEST_F(SharedH2Test, ConcurrentConnectsShareOneDialAndOneConnection) {
  auto a = Connect(), b = Connect(), c = Connect();
  ASSERT_EQ(dialer_.TakeDials().size(), 1u) << "the later Connects wait for the first dial";
  FakeWire* wire = dialer_.CompleteNext(clock_, "h2");
  ASSERT_EQ(clients_.size(), 3u);
  for (auto& client : clients_) {
    ASSERT_NE(proxy::AsLease(*client->conn), nullptr);
    EXPECT_EQ(client->conn->id, clients_[0]->conn->id);
  }
  Server server;
  for (int i = 0; i < 3; ++i) clients_[i]->Get("/" + std::to_string(i));
  Pump(wire, server);
  ASSERT_EQ(server.paths.size(), 3u);
  for (const auto& [id, path] : server.paths) Respond(server, id, "body of " + path);
  Pump(wire, server);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(clients_[i]->status, 200);
    EXPECT_EQ(clients_[i]->body, "body of /" + std::to_string(i));
    EXPECT_TRUE(clients_[i]->ended);
    EXPECT_TRUE(clients_[i]->conn->codec->idle());
  }
  EXPECT_EQ(clients_[0]->conn->responses, 0u);  // the first stream on a fresh connection
  EXPECT_EQ(clients_[2]->conn->responses, 2u);  // later ones are reuses (retried if it fails)
  // Given back, the leases leave the connection idle and open for the next client.
  for (auto& client : clients_) pool_.Return(std::exchange(client->conn, nullptr));
  timers_.RunZeroDelay();
  EXPECT_EQ(dialer_.TakeReleases().size(), 0u);
  EXPECT_EQ(pool_.shared_count(), 1u);
  auto d = Connect();
  timers_.RunZeroDelay();
  EXPECT_EQ(dialer_.TakeDials().size(), 0u);
  ASSERT_EQ(clients_.size(), 4u);
  clients_[3]->Get("/again");
  Pump(wire, server);
  EXPECT_EQ(server.paths.size(), 4u);
}

TEST_F(SharedH2Test, AnIdleConnectionAnswersPingsAndStaysPooled) {
  auto a = Connect();
  FakeWire* wire = dialer_.CompleteNext(clock_, "h2");
  ASSERT_EQ(dialer_.TakeDials().size(), 1u);
  ASSERT_EQ(clients_.size(), 1u);
  Server server;
  clients_[0]->Get("/");
  Pump(wire, server);
  Respond(server, server.paths.begin()->first, "ok");
  Pump(wire, server);
  pool_.Return(std::exchange(clients_[0]->conn, nullptr));
  timers_.RunZeroDelay();
  // The server pings the idle connection (a keep-alive probe): answered, and the connection
  // stays, where an idle HTTP/1 connection that receives bytes is dropped.
  const std::string ping("\x00\x00\x08\x06\x00\x00\x00\x00\x00" "12345678", 17);
  wire->Deliver(ping);
  timers_.RunZeroDelay();
  const std::string ack("\x00\x00\x08\x06\x01\x00\x00\x00\x00" "12345678", 17);
  EXPECT_NE(wire->TakeWritten().find(ack), std::string::npos) << "PING ACK";
  EXPECT_EQ(pool_.shared_count(), 1u);
  EXPECT_TRUE(dialer_.TakeReleases().empty());
  auto b = Connect();
  timers_.RunZeroDelay();
  EXPECT_TRUE(dialer_.TakeDials().empty()) << "the pooled connection serves the next Connect";
  EXPECT_EQ(clients_.size(), 2u);
}

TEST_F(SharedH2Test, ASlowStreamHoldsBackOnlyItself) {
  auto a = Connect(), b = Connect();
  FakeWire* wire = dialer_.CompleteNext(clock_, "h2");
  ASSERT_EQ(clients_.size(), 2u);
  Server server;
  clients_[0]->Get("/slow");
  clients_[1]->Get("/fast");
  Pump(wire, server);
  clients_[0]->conn->wire->SetReading(false);  // its client stopped reading
  const std::string big(3 * H2Codec::kStreamWindow, 'x');
  for (const auto& [id, path] : server.paths) Respond(server, id, path == "/slow" ? big : "fast");
  Pump(wire, server);
  EXPECT_TRUE(clients_[1]->ended);
  EXPECT_EQ(clients_[1]->body, "fast");
  EXPECT_TRUE(clients_[0]->body.empty());
  clients_[0]->conn->wire->SetReading(true);
  Pump(wire, server);
  EXPECT_TRUE(clients_[0]->ended);
  EXPECT_EQ(clients_[0]->body.size(), big.size());
}

TEST_F(SharedH2Test, AfterGoawayInFlightStreamsFinishAndNewOnesGetAFreshConnection) {
  auto a = Connect();
  FakeWire* wire = dialer_.CompleteNext(clock_, "h2");
  ASSERT_EQ(dialer_.TakeDials().size(), 1u);
  ASSERT_EQ(clients_.size(), 1u);
  Server server;
  clients_[0]->Get("/in-flight");
  Pump(wire, server);
  server.codec.Shutdown();  // GOAWAY, last stream 1
  Pump(wire, server);
  auto b = Connect();
  EXPECT_EQ(dialer_.TakeDials().size(), 1u) << "no new stream on a connection after GOAWAY";
  ASSERT_EQ(server.paths.size(), 1u);
  Respond(server, server.paths.begin()->first, "still answered");
  Pump(wire, server);
  EXPECT_EQ(clients_[0]->body, "still answered");
  EXPECT_TRUE(clients_[0]->ended);
  EXPECT_TRUE(dialer_.TakeReleases().empty());
  pool_.Return(std::exchange(clients_[0]->conn, nullptr));
  timers_.RunZeroDelay();
  EXPECT_EQ(dialer_.TakeReleases().size(), 1u) << "closed once its last stream ended";
  EXPECT_TRUE(wire->closed());
}

TEST_F(SharedH2Test, ConnectionLossEndsOpenStreamsAfterWhatArrived) {
  auto a = Connect(), b = Connect();
  FakeWire* wire = dialer_.CompleteNext(clock_, "h2");
  ASSERT_EQ(clients_.size(), 2u);
  Server server;
  clients_[0]->Get("/done");
  clients_[1]->Get("/cut");
  Pump(wire, server);
  for (const auto& [id, path] : server.paths) {
    if (path == "/done") Respond(server, id, "complete");
  }
  server.codec.Flush();
  wire->Deliver(std::exchange(server.out.bytes, {}));
  wire->DeliverEof();
  EXPECT_TRUE(clients_[0]->ended);
  EXPECT_EQ(clients_[0]->body, "complete");
  EXPECT_FALSE(clients_[1]->ended);
  EXPECT_EQ(clients_[1]->reset, "the connection closed before the stream ended");
  EXPECT_FALSE(clients_[1]->conn->usable());
  for (auto& client : clients_) pool_.Release(std::exchange(client->conn, nullptr), "done");
  timers_.RunZeroDelay();
  EXPECT_EQ(dialer_.TakeReleases().size(), 1u);
  EXPECT_EQ(pool_.shared_count(), 0u);
}

// RFC 8441 upstream: a lease cannot tell whether extended CONNECT is allowed before the server's
// SETTINGS arrive (nothing may send :protocol before them); it is told (kReadable) when they
// do, and the CONNECT then reaches the server with its :protocol.
TEST_F(SharedH2Test, ALeaseLearnsFromTheServersSettingsWhetherExtendedConnectMayBeSent) {
  auto a = Connect();
  FakeWire* wire = dialer_.CompleteNext(clock_, "h2");
  ASSERT_EQ(clients_.size(), 1u);
  Client& client = *clients_[0];
  auto& lease = static_cast<proxy::LeaseCodec&>(*client.conn->codec);
  EXPECT_EQ(lease.AllowsExtendedConnect(), std::nullopt) << "nothing from the server yet";
  timers_.RunZeroDelay();
  int before = client.readable;
  Server server;  // mitmd's own server side: it announces ENABLE_CONNECT_PROTOCOL
  Pump(wire, server);
  EXPECT_GT(client.readable, before) << "the lease was told when the SETTINGS arrived";
  EXPECT_EQ(lease.AllowsExtendedConnect(), std::optional<bool>(true));
  http::Request connect;
  connect.head.method = "CONNECT";
  connect.head.version = "HTTP/2";
  connect.head.headers = {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                          {":path", "/chat"}, {":authority", "a.test"}};
  client.conn->codec->SendHead(7, connect);
  Pump(wire, server);
  ASSERT_EQ(server.protocols.size(), 1u);
  EXPECT_EQ(server.protocols.begin()->second, "websocket");
  EXPECT_EQ(client.reset, "");
}

}  // namespace
}  // namespace mitmd::testing
