#include <gtest/gtest.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <set>
#include <thread>

#include "ca/authority.h"
#include "ca/x509_util.h"
#include "support/temp_dir.h"
#include "unit/ca_test_util.h"

namespace mitmd::ca {
namespace {

using ::mitmd::ca::testing::ParseBuffer;
using ::mitmd::ca::testing::VerifyLeaf;
using ::mitmd::ca::testing::VerifyTarget;
using ::mitmd::testing::TempDir;

constexpr long kDay = 86400;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Seconds from now to |t| (negative when in the past).
long SecondsFromNow(const ASN1_TIME* t) {
  bssl::UniquePtr<ASN1_TIME> now(ASN1_TIME_set(nullptr, time(nullptr)));
  int days = 0, secs = 0;
  EXPECT_TRUE(ASN1_TIME_diff(&days, &secs, now.get(), t));
  return days * kDay + secs;
}

bool ExtensionCritical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  EXPECT_GE(idx, 0) << OBJ_nid2sn(nid);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

std::string SubjectCn(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     ASN1_STRING_length(s));
}

std::string SerialHex(X509* cert) {
  bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

class AuthorityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = Authority::LoadOrCreate(dir_.File("conf"));
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
  }

  std::shared_ptr<const Leaf> Mint(const LeafSpec& spec) {
    auto leaf = ca_->LeafFor(spec);
    EXPECT_TRUE(leaf) << leaf.error().message;
    return leaf ? *leaf : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<Authority> ca_;
};

TEST_F(AuthorityTest, CreatesPrivateDirectoryAndKeyFile) {
  EXPECT_EQ(ModeOf(dir_.File("conf")), 0700u);
  EXPECT_EQ(ca_->root_key_path(), dir_.File("conf/mitmd-ca-key.pem"));
  EXPECT_EQ(ca_->root_cert_path(), dir_.File("conf/mitmd-ca.pem"));
  EXPECT_EQ(ModeOf(ca_->root_key_path()), 0600u);
  EXPECT_EQ(ModeOf(ca_->root_cert_path()), 0644u);
  EXPECT_EQ(::mitmd::testing::ReadFile(ca_->root_cert_path()), ca_->root_pem());
  EXPECT_EQ(access(dir_.File("conf/mitmd-ca-key.pem.tmp").c_str(), F_OK), -1);
}

TEST_F(AuthorityTest, RootHasTheProfileOfALocalCa) {
  X509* root = ca_->root();
  std::string cn = SubjectCn(root);
  ASSERT_EQ(cn.size(), std::string("mitmd root CA ").size() + 8) << cn;
  EXPECT_TRUE(cn.starts_with("mitmd root CA ")) << cn;
  EXPECT_EQ(cn.find_first_not_of("0123456789abcdef", 14), std::string::npos) << cn;
  EXPECT_EQ(NameToString(X509_get_subject_name(root)), "CN=" + cn + ",O=mitmd");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(root), X509_get_issuer_name(root)), 0);

  EXPECT_EQ(X509_check_ca(root), 1);
  EXPECT_EQ(X509_get_pathlen(root), 0);
  EXPECT_TRUE(ExtensionCritical(root, NID_basic_constraints));
  EXPECT_TRUE(ExtensionCritical(root, NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(root), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  ASSERT_NE(X509_get0_subject_key_id(root), nullptr);

  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(root));
  ASSERT_EQ(EVP_PKEY_id(key.get()), EVP_PKEY_EC);
  EXPECT_EQ(EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key.get()))),
            NID_X9_62_prime256v1);
  EXPECT_EQ(X509_get_signature_nid(root), NID_ecdsa_with_SHA256);

  bssl::UniquePtr<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(root), nullptr));
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_GT(BN_num_bits(serial.get()), 100u);
  EXPECT_LE(BN_num_bits(serial.get()), 128u);

  long ten_years = 3650 * kDay;
  EXPECT_NEAR(SecondsFromNow(X509_get0_notAfter(root)), ten_years, 120);
  EXPECT_LE(SecondsFromNow(X509_get0_notBefore(root)), 0);
}

TEST_F(AuthorityTest, FingerprintIsUpperHexSha256OfTheDer) {
  auto der = CertToDer(ca_->root());
  ASSERT_TRUE(der);
  uint8_t digest[32];
  SHA256(reinterpret_cast<const uint8_t*>(der->data()), der->size(), digest);
  std::string expected;
  char part[4];
  for (int i = 0; i < 32; ++i) {
    snprintf(part, sizeof(part), i ? ":%02X" : "%02X", digest[i]);
    expected += part;
  }
  EXPECT_EQ(ca_->root_fingerprint_sha256(), expected);
  EXPECT_EQ(ca_->root_fingerprint_sha256().size(), 32u * 3 - 1);
}

