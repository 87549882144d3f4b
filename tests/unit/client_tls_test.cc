// Client-facing TLS resumption: tickets sent with the handshake, TLS 1.3 tickets and TLS 1.2
// tickets and session IDs resumed, never across hosts, keys rotated and private to one run.
// Handshakes run over an in-memory BIO pair; the last test over a socketpair through net::Conn.

#include "proxy/client_tls.h"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>

#include "ca/authority.h"
#include "net/conn.h"
#include "proxy/client_hello.h"
#include "support/temp_dir.h"

namespace mitmd::proxy {
namespace {

// Answers every ClientHello at once with a leaf minted for its SNI.
class LeafHooks : public ClientHandshakeHooks {
 public:
  explicit LeafHooks(ca::Authority* authority) : authority_(authority) {}
  ssl_select_cert_result_t OnClientHello(const SSL_CLIENT_HELLO* hello) override {
    ++calls;
    ca::LeafSpec spec;
    spec.sni = ParseClientHello(hello).sni;
    spec.host = spec.sni;
    auto leaf = authority_->LeafFor(spec);
    if (!leaf) return ssl_select_cert_error;
    std::vector<CRYPTO_BUFFER*> chain;
    for (const auto& c : (*leaf)->chain) chain.push_back(c.get());
    return SSL_set_chain_and_key(hello->ssl, chain.data(), chain.size(), (*leaf)->key.get(),
                                 nullptr)
               ? ssl_select_cert_success
               : ssl_select_cert_error;
  }
  std::optional<std::string> ChooseAlpn(const std::vector<std::string>&) override { return ""; }
  int calls = 0;

 private:
  ca::Authority* authority_;
};

// The client keeps the last session the server handed it (TLS 1.3 tickets arrive after the
// handshake; TLS 1.2 sessions are ready when it ends).
struct SessionHolder {
  bssl::UniquePtr<SSL_SESSION> session;
  static int OnNewSession(SSL* ssl, SSL_SESSION* session) {
    static_cast<SessionHolder*>(SSL_get_app_data(ssl))->session.reset(session);
    return 1;  // we took the reference
  }
};

bssl::UniquePtr<SSL_CTX> ClientCtx(uint16_t max_version, bool tickets) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(ctx.get(), SessionHolder::OnNewSession);
  if (!tickets) SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  return ctx;
}

class ClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto authority = ca::Authority::LoadOrCreate(dir_.File("ca"));
    ASSERT_TRUE(authority) << authority.error().message;
    authority_ = std::move(*authority);
    hooks_ = std::make_unique<LeafHooks>(authority_.get());
    ClientTlsOptions options;
    options.now = [this] { return now_; };
    auto tls = ClientTls::Create(nullptr, options);
    ASSERT_TRUE(tls) << tls.error().message;
    tls_ = std::move(*tls);
  }

  struct Outcome {
    bool ok = false;
    bool client_reused = false;
    bool server_reused = false;
  };

  // One handshake to |sni| through a proxy asked for |scope|; offers |holder|'s session if any
  // and keeps the one the server hands out.
  Outcome Handshake(SSL_CTX* client_ctx, const ClientTls& tls, std::string_view scope,
                    const std::string& sni, SessionHolder& holder) {
    Outcome out;
    bssl::UniquePtr<SSL> client(SSL_new(client_ctx));
    bssl::UniquePtr<SSL> server = tls.NewSsl(hooks_.get(), scope);
    if (!client || !server) return out;
    SSL_set_connect_state(client.get());
    SSL_set_tlsext_host_name(client.get(), sni.c_str());
    SSL_set_app_data(client.get(), &holder);
    if (holder.session) SSL_set_session(client.get(), holder.session.get());
    BIO *client_bio, *server_bio;
    BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
    SSL_set_bio(client.get(), client_bio, client_bio);
    SSL_set_bio(server.get(), server_bio, server_bio);
    bool client_done = false, server_done = false;
    for (int i = 0; i < 20 && !(client_done && server_done); ++i) {
      for (auto [ssl, done] : {std::pair{client.get(), &client_done},
                               std::pair{server.get(), &server_done}}) {
        if (*done) continue;
        int r = SSL_do_handshake(ssl);
        if (r == 1) {
          *done = true;
          continue;
        }
        int err = SSL_get_error(ssl, r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return out;
      }
    }
    if (!client_done || !server_done) return out;
    // net::Conn flushes the TLS 1.3 tickets with a zero-byte write when the handshake is done
    // (the last test checks that over a socket); do as it does.
    if (SSL_write(server.get(), nullptr, 0) < 0) return out;
    // The client reads what the server sent after its Finished: the TLS 1.3 tickets.
    char byte;
    int r = SSL_read(client.get(), &byte, 1);
    if (r <= 0 && SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ) return out;
    out.ok = true;
    out.client_reused = SSL_session_reused(client.get());
    out.server_reused = SSL_session_reused(server.get());
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<ca::Authority> authority_;
  std::unique_ptr<LeafHooks> hooks_;
  double now_ = 1000;
  std::unique_ptr<ClientTls> tls_;
};

TEST_F(ClientTlsTest, Tls13TicketsGoOutWithTheHandshakeAndResume) {
  auto ctx = ClientCtx(TLS1_3_VERSION, true);
  SessionHolder holder;
  Outcome first = Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder);
  ASSERT_TRUE(first.ok);
  EXPECT_FALSE(first.server_reused);
  ASSERT_TRUE(holder.session);
  EXPECT_TRUE(SSL_SESSION_is_resumable(holder.session.get()));
  EXPECT_EQ(SSL_SESSION_get_protocol_version(holder.session.get()), TLS1_3_VERSION);

  Outcome second = Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder);
  ASSERT_TRUE(second.ok);
  EXPECT_TRUE(second.client_reused);
  EXPECT_TRUE(second.server_reused);
  // The upstream side is still driven by every ClientHello, resumed or not.
  EXPECT_EQ(hooks_->calls, 2);
}

