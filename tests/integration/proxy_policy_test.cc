// What mitmd does not intercept, and what it presents upstream: --ignore-hosts, auto-passthrough
// after a client that trusts mitmd refused its certificate (a pinned client), but not for a
// client that does not trust the root yet nor for handshakes without requests, mutual TLS with and without
// --client-cert, and the key log. Real curl, real sockets on loopback.

#include <openssl/base64.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <fstream>
#include <set>

#include "core/strings.h"
#include "proxy_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

// curl's --pinnedpubkey form of a certificate's public key.
std::string PinOf(const TestCert& cert) {
  uint8_t* der = nullptr;
  int len = i2d_PUBKEY(cert.key(), &der);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  size_t b64_len;
  EVP_EncodedLength(&b64_len, sizeof(digest));
  std::string b64(b64_len, '\0');
  b64.resize(EVP_EncodeBlock(reinterpret_cast<uint8_t*>(b64.data()), digest, sizeof(digest)));
  return "sha256//" + b64;
}

using PolicyTest = ProxyTest;

TEST_F(PolicyTest, IgnoredHostsAreTunnelledUntouched) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--ignore-hosts", "^localhost:"}));
  // Tunnelled: the client sees the upstream's own certificate, so it trusts the test CA, not mitmd.
  ProcessResult r = RunCurl({"--proxy", mitmd_.proxy_url(), "--cacert", ca_files_.cert, "-o",
                             "/dev/null", "-w", "%{http_code}", up->Url("/bytes/50000", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["kind"], "tunnel");
  EXPECT_NE(flows[0].value("note", "").find("--ignore-hosts '^localhost:'"), std::string::npos)
      << flows[0].dump();
  EXPECT_GT(flows[0]["bytes"]["down"].get<uint64_t>(), 50000u);
  EXPECT_FALSE(flows[0].contains("request"));
  // Other hosts are still intercepted.
  r = mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "127.0.0.1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[1]["kind"], "http");
}

TEST_F(PolicyTest, PinnedClientFailsThenHostIsPassedThrough) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  // This client (127.0.0.1) trusts mitmd's root: a request through mitmd's TLS shows it.
  ASSERT_EQ(mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "127.0.0.1")}).exit_code, 0);
  ASSERT_EQ(mitmd_.WaitForFlows(1).size(), 1u);
  const std::string pin = PinOf(localhost_cert_);
  // Through mitmd the client sees mitmd's leaf key, not the pinned one. curl checks its pin
  // after the handshake and hangs up: evidence only when repeated.
  constexpr size_t kHangups = 3;  // PassthroughPolicy::kHangupsToPin
  for (size_t i = 0; i < kHangups; ++i) {
    ProcessResult r = mitmd_.Curl({"--pinnedpubkey", pin, up->Url("/bytes/10", "localhost")});
    EXPECT_EQ(r.exit_code, 90) << r.err;
    EXPECT_NE(r.err.find("public key does not match pinned public key"), std::string::npos);
  }
  auto flows = mitmd_.WaitForFlows(1 + kHangups);
  ASSERT_EQ(flows.size(), 1 + kHangups);
  ASSERT_TRUE(flows[1].contains("error")) << flows[1].dump();
  EXPECT_EQ(flows[1]["error"]["phase"], "client_tls");
  EXPECT_NE(flows[1]["error"]["message"].get<std::string>().find("pinning"), std::string::npos);
  EXPECT_NE(flows.back()["error"]["message"].get<std::string>().find("tunnelled for 127.0.0.1"),
            std::string::npos) << flows.back().dump();
  // Auto-passthrough: the next connection is tunnelled, and the pin matches.
  ProcessResult next = RunCurl({"--proxy", mitmd_.proxy_url(), "--cacert", ca_files_.cert,
                                "--pinnedpubkey", pin, "-o", "/dev/null",
                                up->Url("/bytes/10", "localhost")});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  flows = mitmd_.WaitForFlows(2 + kHangups);
  ASSERT_EQ(flows.size(), 2 + kHangups);
  EXPECT_EQ(flows.back()["kind"], "tunnel");
  EXPECT_NE(flows.back().value("note", "").find("auto-passthrough"), std::string::npos);
}

TEST_F(PolicyTest, AClientThatDoesNotTrustTheRootYetIsToldToInstallItNotTunnelled) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  // curl trusting only the upstream's CA rejects mitmd's leaf: a browser before the root is
  // installed. Nothing from this client ever went through mitmd's TLS.
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = RunCurl({"--proxy", mitmd_.proxy_url(), "--cacert", ca_files_.cert, "-o",
                               "/dev/null", up->Url("/bytes/10", "localhost")});
    EXPECT_EQ(r.exit_code, 60) << r.err;
  }
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["kind"], "http") << f.dump();
    std::string message = f["error"]["message"];
    EXPECT_NE(message.find("http://mitmd.cert/"), std::string::npos) << message;
    EXPECT_NE(message.find("stays intercepted"), std::string::npos) << message;
  }
  // Once the root is trusted, the very next request is intercepted.
  ASSERT_EQ(mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "localhost")}).exit_code, 0);
  flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  EXPECT_EQ(flows[2]["kind"], "http");
  EXPECT_FALSE(flows[2].contains("error")) << flows[2].dump();
}

