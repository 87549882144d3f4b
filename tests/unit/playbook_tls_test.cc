// Playbooks of the client TLS layer mirroring the upstream: the ALPN offer goes upstream as the
// client made it (minus h2 until mitmd parses it), the upstream's choice decides what follows
// the handshake (HTTP/1, a recorded raw relay, or a no_application_protocol alert).

#include <gtest/gtest.h>

#include "proxy/client_tls.h"
#include "support/playbook.h"

namespace mitmd::testing {
namespace {

constexpr char kConnect[] = "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n";
constexpr char kEstablished[] = "HTTP/1.1 200 Connection established\r\n\r\n";

// What the client TLS layer answers the ALPN callback with, as BoringSSL would ask it.
std::optional<std::string> AlpnAnswer(Playbook& pb, const std::vector<std::string>& offered) {
  auto* hooks = static_cast<proxy::ClientHandshakeHooks*>(SSL_get_app_data(pb.client().ssl()));
  return hooks->ChooseAlpn(offered);
}

TEST(PlaybookAlpn, UnknownProtocolIsOfferedUpstreamAndRelayedRawAndRecorded) {
  const std::vector<std::string> offer = {"mqtt"};
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test", offer));
  pb >> ClientHello("a.test", offer) << Dial("a.test:443 tls sni=a.test alpn=mqtt");
  pb >> Dialed("mqtt") << ContinueHandshake();
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(AlpnAnswer(pb, offer), "mqtt");
  pb >> ClientHandshakeDone();
  const std::string connect("\x10\x0c\x00\x04MQTT", 8);
  pb >> FromClient(connect) << ToServer(connect);
  pb >> FromServer(std::string("\x20\x02\x00\x00", 4)) << ToClient(std::string("\x20\x02\x00\x00", 4));
  pb >> ClientEof();
  pb >> ServerEof() << ShutdownClient() << Recorded("tunnel a.test:443 up=8 down=4")
     << CloseClient() << CloseServer("both sides closed");
  ASSERT_TRUE(pb.Run());
  const Flow& f = *pb.recorded()[0];
  EXPECT_NE(f.note.find("mqtt"), std::string::npos) << f.note;
  ASSERT_TRUE(f.server_tls);
  EXPECT_EQ(f.server_tls->alpn, "mqtt");
  ASSERT_TRUE(f.client_tls);
  EXPECT_EQ(f.client_tls->alpn_offered, offer);
}

TEST(PlaybookAlpn, H2IsOfferedUpstreamAndAnHttp1ServerGetsHttp1) {
  const std::vector<std::string> offer = {"h2", "http/1.1"};
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test", offer));
  pb >> ClientHello("a.test", offer) << Dial("a.test:443 tls sni=a.test alpn=h2,http/1.1");
  pb >> Dialed("http/1.1") << ContinueHandshake();
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(AlpnAnswer(pb, offer), "http/1.1");
}

TEST(PlaybookAlpn, ServerWithoutAlpnLeavesTheClientWithoutAlpnToo) {
  const std::vector<std::string> offer = {"h2", "http/1.1"};
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test", offer));
  pb >> ClientHello("a.test", offer) << Dial("a.test:443 tls sni=a.test alpn=h2,http/1.1");
  pb >> Dialed("") << ContinueHandshake();
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(AlpnAnswer(pb, offer), "");
}

TEST(PlaybookAlpn, NoProtocolInCommonIsAnAlertAndARecordedFlow) {
  const std::vector<std::string> offer = {"imap"};
  Playbook pb;
  pb >> FromClient(kConnect) << ToClient(kEstablished);
  pb >> FromClient(ClientHelloBytes("a.test", offer));
  pb >> ClientHello("a.test", offer) << Dial("a.test:443 tls sni=a.test alpn=imap");
  pb >> Dialed("") << ContinueHandshake();
  ASSERT_TRUE(pb.Run());
  EXPECT_EQ(AlpnAnswer(pb, offer), std::nullopt);  // BoringSSL then sends the alert
  pb >> ClientError("NO_APPLICATION_PROTOCOL") << Recorded("- error=client_tls") << CloseClient()
     << CloseServer("no application protocol in common");
  ASSERT_TRUE(pb.Run());
  const std::string& message = pb.recorded()[0]->error->message;
  EXPECT_NE(message.find("imap"), std::string::npos) << message;
  EXPECT_NE(message.find("no_application_protocol"), std::string::npos) << message;
  EXPECT_EQ(message.find("auto-passthrough"), std::string::npos) << message;
}

TEST(PlaybookUnclean, AServerCloseWithoutCloseNotifyIsPassedOnAndNoted) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
  Playbook pb;
  pb >> FromClient("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n") << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> FromServer(head + "partial") << ToClient(head + "partial");
  pb >> ServerTruncatedEof() << Recorded("200 GET http://a.test/x") << CloseClient()
     << CloseServer("not kept alive");
  ASSERT_TRUE(pb.Run());
  EXPECT_TRUE(pb.client().close_notify_skipped());
  const Flow& f = *pb.recorded()[0];
  EXPECT_NE(f.note.find("may be truncated"), std::string::npos) << f.note;
  EXPECT_EQ(f.response->body.content, "partial");
}

TEST(PlaybookUnclean, AClosingServerWithCloseNotifyEndsCleanly) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
  Playbook pb;
  pb >> FromClient("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n") << Dial("a.test:80");
  pb >> Dialed() << ToServer("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
  pb >> FromServer(head + "whole") << ToClient(head + "whole");
  pb >> ServerEof() << Recorded("200 GET http://a.test/x") << CloseClient()
     << CloseServer("not kept alive");
  ASSERT_TRUE(pb.Run());
  EXPECT_FALSE(pb.client().close_notify_skipped());
  EXPECT_EQ(pb.recorded()[0]->note, "");
}

}  // namespace
}  // namespace mitmd::testing