TEST_F(ClientTlsTest, Tls12ResumesWithTicketsAndSessionIds) {
  for (bool tickets : {true, false}) {
    SCOPED_TRACE(tickets ? "ticket" : "session id");
    auto ctx = ClientCtx(TLS1_2_VERSION, tickets);
    SessionHolder holder;
    ASSERT_TRUE(Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder).ok);
    ASSERT_TRUE(holder.session);
    EXPECT_EQ(SSL_SESSION_get_protocol_version(holder.session.get()), TLS1_2_VERSION);
    unsigned id_len = 0;
    SSL_SESSION_get_id(holder.session.get(), &id_len);
    EXPECT_GT(id_len, 0u);
    Outcome second = Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder);
    ASSERT_TRUE(second.ok);
    EXPECT_TRUE(second.client_reused);
    EXPECT_TRUE(second.server_reused);
  }
}

// A session established with a leaf for one host must not resume into another: neither under
// another proxy target nor with another SNI.
TEST_F(ClientTlsTest, NeverResumesAcrossHosts) {
  for (uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    for (bool tickets : {true, false}) {
      if (version == TLS1_3_VERSION && !tickets) continue;  // TLS 1.3 resumes only by ticket
      SCOPED_TRACE(::testing::Message() << std::hex << version << (tickets ? " ticket" : " id"));
      auto ctx = ClientCtx(version, tickets);
      SessionHolder holder;
      ASSERT_TRUE(Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder).ok);
      ASSERT_TRUE(holder.session);
      bssl::UniquePtr<SSL_SESSION> from_a = bssl::UpRef(holder.session);

      Outcome other_target = Handshake(ctx.get(), *tls_, "b.test:443", "a.test", holder);
      ASSERT_TRUE(other_target.ok);
      EXPECT_FALSE(other_target.server_reused);

      holder.session = bssl::UpRef(from_a);
      Outcome other_port = Handshake(ctx.get(), *tls_, "a.test:8443", "a.test", holder);
      ASSERT_TRUE(other_port.ok);
      EXPECT_FALSE(other_port.server_reused);

      holder.session = bssl::UpRef(from_a);
      Outcome other_sni = Handshake(ctx.get(), *tls_, "a.test:443", "b.test", holder);
      ASSERT_TRUE(other_sni.ok);
      EXPECT_FALSE(other_sni.server_reused);

      holder.session = bssl::UpRef(from_a);
      Outcome same = Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder);
      ASSERT_TRUE(same.ok);
      EXPECT_TRUE(same.server_reused);
    }
  }
}

TEST_F(ClientTlsTest, TicketKeysRotateAndThePreviousOneStillOpens) {
  auto ctx = ClientCtx(TLS1_3_VERSION, true);
  SessionHolder holder;
  ASSERT_TRUE(Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder).ok);
  bssl::UniquePtr<SSL_SESSION> sealed_first = bssl::UpRef(holder.session);

  now_ += 1.5 * 3600;  // the first key has been replaced, and still opens what it sealed
  Outcome after_rotation = Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder);
  ASSERT_TRUE(after_rotation.ok);
  EXPECT_TRUE(after_rotation.server_reused);

  now_ += 3600;  // two lifetimes after the first key was made: it is gone
  holder.session = std::move(sealed_first);
  Outcome expired = Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder);
  ASSERT_TRUE(expired.ok);
  EXPECT_FALSE(expired.server_reused);
}

TEST_F(ClientTlsTest, TicketsFromAnotherRunDoNotResume) {
  auto ctx = ClientCtx(TLS1_3_VERSION, true);
  SessionHolder holder;
  ASSERT_TRUE(Handshake(ctx.get(), *tls_, "a.test:443", "a.test", holder).ok);
  auto other = ClientTls::Create();
  ASSERT_TRUE(other);
  Outcome o = Handshake(ctx.get(), **other, "a.test:443", "a.test", holder);
  ASSERT_TRUE(o.ok);
  EXPECT_FALSE(o.server_reused);
}

// Over a socket through net::Conn: the client receives its ticket while neither side writes
// any application data (BoringSSL holds TLS 1.3 tickets until the server's next write), so a
// client that leaves Nagle on gets its Finished acknowledged at once.
TEST_F(ClientTlsTest, TicketReachesTheSocketWithoutApplicationData) {
  struct Quiet : net::Conn::Delegate {
    bool done = false;
    void OnConnEvent(net::Conn&, net::ConnEvent e) override {
      if (e == net::ConnEvent::kHandshakeDone) done = true;
    }
  } client_events, server_events;
  event_base* base = event_base_new();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  {
    net::Conn client(base, fds[0], &client_events);
    net::Conn server(base, fds[1], &server_events);
    auto ctx = ClientCtx(TLS1_3_VERSION, true);
    SessionHolder holder;
    bssl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
    SSL_set_connect_state(ssl.get());
    SSL_set_tlsext_host_name(ssl.get(), "a.test");
    SSL_set_app_data(ssl.get(), &holder);
    server.StartTls(tls_->NewSsl(hooks_.get(), "a.test:443"));
    client.StartTls(std::move(ssl));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!holder.session && std::chrono::steady_clock::now() < deadline) {
      event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    EXPECT_TRUE(server_events.done);
    ASSERT_TRUE(holder.session) << "no ticket reached the client";
    EXPECT_EQ(client.bytes_read(), server.bytes_written());
    EXPECT_EQ(server.output_pending(), 0u);
  }
  event_base_free(base);
}

}  // namespace
}  // namespace mitmd::proxy
