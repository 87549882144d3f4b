// The SOCKS5 handshake (proxy/socks5.h): what real clients send, fed whole and byte by byte,
// and each refusal with the reply the client gets.

#include "proxy/socks5.h"

#include <gtest/gtest.h>

namespace mitmd::proxy {
namespace {

using State = Socks5Handshake::State;

std::string B(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

const std::string kGreetingNoAuth = B({5, 1, 0});
const std::string kSuccess = B({5, 0, 0, 1, 0, 0, 0, 0, 0, 0});

std::string ConnectName(std::string_view host, uint16_t port) {
  return B({5, 1, 0, 3, static_cast<int>(host.size())}) + std::string(host) +
         B({port >> 8, port & 0xff});
}

// Feeds |in| one byte at a time; returns the concatenated replies and the last step.
Socks5Handshake::Step FeedByteByByte(Socks5Handshake& hs, std::string_view in, std::string& reply) {
  Socks5Handshake::Step last;
  size_t consumed = 0;
  for (size_t given = 1; given <= in.size(); ++given) {
    last = hs.Feed(in.substr(consumed, given - consumed));
    consumed += last.consumed;
    reply += last.reply;
    if (last.target || hs.state() == State::kFailed) break;
  }
  return last;
}

TEST(Socks5, ConnectByNameWithoutAuthPipelined) {
  Socks5Handshake hs("");
  std::string in = kGreetingNoAuth + ConnectName("example.test", 443) + "\x16\x03\x01";
  auto step = hs.Feed(in);
  EXPECT_EQ(step.reply, B({5, 0}));  // method chosen; the CONNECT reply is the caller's
  ASSERT_TRUE(step.target);
  EXPECT_EQ(step.target->type, Socks5Target::Type::kName);
  EXPECT_EQ(step.target->host, "example.test");
  EXPECT_EQ(step.target->port, 443);
  EXPECT_EQ(step.consumed, in.size() - 3) << "the tunnel's first bytes are left";
  EXPECT_EQ(hs.state(), State::kDone);
  EXPECT_EQ(Socks5Handshake::Reply(Socks5Handshake::ReplyCode::kSucceeded), kSuccess);
}

TEST(Socks5, ByteByByteGivesTheSame) {
  Socks5Handshake hs("");
  std::string reply;
  auto step = FeedByteByByte(hs, kGreetingNoAuth + ConnectName("a.test", 80), reply);
  EXPECT_EQ(reply, B({5, 0}));
  ASSERT_TRUE(step.target);
  EXPECT_EQ(step.target->host, "a.test");
  EXPECT_EQ(step.target->port, 80);
}

TEST(Socks5, ConnectByIPv4AndIPv6) {
  Socks5Handshake v4("");
  auto step = v4.Feed(kGreetingNoAuth + B({5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}));
  ASSERT_TRUE(step.target);
  EXPECT_EQ(step.target->type, Socks5Target::Type::kIPv4);
  EXPECT_EQ(step.target->host, "127.0.0.1");
  EXPECT_EQ(step.target->port, 8080);

  Socks5Handshake v6("");
  step = v6.Feed(kGreetingNoAuth +
                 B({5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb}));
  ASSERT_TRUE(step.target);
  EXPECT_EQ(step.target->type, Socks5Target::Type::kIPv6);
  EXPECT_EQ(step.target->host, "::1");
  EXPECT_EQ(step.target->port, 443);
}

TEST(Socks5, TokenRequiredAcceptsThePassword) {
  Socks5Handshake hs("s3cret");
  std::string in =
      B({5, 2, 0, 2}) + B({1, 5}) + "mitmd" + B({6}) + "s3cret" + ConnectName("a.test", 443);
  std::string reply;
  auto step = FeedByteByByte(hs, in, reply);
  EXPECT_EQ(reply, B({5, 2, 1, 0}));  // username/password chosen, then accepted
  ASSERT_TRUE(step.target);
  EXPECT_EQ(hs.username(), "mitmd");
}

TEST(Socks5, TokenRequiredRefusesAWrongPassword) {
  Socks5Handshake hs("s3cret");
  auto step = hs.Feed(B({5, 1, 2}) + B({1, 5}) + "mitmd" + B({6}) + "guess!" + ConnectName("a", 1));
  EXPECT_EQ(step.reply, B({5, 2, 1, 1}));
  EXPECT_FALSE(step.target);
  EXPECT_EQ(hs.state(), State::kFailed);
  EXPECT_NE(step.error.find("requires its proxy token"), std::string::npos) << step.error;
}

TEST(Socks5, TokenRequiredRefusesNoAuth) {
  Socks5Handshake hs("s3cret");
  auto step = hs.Feed(kGreetingNoAuth);
  EXPECT_EQ(step.reply, B({5, 0xff}));
  EXPECT_EQ(hs.state(), State::kFailed);
  EXPECT_NE(step.error.find("socks5://mitmd:TOKEN@"), std::string::npos) << step.error;
}

TEST(Socks5, NoAuthRefusesAClientOfferingOnlyPassword) {
  Socks5Handshake hs("");
  auto step = hs.Feed(B({5, 1, 2}));
  EXPECT_EQ(step.reply, B({5, 0xff}));
  EXPECT_EQ(hs.state(), State::kFailed);
}

TEST(Socks5, BindAndUdpAreNotSupported) {
  for (int command : {2, 3}) {
    Socks5Handshake hs("");
    auto step = hs.Feed(kGreetingNoAuth + B({5, command, 0, 1, 127, 0, 0, 1, 0, 80}));
    EXPECT_EQ(step.reply, B({5, 0}) + B({5, 7, 0, 1, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(hs.state(), State::kFailed);
    EXPECT_NE(step.error.find("CONNECT only"), std::string::npos) << step.error;
  }
}

TEST(Socks5, BadAddressTypeHostAndPortAreRefused) {
  Socks5Handshake type("");
  auto step = type.Feed(kGreetingNoAuth + B({5, 1, 0, 9, 1, 2, 3}));
  EXPECT_EQ(step.reply, B({5, 0}) + B({5, 8, 0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(type.state(), State::kFailed);

  Socks5Handshake host("");
  step = host.Feed(kGreetingNoAuth + ConnectName("a\r\nb", 80));
  EXPECT_EQ(host.state(), State::kFailed);
  EXPECT_NE(step.error.find("invalid host"), std::string::npos) << step.error;

  Socks5Handshake port("");
  step = port.Feed(kGreetingNoAuth + ConnectName("a.test", 0));
  EXPECT_EQ(port.state(), State::kFailed);
  EXPECT_NE(step.error.find("port 0"), std::string::npos) << step.error;
}

TEST(Socks5, IncompleteInputWaits) {
  Socks5Handshake hs("");
  auto step = hs.Feed(B({5, 3, 0}));  // says three methods, gives one
  EXPECT_EQ(step.consumed, 0u);
  EXPECT_TRUE(step.reply.empty());
  EXPECT_EQ(hs.state(), State::kGreeting);
}

}  // namespace
}  // namespace mitmd::proxy