TEST_F(AuthorityTest, ReloadFromDiskGivesTheSameRoot) {
  auto again = Authority::LoadOrCreate(dir_.File("conf"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ((*again)->root_fingerprint_sha256(), ca_->root_fingerprint_sha256());
  EXPECT_EQ((*again)->root_pem(), ca_->root_pem());
  // A leaf from the reloaded authority verifies against the first one's root.
  auto leaf = (*again)->LeafFor({.host = "example.com"});
  ASSERT_TRUE(leaf) << leaf.error().message;
  EXPECT_EQ(VerifyLeaf(*ca_, **leaf, {.host = "example.com"}), X509_V_OK);
}

TEST_F(AuthorityTest, EveryInstallGetsItsOwnRoot) {
  auto other = Authority::LoadOrCreate(dir_.File("other"));
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_NE((*other)->root_fingerprint_sha256(), ca_->root_fingerprint_sha256());
  EXPECT_NE(SubjectCn((*other)->root()), SubjectCn(ca_->root()));
}

TEST_F(AuthorityTest, LeafVerifiesForDnsName) {
  auto leaf = Mint({.sni = "www.example.com", .host = "www.example.com"});
  ASSERT_TRUE(leaf);
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.host = "www.example.com"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.host = "WWW.Example.COM"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.host = "other.example.com"}), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(AuthorityTest, LeafVerifiesForIpv4AndIpv6Literals) {
  auto v4 = Mint({.host = "127.0.0.1"});
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->ip_names, std::vector<std::string>{"127.0.0.1"});
  EXPECT_TRUE(v4->dns_names.empty());
  EXPECT_EQ(VerifyLeaf(*ca_, *v4, {.ip = "127.0.0.1"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *v4, {.ip = "127.0.0.2"}), X509_V_ERR_IP_ADDRESS_MISMATCH);
  EXPECT_EQ(VerifyLeaf(*ca_, *v4, {.host = "127.0.0.1"}), X509_V_ERR_HOSTNAME_MISMATCH);

  auto v6 = Mint({.host = "[::1]"});
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->ip_names, std::vector<std::string>{"::1"});
  EXPECT_EQ(VerifyLeaf(*ca_, *v6, {.ip = "::1"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *v6, {.ip = "0:0:0:0:0:0:0:1"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *v6, {.ip = "::2"}), X509_V_ERR_IP_ADDRESS_MISMATCH);
}

TEST_F(AuthorityTest, LeafCopiesWildcardUpstreamSan) {
  auto leaf = Mint({.sni = "a.example.com",
                    .host = "a.example.com",
                    .upstream_cn = "*.example.com",
                    .upstream_dns = {"*.example.com", "example.com"}});
  ASSERT_TRUE(leaf);
  EXPECT_EQ(leaf->dns_names,
            (std::vector<std::string>{"*.example.com", "example.com", "a.example.com"}));
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.host = "b.example.com"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.host = "example.com"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.host = "a.b.example.com"}), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(AuthorityTest, SansAreDeduplicatedAndIpsNeverBecomeDnsNames) {
  auto leaf =
      Mint({.sni = "Example.COM.",
            .host = "example.com",
            .upstream_cn = "EXAMPLE.com",
            .upstream_dns = {"example.com", "www.example.com", "10.0.0.1", "WWW.example.com"},
            .upstream_ips = {"10.0.0.1", "2001:db8::1", "2001:DB8:0::1"}});
  ASSERT_TRUE(leaf);
  EXPECT_EQ(leaf->dns_names, (std::vector<std::string>{"example.com", "www.example.com"}));
  EXPECT_EQ(leaf->ip_names, (std::vector<std::string>{"10.0.0.1", "2001:db8::1"}));

  auto cert = ParseBuffer(leaf->chain[0].get());
  bssl::UniquePtr<GENERAL_NAMES> sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_TRUE(sans);
  int dns = 0, ips = 0;
  for (const GENERAL_NAME* gn : sans.get()) {
    if (gn->type == GEN_DNS) ++dns;
    if (gn->type == GEN_IPADD) ++ips;
  }
  EXPECT_EQ(dns, 2);
  EXPECT_EQ(ips, 2);
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.ip = "10.0.0.1"}), X509_V_OK);
  EXPECT_EQ(VerifyLeaf(*ca_, *leaf, {.ip = "2001:db8::1"}), X509_V_OK);
}

