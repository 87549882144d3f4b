// Conn over a socketpair on a private event loop: plaintext, the TLS pump with the paused
// ClientHello that interception depends on, back-pressure, and graceful closing. No network.

#include "net/conn.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include "ca/authority.h"
#include "config/config.h"
#include "proxy/client_hello.h"
#include "proxy/client_tls.h"
#include "proxy/upstream_tls.h"
#include "support/temp_dir.h"

namespace mitmd::net {
namespace {

// Records every event and keeps what arrived.
struct Recorder : Conn::Delegate {
  std::vector<ConnEvent> events;
  std::string received;
  bool consume = true;
  void OnConnEvent(Conn& conn, ConnEvent event) override {
    events.push_back(event);
    if (event == ConnEvent::kReadable && consume) {
      size_t n = evbuffer_get_length(conn.input());
      std::string chunk(n, '\0');
      evbuffer_remove(conn.input(), chunk.data(), n);
      received += chunk;
    }
  }
  bool Saw(ConnEvent e) const { return std::find(events.begin(), events.end(), e) != events.end(); }
};

class ConnTest : public ::testing::Test {
 protected:
  ConnTest() : base_(event_base_new()) {
    int fds[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
    a_ = std::make_unique<Conn>(base_, fds[0], &ra_);
    b_ = std::make_unique<Conn>(base_, fds[1], &rb_);
  }
  ~ConnTest() override {
    a_.reset();
    b_.reset();
    event_base_free(base_);
  }

  // Runs the loop until |done| or 5 seconds pass.
  bool RunUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      event_base_loop(base_, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    return true;
  }

  event_base* base_;
  Recorder ra_, rb_;
  std::unique_ptr<Conn> a_, b_;
};

TEST_F(ConnTest, PlainBytesAndEof) {
  a_->Write("hello ");
  a_->Write("world");
  ASSERT_TRUE(RunUntil([&] { return rb_.received == "hello world"; }));
  a_->ShutdownWrite();
  ASSERT_TRUE(RunUntil([&] { return rb_.Saw(ConnEvent::kEof); }));
  EXPECT_TRUE(b_->eof());
  EXPECT_EQ(b_->bytes_read(), 11u);
  EXPECT_EQ(a_->bytes_written(), 11u);
}

// What one loop turn writes goes to the socket once its callbacks have run, in one piece: a
// head and its body, or a handshake flight, cost one sendmsg and no write event.
TEST_F(ConnTest, WritesOfOneLoopTurnLeaveTogether) {
  a_->Write("head;");
  a_->Write("body");
  EXPECT_EQ(a_->output_pending(), 9u);
  event_base_loop(base_, EVLOOP_ONCE | EVLOOP_NONBLOCK);
  EXPECT_EQ(a_->output_pending(), 0u);
  EXPECT_EQ(a_->bytes_written(), 9u);
  char buf[16];
  EXPECT_EQ(::recv(b_->fd(), buf, sizeof(buf), MSG_DONTWAIT), 9);
  EXPECT_EQ(std::string(buf, 9), "head;body");
}

// What the kernel does not take waits in the output (the write event armed for it), goes out as
// the peer reads, and kDrained follows.
TEST_F(ConnTest, WhatTheKernelRefusesIsWrittenLaterThenDrained) {
  rb_.consume = false;
  b_->SetReading(false);
  std::string blob(4 << 20, 'y');
  a_->Write(blob);
  ASSERT_GT(a_->output_pending(), 0u);
  EXPECT_FALSE(ra_.Saw(ConnEvent::kDrained));
  rb_.consume = true;
  b_->SetReading(true);
  ASSERT_TRUE(RunUntil([&] { return rb_.received.size() == blob.size(); }));
  a_->Write("!");
  ASSERT_TRUE(RunUntil([&] {
    return ra_.Saw(ConnEvent::kDrained) && rb_.received.size() > blob.size();
  }));
  EXPECT_EQ(a_->output_pending(), 0u);
  EXPECT_EQ(rb_.received, blob + "!");
  EXPECT_EQ(a_->bytes_written(), blob.size() + 1);
  EXPECT_EQ(b_->bytes_read(), blob.size() + 1);
}

// A plain reader that stops consuming holds at most max_input; reading resumes when the owner
// drains the input outside any Conn callback.
TEST_F(ConnTest, InputIsBoundedAndResumesWhenDrained) {
  rb_.consume = false;
  std::string blob(2 << 20, 'q');
  a_->Write(blob);
  size_t held = 0;
  ASSERT_TRUE(RunUntil([&] {
    for (int i = 0; i < 50; ++i) event_base_loop(base_, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    bool settled = evbuffer_get_length(b_->input()) == held;
    held = evbuffer_get_length(b_->input());
    return settled;
  }));
  EXPECT_LE(held, ConnLimits{}.max_input);
  EXPECT_GT(a_->output_pending(), 0u);
  std::string got;
  ASSERT_TRUE(RunUntil([&] {
    size_t n = evbuffer_get_length(b_->input());
    std::string chunk(n, '\0');
    evbuffer_remove(b_->input(), chunk.data(), n);
    got += chunk;
    return got.size() == blob.size();
  }));
  EXPECT_EQ(got, blob);
}

// A write to a peer that has gone fails from the loop, not inside the owner's Write call.
TEST_F(ConnTest, WriteToAClosedPeerFailsFromTheLoop) {
  b_.reset();
  a_->Write("x");
  a_->Write(std::string(1 << 20, 'x'));
  EXPECT_FALSE(ra_.Saw(ConnEvent::kError));
  ASSERT_TRUE(RunUntil([&] { return ra_.Saw(ConnEvent::kError); }));
  EXPECT_FALSE(a_->error().empty());
}

// The server side pauses in the select-certificate callback, as a Session does while it
// connects upstream, and resumes once a leaf is set.
class PausingHooks : public proxy::ClientHandshakeHooks {
 public:
  ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) override {
    ++calls;
    if (!info) {
      info = proxy::ParseClientHello(hello);
      return ssl_select_cert_retry;
    }
    if (!leaf) return ssl_select_cert_retry;
    std::vector<CRYPTO_BUFFER*> chain;
    for (const auto& c : leaf->chain) chain.push_back(c.get());
    return SSL_set_chain_and_key(hello->ssl, chain.data(), chain.size(), leaf->key.get(), nullptr)
               ? ssl_select_cert_success
               : ssl_select_cert_error;
  }
  std::optional<std::string> ChooseAlpn(const std::vector<std::string>& offered) override {
    for (const auto& p : offered) {
      if (p == "http/1.1") return p;
    }
    return "";
  }
  int calls = 0;
  std::optional<proxy::ClientHelloInfo> info;
  std::shared_ptr<const ca::Leaf> leaf;
};

class TlsConnTest : public ConnTest {
 protected:
  void SetUp() override {
    auto authority = ca::Authority::LoadOrCreate(dir_.File("ca"));
    ASSERT_TRUE(authority) << authority.error().message;
    authority_ = std::move(*authority);
    Config config;
    config.system_ca_file = "";
    config.upstream_ca_files = {authority_->root_cert_path()};
    auto upstream = proxy::UpstreamTls::Create(config);
    ASSERT_TRUE(upstream) << upstream.error().message;
    upstream_ = std::move(*upstream);
    auto client_tls = proxy::ClientTls::Create();
    ASSERT_TRUE(client_tls);
    client_tls_ = std::move(*client_tls);
    verification_.host = "localhost";
  }