TEST_F(PolicyTest, AHandshakeThenCloseWithoutRequestsDoesNotStopInterception) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ASSERT_EQ(mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "localhost")}).exit_code, 0);
  // openssl s_client (a scanner, a health check) completes the handshake and hangs up, again
  // and again, from the same address as curl.
  constexpr int kHangups = 4;  // more than auto-passthrough's count of repeated hang-ups
  for (int i = 0; i < kHangups; ++i) {
    ProcessResult r = RunProcess(
        {"openssl", "s_client", "-proxy", StrCat("127.0.0.1:", mitmd_.port()), "-connect",
         StrCat("localhost:", up->port()), "-servername", "localhost"},
        std::chrono::seconds(30));
    EXPECT_NE(r.out.find("BEGIN CERTIFICATE"), std::string::npos) << r.out << r.err;
  }
  ProcessResult after = mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "localhost")});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  auto flows = mitmd_.WaitForFlows(kHangups + 2);
  ASSERT_FALSE(flows.empty());
  EXPECT_EQ(flows.back()["kind"], "http") << flows.back().dump();
  EXPECT_FALSE(flows.back().contains("note")) << flows.back().dump();
  for (const auto& f : flows) EXPECT_NE(f["kind"], "tunnel") << f.dump();
}

TEST_F(PolicyTest, WithoutAutoPassthroughThePinnedClientKeepsFailing) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--no-auto-passthrough"}));
  const std::string pin = PinOf(localhost_cert_);
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = mitmd_.Curl({"--pinnedpubkey", pin, up->Url("/bytes/10", "localhost")});
    EXPECT_EQ(r.exit_code, 90) << r.err;
  }
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[1]["kind"], "http");
  EXPECT_EQ(flows[1]["error"]["phase"], "client_tls");
}

class MutualTlsTest : public ProxyTest, public ::testing::WithParamInterface<uint16_t> {
 protected:
  UpstreamServer* StartMtlsUpstream() {
    UpstreamOptions options = TlsUpstream();
    options.client_ca_file = ca_files_.cert;
    options.min_tls_version = options.max_tls_version = GetParam();
    return StartUpstream(options);
  }
};

TEST_P(MutualTlsTest, WithoutAClientCertificateTheClientLearnsWhy) {
  UpstreamServer* up = StartMtlsUpstream();
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = mitmd_.Curl({"-w", "\n%{http_code}", up->Url("/bytes/10", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.ends_with("\n502")) << r.out;
  EXPECT_NE(r.out.find("requires a client certificate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--client-cert"), std::string::npos) << r.out;
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["error"]["phase"], "upstream_tls") << flows[0].dump();
}

TEST_P(MutualTlsTest, ClientCertificateIsPresentedAndTrafficIsReadable) {
  UpstreamServer* up = StartMtlsUpstream();
  ASSERT_TRUE(up);
  LeafSpec spec = LeafSpec::OnlyFor("client.test");
  spec.client_auth = true;
  CertFiles client = ca_.Issue(spec).Write(dir_, "client");
  WriteFile(dir_.File("client-with-key.pem"), ReadFile(client.cert) + ReadFile(client.key));
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--client-cert", dir_.File("client-with-key.pem")}));
  ProcessResult r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}",
                                 up->Url("/bytes/1000", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["response"]["status"], 200);
  EXPECT_EQ(flows[0]["response"]["body"]["size"], 1000);
}

INSTANTIATE_TEST_SUITE_P(TlsVersions, MutualTlsTest,
                         ::testing::Values(uint16_t{TLS1_2_VERSION}, uint16_t{TLS1_3_VERSION}),
                         [](const auto& info) {
                           return info.param == TLS1_2_VERSION ? "Tls12" : "Tls13";
                         });

TEST_F(PolicyTest, BrokenClientCertificateIsAStartupError) {
  WriteFile(dir_.File("nokey.pem"), ReadFile(ca_files_.cert));
  MitmdProcess broken;
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  options.upstream_ca = ca_files_.cert;
  options.extra_args = {"--client-cert", dir_.File("nokey.pem")};
  EXPECT_FALSE(broken.Start(options));
  EXPECT_NE(broken.StderrText().find("has no private key"), std::string::npos)
      << broken.StderrText();
}

TEST_F(PolicyTest, KeyLogHasSecretsForBothSides) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--keylog", dir_.File("keys.log")}));
  ASSERT_EQ(mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "localhost")}).exit_code, 0);
  ASSERT_EQ(mitmd_.WaitForFlows(1).size(), 1u);
  std::ifstream in(dir_.File("keys.log"));
  std::string line;
  std::set<std::string> client_randoms;
  while (std::getline(in, line)) {
    // NSS format: LABEL CLIENT_RANDOM_HEX SECRET_HEX
    size_t a = line.find(' '), b = line.find(' ', a + 1);
    ASSERT_NE(b, std::string::npos) << line;
    EXPECT_EQ(b - a - 1, 64u) << line;
    client_randoms.insert(line.substr(a + 1, b - a - 1));
  }
  // Two handshakes: curl to mitmd, and mitmd to the upstream.
  EXPECT_EQ(client_randoms.size(), 2u);
}

}  // namespace
}  // namespace mitmd::testing
