// Debian's openssl CLI as an independent checker of the leaves mitmd mints.

#include <gtest/gtest.h>
#include <unistd.h>

#include "ca/authority.h"
#include "support/temp_dir.h"
#include "unit/ca_test_util.h"

namespace mitmd::ca {
namespace {

using ::mitmd::ca::testing::CommandResult;
using ::mitmd::ca::testing::kOpenSsl;
using ::mitmd::ca::testing::RunCommand;
using ::mitmd::ca::testing::ToPem;
using ::mitmd::testing::TempDir;
using ::mitmd::testing::WriteFile;

class OpenSslCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
    auto ca = Authority::LoadOrCreate(dir_.File("conf"));
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
  }

  // Writes the leaf for |spec| to a file and returns its path.
  std::string LeafFile(const LeafSpec& spec, const std::string& name) {
    auto leaf = ca_->LeafFor(spec);
    EXPECT_TRUE(leaf) << leaf.error().message;
    if (!leaf) return "";
    std::string path = dir_.File(name);
    WriteFile(path, ToPem((*leaf)->chain[0].get()));
    return path;
  }

  CommandResult Verify(const std::string& leaf, const std::string& extra = "") {
    return RunCommand(std::string(kOpenSsl) +
                      " verify -no-CApath -no-CAstore -purpose sslserver -CAfile " +
                      ca_->root_cert_path() + " " + extra + " " + leaf);
  }

  CommandResult CheckHost(const std::string& leaf, const std::string& host) {
    return RunCommand(std::string(kOpenSsl) + " x509 -noout -in " + leaf + " -checkhost " + host);
  }

  CommandResult CheckIp(const std::string& leaf, const std::string& ip) {
    return RunCommand(std::string(kOpenSsl) + " x509 -noout -in " + leaf + " -checkip " + ip);
  }

  TempDir dir_;
  std::unique_ptr<Authority> ca_;
};

TEST_F(OpenSslCliTest, DnsLeafVerifiesAndMatchesItsNames) {
  std::string leaf = LeafFile(
      {.sni = "www.example.com", .host = "www.example.com", .upstream_dns = {"*.cdn.example.com"}},
      "leaf.pem");
  CommandResult r = Verify(leaf);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(leaf + ": OK"), std::string::npos) << r.output;

  r = Verify(leaf, "-verify_hostname www.example.com");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Verify(leaf, "-verify_hostname nope.example.com");
  EXPECT_NE(r.exit_code, 0) << r.output;

  r = CheckHost(leaf, "www.example.com");
  EXPECT_NE(r.output.find("does match certificate"), std::string::npos) << r.output;
  r = CheckHost(leaf, "img.cdn.example.com");
  EXPECT_NE(r.output.find("does match certificate"), std::string::npos) << r.output;
  r = CheckHost(leaf, "example.org");
  EXPECT_NE(r.output.find("does NOT match certificate"), std::string::npos) << r.output;
}

TEST_F(OpenSslCliTest, IpLeavesVerifyAndMatchTheirAddresses) {
  std::string v4 = LeafFile({.host = "127.0.0.1"}, "v4.pem");
  CommandResult r = Verify(v4, "-verify_ip 127.0.0.1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = CheckIp(v4, "127.0.0.1");
  EXPECT_NE(r.output.find("does match certificate"), std::string::npos) << r.output;
  r = CheckIp(v4, "127.0.0.2");
  EXPECT_NE(r.output.find("does NOT match certificate"), std::string::npos) << r.output;
  r = CheckHost(v4, "127.0.0.1");  // an IP is never a DNS SAN
  EXPECT_NE(r.output.find("does NOT match certificate"), std::string::npos) << r.output;

  std::string v6 = LeafFile({.sni = "", .host = "::1"}, "v6.pem");
  r = Verify(v6, "-verify_ip ::1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = CheckIp(v6, "::1");
  EXPECT_NE(r.output.find("does match certificate"), std::string::npos) << r.output;
}

TEST_F(OpenSslCliTest, LeafFromAnotherRootFails) {
  std::string leaf = LeafFile({.host = "example.com"}, "leaf.pem");
  TempDir other_dir;
  auto other = Authority::LoadOrCreate(other_dir.File("conf"));
  ASSERT_TRUE(other);
  CommandResult r = RunCommand(std::string(kOpenSsl) + " verify -no-CApath -no-CAstore -CAfile " +
                               (*other)->root_cert_path() + " " + leaf);
  EXPECT_NE(r.exit_code, 0) << r.output;
}

TEST_F(OpenSslCliTest, RootParsesAsASelfSignedCa) {
  CommandResult r =
      RunCommand(std::string(kOpenSsl) + " x509 -noout -text -in " + ca_->root_cert_path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("CA:TRUE, pathlen:0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Certificate Sign, CRL Sign"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Subject: O = mitmd, CN = mitmd root CA "), std::string::npos)
      << r.output;
  r = RunCommand(std::string(kOpenSsl) + " x509 -noout -fingerprint -sha256 -in " +
                 ca_->root_cert_path());
  EXPECT_NE(r.output.find(ca_->root_fingerprint_sha256()), std::string::npos) << r.output;
  r = RunCommand(std::string(kOpenSsl) + " pkey -noout -in " + ca_->root_key_path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace mitmd::ca