TEST_F(AuthorityTest, CommonNameIsTheFirstShortDnsName) {
  auto leaf =
      Mint({.sni = "api.example.com", .host = "api.example.com", .upstream_cn = "example.com"});
  ASSERT_TRUE(leaf);
  EXPECT_EQ(SubjectCn(ParseBuffer(leaf->chain[0].get()).get()), "example.com");

  std::string long_name = std::string(60, 'a') + ".example.com";  // 72 characters
  auto long_leaf = Mint({.sni = long_name, .host = long_name});
  ASSERT_TRUE(long_leaf);
  EXPECT_EQ(SubjectCn(ParseBuffer(long_leaf->chain[0].get()).get()), "");
  EXPECT_EQ(VerifyLeaf(*ca_, *long_leaf, {.host = long_name}), X509_V_OK);

  std::string name63 = std::string(51, 'b') + ".example.com";  // 63 characters
  auto leaf63 = Mint({.host = name63});
  ASSERT_TRUE(leaf63);
  EXPECT_EQ(SubjectCn(ParseBuffer(leaf63->chain[0].get()).get()), name63);
}

TEST_F(AuthorityTest, LeafProfile) {
  auto leaf = Mint({.sni = "example.com", .host = "example.com"});
  ASSERT_TRUE(leaf);
  ASSERT_EQ(leaf->chain.size(), 2u);
  auto cert = ParseBuffer(leaf->chain[0].get());
  ASSERT_TRUE(cert);

  auto root_der = CertToDer(ca_->root());
  ASSERT_TRUE(root_der);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(CRYPTO_BUFFER_data(leaf->chain[1].get())),
                        CRYPTO_BUFFER_len(leaf->chain[1].get())),
            *root_der);

  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER,
            static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_TRUE(ExtensionCritical(cert.get(), NID_key_usage));
  EXPECT_FALSE(ExtensionCritical(cert.get(), NID_basic_constraints));

  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(cert.get());
  const ASN1_OCTET_STRING* root_skid = X509_get0_subject_key_id(ca_->root());
  ASSERT_TRUE(akid && root_skid);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(akid, root_skid), 0);
  ASSERT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  EXPECT_NE(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(cert.get()), root_skid), 0);

  // The leaf key is the run's shared key, not the root's, and it matches the certificate.
  EXPECT_EQ(X509_check_private_key(cert.get(), leaf->key.get()), 1);
  bssl::UniquePtr<EVP_PKEY> root_pub(X509_get_pubkey(ca_->root()));
  EXPECT_NE(EVP_PKEY_cmp(root_pub.get(), leaf->key.get()), 1);
  EXPECT_EQ(EVP_PKEY_id(leaf->key.get()), EVP_PKEY_EC);
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);
}

TEST_F(AuthorityTest, ValidityIsBackdatedAndShort) {
  auto leaf = Mint({.host = "example.com"});
  ASSERT_TRUE(leaf);
  auto cert = ParseBuffer(leaf->chain[0].get());
  EXPECT_NEAR(SecondsFromNow(X509_get0_notBefore(cert.get())), -2 * kDay, 120);
  EXPECT_NEAR(SecondsFromNow(X509_get0_notAfter(cert.get())), 365 * kDay, 120);
  EXPECT_LE(SecondsFromNow(X509_get0_notAfter(cert.get())), 397 * kDay);
}

TEST_F(AuthorityTest, LeavesHaveDistinctSerialsAndShareTheKey) {
  std::set<std::string> serials;
  const EVP_PKEY* key = nullptr;
  for (int i = 0; i < 20; ++i) {
    auto leaf = Mint({.host = "host" + std::to_string(i) + ".test"});
    ASSERT_TRUE(leaf);
    auto cert = ParseBuffer(leaf->chain[0].get());
    serials.insert(SerialHex(cert.get()));
    if (key == nullptr) key = leaf->key.get();
    EXPECT_EQ(leaf->key.get(), key);
  }
  EXPECT_EQ(serials.size(), 20u);
}

TEST_F(AuthorityTest, CacheReturnsTheSameLeafAndCounts) {
  EXPECT_EQ(ca_->cache_stats().size, 0u);
  auto first =
      Mint({.sni = "example.com", .host = "example.com", .upstream_dns = {"www.example.com"}});
  CacheStats after_miss = ca_->cache_stats();
  EXPECT_EQ(after_miss.misses, 1u);
  EXPECT_EQ(after_miss.hits, 0u);
  EXPECT_EQ(after_miss.size, 1u);

  // Same name set in another order and case: a hit.
  auto second =
      Mint({.sni = "WWW.example.com", .host = "www.example.com", .upstream_cn = "example.com"});
  EXPECT_EQ(first.get(), second.get());
  CacheStats after_hit = ca_->cache_stats();
  EXPECT_EQ(after_hit.hits, 1u);
  EXPECT_EQ(after_hit.misses, 1u);

  auto third = Mint({.host = "other.example.com"});
  EXPECT_NE(third.get(), first.get());
  EXPECT_EQ(ca_->cache_stats().misses, 2u);
  EXPECT_EQ(ca_->cache_stats().size, 2u);
}

