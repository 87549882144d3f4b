// A root with X.509 name constraints: leaves inside the scope verify, anything outside fails in
// BoringSSL and in the openssl CLI, and the Authority never mints outside it.

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <ctime>

#include "ca/authority.h"
#include "ca/keys.h"
#include "ca/leaf_minter.h"
#include "ca/leaf_names.h"
#include "ca/root_store.h"
#include "ca/scope.h"
#include "support/temp_dir.h"
#include "unit/ca_test_util.h"

namespace mitmd::ca {
namespace {

using ::mitmd::ca::testing::CommandResult;
using ::mitmd::ca::testing::kOpenSsl;
using ::mitmd::ca::testing::ParseBuffer;
using ::mitmd::ca::testing::RunCommand;
using ::mitmd::ca::testing::ToPem;
using ::mitmd::ca::testing::VerifyLeaf;
using ::mitmd::ca::testing::VerifyWithBoringSsl;
using ::mitmd::testing::TempDir;
using ::mitmd::testing::WriteFile;

class ScopedRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto scope = Scope::Parse("example.com,.test,127.0.0.1");
    ASSERT_TRUE(scope) << scope.error().message;
    std::string conf = dir_.File("conf");
    ASSERT_TRUE(EnsurePrivateDir(conf));
    auto made = RegenerateRoot(DefaultRootPaths(conf), KeyType::kEcdsaP256, *scope);
    ASSERT_TRUE(made) << made.error().message;
    auto ca = Authority::LoadOrCreate(conf);
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
  }

  // A leaf for |host| minted straight from the root, bypassing the Authority's scope check:
  // what a stolen root key could produce.
  bssl::UniquePtr<X509> ForcedLeaf(const std::string& host) {
    auto root = LoadRoot(DefaultRootPaths(dir_.File("conf")));
    EXPECT_TRUE(root) << root.error().message;
    auto key = GenerateKey(KeyType::kEcdsaP256);
    auto leaf = MintLeaf(*root, key->get(), NamesFor({.host = host}), time(nullptr));
    EXPECT_TRUE(leaf) << leaf.error().message;
    return ParseBuffer(leaf->chain[0].get());
  }

  CommandResult OpenSslVerify(X509* leaf, const std::string& name, const std::string& extra = "") {
    std::string path = dir_.File(name);
    auto pem = CertToPem(leaf);
    WriteFile(path, pem ? *pem : "");
    return RunCommand(std::string(kOpenSsl) +
                      " verify -no-CApath -no-CAstore -purpose sslserver -CAfile " +
                      ca_->root_cert_path() + " " + extra + " " + path);
  }

  TempDir dir_;
  std::unique_ptr<Authority> ca_;
};

TEST_F(ScopedRootTest, InScopeFollowsTheConstraints) {
  EXPECT_EQ(ca_->scope_description(), "permitted: example.com, .test, 127.0.0.1/32");
  EXPECT_TRUE(ca_->InScope("example.com"));
  EXPECT_TRUE(ca_->InScope("api.example.com"));
  EXPECT_TRUE(ca_->InScope("shop.test"));
  EXPECT_TRUE(ca_->InScope("127.0.0.1"));
  EXPECT_FALSE(ca_->InScope("example.org"));
  EXPECT_FALSE(ca_->InScope("test"));
  EXPECT_FALSE(ca_->InScope("127.0.0.2"));
  EXPECT_FALSE(ca_->InScope("::1"));
}

TEST_F(ScopedRootTest, InScopeLeavesVerify) {
  for (const std::string host : {"www.example.com", "shop.test"}) {
    auto leaf = ca_->LeafFor({.sni = host, .host = host});
    ASSERT_TRUE(leaf) << leaf.error().message;
    EXPECT_EQ(VerifyLeaf(*ca_, **leaf, {.host = host}), X509_V_OK) << host;
    if (access(kOpenSsl, X_OK) == 0) {
      CommandResult r = OpenSslVerify(ParseBuffer((*leaf)->chain[0].get()).get(), "in.pem");
      EXPECT_EQ(r.exit_code, 0) << host << ": " << r.output;
    }
  }
}

