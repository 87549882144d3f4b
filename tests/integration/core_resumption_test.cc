// Client-facing TLS resumption through mitmd with a real client: openssl s_client saves the
// session mitmd gave it (-sess_out) and offers it on a new connection (-sess_in). TLS 1.3
// tickets, TLS 1.2 tickets and session IDs resume; a session never resumes into another host.

#include <fstream>

#include "proxy_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

class ResumptionTest : public ProxyTest {
 protected:
  // One request through mitmd with s_client; |session_flag| is -sess_out or -sess_in.
  ProcessResult SClient(const std::string& connect, const std::vector<std::string>& flags,
                        const std::string& session_flag) {
    std::string request = "GET /bytes/10 HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n";
    std::string command = "printf '" + request + "' | openssl s_client -proxy 127.0.0.1:" +
                          std::to_string(mitmd_.port()) + " -connect " + connect +
                          " -servername localhost -CAfile " + mitmd_.ca_cert_path() +
                          " -verify_return_error -ign_eof " + session_flag + " " + session_;
    for (const std::string& f : flags) command += " " + f;
    return RunProcess({"bash", "-c", command}, std::chrono::seconds(20));
  }

  // s_client prints "New, TLSv1.3, Cipher is ..." or "Reused, TLSv1.3, ...".
  static bool Reused(const ProcessResult& r) { return r.out.find("\nReused, ") != std::string::npos; }
  static bool New(const ProcessResult& r) { return r.out.find("\nNew, ") != std::string::npos; }

  void SetUp() override {
    up_ = StartUpstream(TlsUpstream());
    ASSERT_TRUE(up_);
    ASSERT_NO_FATAL_FAILURE(StartMitmd());
    session_ = dir_.File("session.pem");
  }

  std::string Localhost() const { return "localhost:" + std::to_string(up_->port()); }

  UpstreamServer* up_ = nullptr;
  std::string session_;
};

TEST_F(ResumptionTest, Tls13TicketResumes) {
  ProcessResult first = SClient(Localhost(), {"-tls1_3"}, "-sess_out");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(New(first)) << first.out;
  EXPECT_NE(first.out.find("HTTP/1.1 200"), std::string::npos) << first.out;
  ProcessResult second = SClient(Localhost(), {"-tls1_3"}, "-sess_in");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_TRUE(Reused(second)) << second.out;
  EXPECT_NE(second.out.find("HTTP/1.1 200"), std::string::npos) << second.out;
  // Both exchanges are recorded as usual: the upstream side runs for a resumed client too.
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) EXPECT_EQ(f["response"]["status"], 200) << f.dump();
}

TEST_F(ResumptionTest, Tls12TicketAndSessionIdResume) {
  for (bool ticket : {true, false}) {
    SCOPED_TRACE(ticket ? "ticket" : "session id");
    std::vector<std::string> flags = {"-tls1_2"};
    if (!ticket) flags.push_back("-no_ticket");
    ProcessResult first = SClient(Localhost(), flags, "-sess_out");
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_TRUE(New(first)) << first.out;
    ProcessResult second = SClient(Localhost(), flags, "-sess_in");
    ASSERT_EQ(second.exit_code, 0) << second.err;
    EXPECT_TRUE(Reused(second)) << second.out;
    EXPECT_NE(second.out.find("HTTP/1.1 200"), std::string::npos) << second.out;
  }
}

// The session was made with a leaf for localhost:PORT; asked for 127.0.0.1:PORT (same SNI),
// mitmd makes a full handshake and presents a certificate again.
TEST_F(ResumptionTest, SessionDoesNotResumeIntoAnotherTarget) {
  ProcessResult first = SClient(Localhost(), {}, "-sess_out");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ProcessResult other = SClient("127.0.0.1:" + std::to_string(up_->port()), {}, "-sess_in");
  EXPECT_TRUE(New(other)) << other.out;
  EXPECT_FALSE(Reused(other)) << other.out;
}

}  // namespace
}  // namespace mitmd::testing
