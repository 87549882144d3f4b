// Authority::Open options: RSA roots and leaves, user-supplied roots, refused keys, cache size.

#include <gtest/gtest.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/authority.h"
#include "ca/keys.h"
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
using ::mitmd::testing::TempDir;
using ::mitmd::testing::WriteFile;

TEST(KeyTypeTest, ParsesTheDocumentedNames) {
  EXPECT_EQ(ParseKeyType("ecdsa-p256").value(), KeyType::kEcdsaP256);
  EXPECT_EQ(ParseKeyType("rsa2048").value(), KeyType::kRsa2048);
  EXPECT_EQ(ParseKeyType("rsa3072").value(), KeyType::kRsa3072);
  auto bad = ParseKeyType("rsa1024");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("use ecdsa-p256, rsa2048 or rsa3072"), std::string::npos);
  EXPECT_EQ(ToString(KeyType::kRsa3072), "rsa3072");
}

TEST(AuthorityOptionsTest, RsaRootWithEcAndRsaLeaves) {
  TempDir dir;
  AuthorityOptions options;
  options.confdir = dir.File("conf");
  options.root_key_type = KeyType::kRsa2048;
  auto ca = Authority::Open(options);
  ASSERT_TRUE(ca) << ca.error().message;
  bssl::UniquePtr<EVP_PKEY> root_key(X509_get_pubkey((*ca)->root()));
  EXPECT_EQ(EVP_PKEY_id(root_key.get()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_bits(root_key.get()), 2048u);
  EXPECT_EQ(X509_get_signature_nid((*ca)->root()), NID_sha256WithRSAEncryption);

  auto ec_leaf = (*ca)->LeafFor({.host = "example.com"});
  ASSERT_TRUE(ec_leaf);
  EXPECT_EQ(EVP_PKEY_id((*ec_leaf)->key.get()), EVP_PKEY_EC);
  EXPECT_EQ(VerifyLeaf(**ca, **ec_leaf, {.host = "example.com"}), X509_V_OK);

  // The existing RSA root is loaded again, now with an RSA leaf key.
  options.root_key_type = KeyType::kEcdsaP256;
  options.leaf_key_type = KeyType::kRsa2048;
  auto again = Authority::Open(options);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ((*again)->root_fingerprint_sha256(), (*ca)->root_fingerprint_sha256());
  auto rsa_leaf = (*again)->LeafFor({.host = "example.com"});
  ASSERT_TRUE(rsa_leaf);
  EXPECT_EQ(EVP_PKEY_id((*rsa_leaf)->key.get()), EVP_PKEY_RSA);
  auto cert = ParseBuffer((*rsa_leaf)->chain[0].get());
  EXPECT_EQ(X509_get_key_usage(cert.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  EXPECT_EQ(VerifyLeaf(**again, **rsa_leaf, {.host = "example.com"}), X509_V_OK);

  if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
  WriteFile(dir.File("leaf.pem"), ToPem((*rsa_leaf)->chain[0].get()));
  CommandResult r = RunCommand(
      std::string(kOpenSsl) + " verify -no-CApath -no-CAstore -purpose sslserver -CAfile " +
      (*again)->root_cert_path() + " -verify_hostname example.com " + dir.File("leaf.pem"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(AuthorityOptionsTest, RsaLeafNeedsAnRsaRoot) {
  TempDir dir;
  AuthorityOptions options;
  options.confdir = dir.File("conf");
  options.leaf_key_type = KeyType::kRsa2048;
  auto ca = Authority::Open(options);
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find("--leaf-key-type rsa2048 needs an RSA root"), std::string::npos)
      << ca.error().message;
}

TEST(AuthorityOptionsTest, CacheCapacityIsHonoured) {
  TempDir dir;
  AuthorityOptions options;
  options.confdir = dir.File("conf");
  options.cache_capacity = 2;
  auto ca = Authority::Open(options);
  ASSERT_TRUE(ca);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE((*ca)->LeafFor({.host = "h" + std::to_string(i) + ".test"}));
  EXPECT_EQ((*ca)->cache_stats().size, 2u);
  EXPECT_EQ((*ca)->cache_stats().misses, 5u);
}

TEST(AuthorityOptionsTest, CertAndKeyGoTogether) {
  AuthorityOptions options;
  options.ca_cert = "/nonexistent/cert.pem";
  auto ca = Authority::Open(options);
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find("--ca-cert and --ca-key go together"), std::string::npos);
}

// A user's own root made with the openssl CLI, as a user would.
class UserRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
  }

  // Makes cert.pem/key.pem with |newkey| ("ec -pkeyopt ec_paramgen_curve:P-256", "rsa:2048").
  void MakeRoot(const std::string& newkey, const std::string& ca_ext = "critical,CA:TRUE") {
    CommandResult r = RunCommand(
        std::string(kOpenSsl) + " req -x509 -newkey " + newkey + " -nodes -keyout " + Key() +
        " -out " + Cert() + " -days 30 -subj '/O=Acme/CN=Acme Test Root'" +
        " -addext basicConstraints=" + ca_ext + " -addext keyUsage=critical,keyCertSign,cRLSign");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(chmod(Key().c_str(), 0600), 0);
  }

  Result<std::unique_ptr<Authority>> Open() {
    AuthorityOptions options;
    options.ca_cert = Cert();
    options.ca_key = Key();
    return Authority::Open(options);
  }

  std::string Cert() const { return dir_.File("cert.pem"); }
  std::string Key() const { return dir_.File("key.pem"); }
  TempDir dir_;
};

TEST_F(UserRootTest, EcRootWorksLikeOurOwn) {
  MakeRoot("ec -pkeyopt ec_paramgen_curve:P-256");
  auto ca = Open();
  ASSERT_TRUE(ca) << ca.error().message;
  EXPECT_EQ((*ca)->root_cert_path(), Cert());
  EXPECT_EQ((*ca)->root_key_path(), Key());
  auto leaf = (*ca)->LeafFor({.host = "example.com"});
  ASSERT_TRUE(leaf);
  EXPECT_EQ(VerifyLeaf(**ca, **leaf, {.host = "example.com"}), X509_V_OK);
  // The root expires in 30 days: the leaf must not outlive it.
  auto cert = ParseBuffer((*leaf)->chain[0].get());
  int days = -1, secs = -1;
  ASSERT_TRUE(ASN1_TIME_diff(&days, &secs, X509_get0_notAfter((*ca)->root()),
                             X509_get0_notAfter(cert.get())));
  EXPECT_EQ(days, 0);
  EXPECT_EQ(secs, 0);
  // Only the two files exist: nothing was created next to them.
  EXPECT_EQ(access(dir_.File("mitmd-ca.pem").c_str(), F_OK), -1);
}

TEST_F(UserRootTest, RsaRootWithTraditionalKeyFormat) {
  MakeRoot("rsa:2048");
  CommandResult r = RunCommand(std::string(kOpenSsl) + " rsa -traditional -in " + Key() + " -out " +
                               Key() + ".rsa");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(rename((Key() + ".rsa").c_str(), Key().c_str()), 0);
  ASSERT_EQ(chmod(Key().c_str(), 0600), 0);
  ASSERT_NE(::mitmd::testing::ReadFile(Key()).find("BEGIN RSA PRIVATE KEY"), std::string::npos);
  auto ca = Open();
  ASSERT_TRUE(ca) << ca.error().message;
  auto leaf = (*ca)->LeafFor({.host = "10.1.2.3"});
  ASSERT_TRUE(leaf);
  EXPECT_EQ(VerifyLeaf(**ca, **leaf, {.ip = "10.1.2.3"}), X509_V_OK);
}

TEST_F(UserRootTest, EncryptedKeysAskToBeDecrypted) {
  MakeRoot("ec -pkeyopt ec_paramgen_curve:P-256");
  for (const std::string convert :
       {" pkey -aes256 -passout pass:secret", " ec -aes256 -passout pass:secret"}) {
    CommandResult r = RunCommand(std::string(kOpenSsl) + convert + " -in " + Key() + " -out " +
                                 dir_.File("enc.pem"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(chmod(dir_.File("enc.pem").c_str(), 0600), 0);
    AuthorityOptions options;
    options.ca_cert = Cert();
    options.ca_key = dir_.File("enc.pem");
    auto ca = Authority::Open(options);
    ASSERT_FALSE(ca) << convert;
    EXPECT_TRUE(ca.error().message.starts_with(dir_.File("enc.pem") +
                                               ": the private key is encrypted; decrypt it first"))
        << ca.error().message;
  }
}

TEST_F(UserRootTest, ReadableKeyIsRefused) {
  MakeRoot("ec -pkeyopt ec_paramgen_curve:P-256");
  ASSERT_EQ(chmod(Key().c_str(), 0640), 0);
  auto ca = Open();
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find(
                Key() +
                " (the CA private key) is accessible by other users (mode 0640); run `chmod 600 " +
                Key() + "`"),
            std::string::npos)
      << ca.error().message;
}

TEST_F(UserRootTest, NonCaCertificateIsRefused) {
  MakeRoot("ec -pkeyopt ec_paramgen_curve:P-256", "critical,CA:FALSE");
  auto ca = Open();
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find(Cert() + " is not a CA certificate"), std::string::npos)
      << ca.error().message;
}

TEST_F(UserRootTest, MissingFilesAreNotCreated) {
  auto ca = Open();
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find("cannot read " + Key()), std::string::npos)
      << ca.error().message;
  EXPECT_EQ(access(Cert().c_str(), F_OK), -1);
}

}  // namespace
}  // namespace mitmd::ca