  // a_ is the TLS client (like mitmd's upstream side), b_ the server (mitmd's client side).
  void Handshake() {
    b_->StartTls(client_tls_->NewSsl(&hooks_, "localhost:443"));
    a_->StartTls(upstream_->NewSsl("localhost", {"h2", "http/1.1"}, &verification_));
    ASSERT_TRUE(RunUntil([&] { return rb_.Saw(ConnEvent::kHandshakePaused); }));
    ASSERT_TRUE(hooks_.info);
    EXPECT_EQ(hooks_.info->sni, "localhost");
    EXPECT_EQ(hooks_.info->alpn, (std::vector<std::string>{"h2", "http/1.1"}));
    EXPECT_FALSE(ra_.Saw(ConnEvent::kHandshakeDone));
    ca::LeafSpec spec;
    spec.sni = "localhost";
    spec.host = "localhost";
    auto leaf = authority_->LeafFor(spec);
    ASSERT_TRUE(leaf) << leaf.error().message;
    hooks_.leaf = *leaf;
    b_->ContinueHandshake();
    ASSERT_TRUE(RunUntil([&] {
      return ra_.Saw(ConnEvent::kHandshakeDone) && rb_.Saw(ConnEvent::kHandshakeDone);
    })) << "client: " << a_->error() << " server: " << b_->error();
  }