TEST_F(ScopedRootTest, InScopeIpLeafVerifiesWithOpenSsl) {
  auto leaf = ca_->LeafFor({.host = "127.0.0.1"});
  ASSERT_TRUE(leaf) << leaf.error().message;
  // This BoringSSL (Android 13's) predates iPAddress name constraints and rejects every IP SAN
  // under a root that has them; OpenSSL, Chrome and NSS check them.
  EXPECT_EQ(VerifyLeaf(*ca_, **leaf, {.ip = "127.0.0.1"}), X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE);
  if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
  CommandResult r =
      OpenSslVerify(ParseBuffer((*leaf)->chain[0].get()).get(), "ip.pem", "-verify_ip 127.0.0.1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(ScopedRootTest, UpstreamNamesOutsideTheScopeAreLeftOut) {
  auto leaf = ca_->LeafFor({.sni = "www.example.com",
                            .host = "www.example.com",
                            .upstream_cn = "cdn.example.net",
                            .upstream_dns = {"cdn.example.net", "www.example.com", "img.test"},
                            .upstream_ips = {"10.0.0.1"}});
  ASSERT_TRUE(leaf) << leaf.error().message;
  EXPECT_EQ((*leaf)->dns_names, (std::vector<std::string>{"www.example.com", "img.test"}));
  EXPECT_TRUE((*leaf)->ip_names.empty());
  EXPECT_EQ(VerifyLeaf(*ca_, **leaf, {.host = "www.example.com"}), X509_V_OK);
}

TEST_F(ScopedRootTest, AuthorityRefusesHostsOutsideTheScope) {
  auto leaf = ca_->LeafFor({.sni = "example.org", .host = "example.org"});
  ASSERT_FALSE(leaf);
  EXPECT_NE(leaf.error().message.find("'example.org' is outside the CA's scope"), std::string::npos)
      << leaf.error().message;
  EXPECT_FALSE(ca_->LeafFor({.host = "10.0.0.1"}));
}

TEST_F(ScopedRootTest, ForcedLeafOutsideTheScopeFailsVerification) {
  auto dns = ForcedLeaf("www.example.org");
  ASSERT_TRUE(dns);
  EXPECT_EQ(VerifyWithBoringSsl(ca_->root(), dns.get(), {.host = "www.example.org"}),
            X509_V_ERR_PERMITTED_VIOLATION);
  auto ip = ForcedLeaf("10.0.0.1");
  ASSERT_TRUE(ip);
  EXPECT_NE(VerifyWithBoringSsl(ca_->root(), ip.get(), {.ip = "10.0.0.1"}), X509_V_OK);

  if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
  CommandResult r = OpenSslVerify(dns.get(), "out.pem");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("permitted subtree violation"), std::string::npos) << r.output;
  r = OpenSslVerify(ip.get(), "out-ip.pem");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("permitted subtree violation"), std::string::npos) << r.output;
  // The same forced leaf for an in-scope name passes: the failure above is the scope's doing.
  r = OpenSslVerify(ForcedLeaf("www.example.com").get(), "forced-in.pem");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(ScopedRootTest, DomainOnlyScopeKeepsEveryAddressOut) {
  TempDir other;
  auto scope = Scope::Parse("example.com");
  ASSERT_TRUE(scope);
  std::string conf = other.File("conf");
  ASSERT_TRUE(EnsurePrivateDir(conf));
  ASSERT_TRUE(RegenerateRoot(DefaultRootPaths(conf), KeyType::kEcdsaP256, *scope));
  auto root = LoadRoot(DefaultRootPaths(conf));
  ASSERT_TRUE(root);
  auto key = GenerateKey(KeyType::kEcdsaP256);
  auto leaf = MintLeaf(*root, key->get(), NamesFor({.host = "192.0.2.1"}), time(nullptr));
  ASSERT_TRUE(leaf);
  auto cert = ParseBuffer(leaf->chain[0].get());
  EXPECT_NE(VerifyWithBoringSsl(root->cert.get(), cert.get(), {.ip = "192.0.2.1"}), X509_V_OK);
  if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
  std::string path = other.File("leaf.pem");
  WriteFile(path, ToPem(leaf->chain[0].get()));
  CommandResult r = RunCommand(std::string(kOpenSsl) + " verify -no-CApath -no-CAstore -CAfile " +
                               DefaultRootPaths(conf).cert + " " + path);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("excluded subtree violation"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mitmd::ca