TEST_F(AuthorityTest, ConcurrentLeafForFromSeveralThreads) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 50;
  constexpr int kHosts = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        std::string host = "h" + std::to_string((i + t) % kHosts) + ".test";
        auto leaf = ca_->LeafFor({.host = host});
        if (!leaf || VerifyLeaf(*ca_, **leaf, {.host = host}) != X509_V_OK) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  CacheStats stats = ca_->cache_stats();
  EXPECT_EQ(stats.hits + stats.misses, static_cast<uint64_t>(kThreads * kCalls));
  EXPECT_EQ(stats.size, static_cast<size_t>(kHosts));
}

TEST_F(AuthorityTest, RefusesASpecWithoutNames) {
  auto leaf = ca_->LeafFor({.sni = "", .host = "bad name with spaces"});
  ASSERT_FALSE(leaf);
  EXPECT_NE(leaf.error().message.find("no usable host name"), std::string::npos);
}

class AuthorityFilesTest : public ::testing::Test {
 protected:
  std::string Conf() const { return dir_.File("conf"); }
  std::string CertPath() const { return dir_.File("conf/mitmd-ca.pem"); }
  std::string KeyPath() const { return dir_.File("conf/mitmd-ca-key.pem"); }
  TempDir dir_;
};

TEST_F(AuthorityFilesTest, MismatchedKeyIsRefusedNamingTheFiles) {
  ASSERT_TRUE(Authority::LoadOrCreate(Conf()));
  ASSERT_TRUE(Authority::LoadOrCreate(dir_.File("other")));
  ::mitmd::testing::WriteFile(KeyPath(),
                              ::mitmd::testing::ReadFile(dir_.File("other/mitmd-ca-key.pem")));
  auto ca = Authority::LoadOrCreate(Conf());
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find(KeyPath() + " is not the private key of " + CertPath()),
            std::string::npos)
      << ca.error().message;
}

TEST_F(AuthorityFilesTest, CorruptCertificateIsRefusedNamingTheFile) {
  ASSERT_TRUE(Authority::LoadOrCreate(Conf()));
  ::mitmd::testing::WriteFile(
      CertPath(), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
  auto ca = Authority::LoadOrCreate(Conf());
  ASSERT_FALSE(ca);
  EXPECT_TRUE(ca.error().message.starts_with(CertPath() + ": ")) << ca.error().message;
}

TEST_F(AuthorityFilesTest, CorruptKeyIsRefusedNamingTheFile) {
  ASSERT_TRUE(Authority::LoadOrCreate(Conf()));
  ::mitmd::testing::WriteFile(KeyPath(), "garbage\n");
  auto ca = Authority::LoadOrCreate(Conf());
  ASSERT_FALSE(ca);
  EXPECT_TRUE(ca.error().message.starts_with(KeyPath() + ": ")) << ca.error().message;
}

TEST_F(AuthorityFilesTest, OneMissingFileIsAnErrorNotANewRoot) {
  ASSERT_TRUE(Authority::LoadOrCreate(Conf()));
  ASSERT_EQ(unlink(CertPath().c_str()), 0);
  auto ca = Authority::LoadOrCreate(Conf());
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find(KeyPath() + " exists but " + CertPath() + " does not"),
            std::string::npos)
      << ca.error().message;
  EXPECT_EQ(access(CertPath().c_str(), F_OK), -1);
}

TEST_F(AuthorityFilesTest, GroupReadableKeyIsRefusedWithTheChmod) {
  ASSERT_TRUE(Authority::LoadOrCreate(Conf()));
  ASSERT_EQ(chmod(KeyPath().c_str(), 0644), 0);
  auto ca = Authority::LoadOrCreate(Conf());
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find(KeyPath()), std::string::npos) << ca.error().message;
  EXPECT_NE(ca.error().message.find("`chmod 600 " + KeyPath() + "`"), std::string::npos)
      << ca.error().message;
  ASSERT_EQ(chmod(KeyPath().c_str(), 0600), 0);
  EXPECT_TRUE(Authority::LoadOrCreate(Conf()));
}

TEST_F(AuthorityFilesTest, ExistingDirectoryKeepsItsMode) {
  ASSERT_EQ(mkdir(Conf().c_str(), 0750), 0);
  ASSERT_TRUE(Authority::LoadOrCreate(Conf()));
  EXPECT_EQ(ModeOf(Conf()), 0750u);
  EXPECT_EQ(ModeOf(KeyPath()), 0600u);
}

TEST_F(AuthorityFilesTest, CreatesMissingParents) {
  auto ca = Authority::LoadOrCreate(dir_.File("a/b/conf"));
  ASSERT_TRUE(ca) << ca.error().message;
  EXPECT_EQ(ModeOf(dir_.File("a/b/conf")), 0700u);
}

}  // namespace
}  // namespace mitmd::ca