  testing::TempDir dir_;
  std::unique_ptr<ca::Authority> authority_;
  std::unique_ptr<proxy::UpstreamTls> upstream_;
  std::unique_ptr<proxy::ClientTls> client_tls_;
  proxy::UpstreamVerification verification_;
  PausingHooks hooks_;
};

TEST_F(TlsConnTest, PausedHandshakeResumesWithMintedLeaf) {
  Handshake();
  EXPECT_TRUE(verification_.ok) << verification_.message;
  const uint8_t* alpn;
  unsigned len;
  SSL_get0_alpn_selected(a_->ssl(), &alpn, &len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), len), "http/1.1");
}

TEST_F(TlsConnTest, CarriesLargePayloadsBothWays) {
  Handshake();
  std::string up(3 << 20, '\0'), down(1 << 20, '\0');
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<char>(i * 7);
  for (size_t i = 0; i < down.size(); ++i) down[i] = static_cast<char>(i * 13);
  a_->Write(up);
  b_->Write(down);
  ASSERT_TRUE(RunUntil([&] { return rb_.received.size() == up.size() && ra_.received.size() == down.size(); }));
  EXPECT_EQ(rb_.received, up);
  EXPECT_EQ(ra_.received, down);
  a_->ShutdownWrite();  // close_notify
  ASSERT_TRUE(RunUntil([&] { return rb_.Saw(ConnEvent::kEof); }));
}

TEST_F(TlsConnTest, BackPressureBoundsWhatIsBuffered) {
  Handshake();
  rb_.consume = false;
  b_->SetReading(false);
  std::string blob(8 << 20, 'x');
  a_->Write(blob);
  // Let the loop move whatever it can until nothing moves any more.
  size_t pending = 0;
  ASSERT_TRUE(RunUntil([&] {
    for (int i = 0; i < 50; ++i) event_base_loop(base_, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    bool settled = a_->output_pending() == pending;
    pending = a_->output_pending();
    return settled;
  }));
  ConnLimits limits;
  // The reader holds at most its plaintext limit plus one TLS record; the rest waits in the
  // writer's output buffer (and the kernel's socket buffers).
  EXPECT_LE(evbuffer_get_length(b_->input()), limits.max_input + 16 * 1024);
  EXPECT_GT(a_->output_pending(), 4u << 20);
  rb_.consume = true;
  b_->SetReading(true);
  ASSERT_TRUE(RunUntil([&] { return rb_.received.size() == blob.size(); }));
  EXPECT_EQ(rb_.received, blob);
}

TEST_F(TlsConnTest, ClientRejectingTheCertificateIsAnError) {
  verification_.host = "not-this-name.test";
  b_->StartTls(client_tls_->NewSsl(&hooks_, "localhost:443"));
  a_->StartTls(upstream_->NewSsl("localhost", {}, &verification_));
  ASSERT_TRUE(RunUntil([&] { return rb_.Saw(ConnEvent::kHandshakePaused); }));
  ca::LeafSpec spec;
  spec.host = "localhost";
  hooks_.leaf = *authority_->LeafFor(spec);
  b_->ContinueHandshake();
  ASSERT_TRUE(RunUntil([&] { return ra_.Saw(ConnEvent::kError) && rb_.Saw(ConnEvent::kError); }));
  EXPECT_FALSE(verification_.ok);
  EXPECT_NE(verification_.message.find("does not match host 'not-this-name.test'"), std::string::npos);
  EXPECT_NE(b_->error().find("alert 'bad certificate'"), std::string::npos) << b_->error();
}

// Post-quantum key shares make real ClientHellos larger than one packet; here a hello of several
// KiB arrives in 200-byte pieces and must still be inspected whole.
TEST_F(TlsConnTest, ClientHelloSpanningManyReads) {
  std::vector<std::string> protocols;
  std::string wire;
  for (int i = 0; i < 120; ++i) {
    protocols.push_back("proto-number-" + std::to_string(1000 + i));
    wire += static_cast<char>(protocols.back().size()) + protocols.back();
  }
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  bssl::UniquePtr<SSL> client(SSL_new(ctx.get()));
  SSL_set_connect_state(client.get());
  SSL_set_tlsext_host_name(client.get(), "big.hello.test");
  SSL_set_alpn_protos(client.get(), reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
  BIO *ours, *theirs;
  ASSERT_TRUE(BIO_new_bio_pair(&ours, 0, &theirs, 0));
  SSL_set_bio(client.get(), ours, ours);
  bssl::UniquePtr<BIO> out(theirs);
  SSL_do_handshake(client.get());
  std::string hello(BIO_pending(out.get()), '\0');
  BIO_read(out.get(), hello.data(), static_cast<int>(hello.size()));
  ASSERT_GT(hello.size(), 2000u);  // more than one 1460-byte TCP segment

  b_->StartTls(client_tls_->NewSsl(&hooks_, "localhost:443"));
  for (size_t at = 0; at < hello.size(); at += 200) {
    size_t n = std::min<size_t>(200, hello.size() - at);
    ASSERT_EQ(::write(a_->fd(), hello.data() + at, n), static_cast<ssize_t>(n));
    for (int i = 0; i < 3; ++i) event_base_loop(base_, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    if (at + n < hello.size()) {
      EXPECT_FALSE(hooks_.info) << "inspected before the hello was whole";
    }
  }
  ASSERT_TRUE(RunUntil([&] { return rb_.Saw(ConnEvent::kHandshakePaused); })) << b_->error();
  ASSERT_TRUE(hooks_.info);
  EXPECT_EQ(hooks_.info->sni, "big.hello.test");
  EXPECT_EQ(hooks_.info->alpn, protocols);
}

TEST_F(ConnTest, GraveyardFlushesThenFrees) {
  auto yard = std::make_unique<ConnGraveyard>();
  std::string last(256 * 1024, 'z');
  a_->Write(last);
  yard->Bury(std::move(a_));
  EXPECT_EQ(yard->size(), 1u);
  ASSERT_TRUE(RunUntil([&] { return rb_.Saw(ConnEvent::kEof); }));
  EXPECT_EQ(rb_.received, last);
  b_->ShutdownWrite();
  ASSERT_TRUE(RunUntil([&] { return yard->size() == 0; }));
}

}  // namespace
}  // namespace mitmd::net
