#pragma once
// The fixture every proxy integration test uses: a test CA with a localhost leaf, upstream servers
// on loopback, and one mitmd process. Teardown checks connection hygiene (no socket of mitmd left
// in CLOSE_WAIT once clients, then upstreams, are gone) and that SIGTERM exits 0.

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"
#include "support/upstream_server.h"

namespace mitmd::testing {

class ProxyTest : public ::testing::Test {
 protected:
  ProxyTest();

  void TearDown() override;

  // Options for a TLS upstream on |host| serving the localhost leaf.
  UpstreamOptions TlsUpstream(const std::string& host = "127.0.0.1") const;
  // Options for a plain-HTTP upstream on 127.0.0.1.
  static UpstreamOptions PlainUpstream();
  // Options for a TLS upstream serving |cert|.
  UpstreamOptions UpstreamWith(const TestCert& cert, const std::string& name);
  // Starts an upstream the fixture owns (stopped in TearDown); nullptr (and a failure) if it
  // cannot listen.
  UpstreamServer* StartUpstream(const UpstreamOptions& options);

  // Starts mitmd trusting the test CA upstream. Use with ASSERT_NO_FATAL_FAILURE.
  void StartMitmd(const std::vector<std::string>& extra_args = {},
                  const std::string& upstream_allow = "127.0.0.0/8,::1");

  // curl straight to the upstream, trusting the test CA.
  ProcessResult DirectCurl(const std::vector<std::string>& args) const;

  // Adds a failure unless mitmd holds no socket in CLOSE_WAIT within |grace|.
  void ExpectNoCloseWait(const std::string& when,
                         std::chrono::milliseconds grace = std::chrono::seconds(3));

  // Whether TearDown runs the CLOSE_WAIT checks (tests that leave clients hanging on purpose
  // turn it off).
  bool check_hygiene_ = true;

  TempDir dir_;
  TestCa ca_;
  CertFiles ca_files_;
  TestCert localhost_cert_;
  CertFiles localhost_files_;
  std::vector<std::unique_ptr<UpstreamServer>> upstreams_;
  MitmdProcess mitmd_;
};

// The flows whose request path is |path|.
std::vector<nlohmann::json> FlowsWithPath(const std::vector<nlohmann::json>& flows,
                                          const std::string& path);
// The names of an ordered header list ([[name, value], ...]) as recorded in a flow.
std::vector<std::string> HeaderNames(const nlohmann::json& headers);
// The value of the first header called |name| (exact case), or "" if there is none.
std::string HeaderValue(const nlohmann::json& headers, const std::string& name);
// The recorded body copy's bytes, decoding base64 when the flow says so.
std::string BodyContent(const nlohmann::json& body);
// Adds failures unless accepted <= request_start <= request_end <= response_start <=
// response_end, all positive.
void ExpectMonotonicTimings(const nlohmann::json& flow);
// Lower-case copy, for matching reason phrases whatever their capitalisation.
std::string Lower(std::string s);
// A port on 127.0.0.1 where connections are refused: a bound socket that never listens.
class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace mitmd::testing
