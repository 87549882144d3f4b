// Upstream certificate verification, without sockets: chains made by the test PKI are checked
// the way the upstream handshake checks them.

#include <gtest/gtest.h>
#include <openssl/pool.h>
#include <openssl/x509.h>

#include "proxy/upstream_tls.h"
#include "support/test_pki.h"

namespace mitmd::proxy {
namespace {

using testing::LeafSpec;
using testing::TestCa;
using testing::TestCert;

bssl::UniquePtr<CRYPTO_BUFFER> ToBuffer(X509* cert) {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  bssl::UniquePtr<CRYPTO_BUFFER> buf(CRYPTO_BUFFER_new(der, static_cast<size_t>(len), nullptr));
  OPENSSL_free(der);
  return buf;
}

class VerifyTest : public ::testing::Test {
 protected:
  VerifyTest() : store_(X509_STORE_new()) { X509_STORE_add_cert(store_.get(), ca_.root().cert()); }

  UpstreamVerification Verify(const TestCert& leaf, const std::string& host) {
    bssl::UniquePtr<STACK_OF(CRYPTO_BUFFER)> chain(sk_CRYPTO_BUFFER_new_null());
    sk_CRYPTO_BUFFER_push(chain.get(), ToBuffer(leaf.cert()).release());
    UpstreamVerification v;
    v.host = host;
    VerifyServerChain(store_.get(), chain.get(), &v);
    return v;
  }

  TestCa ca_;
  bssl::UniquePtr<X509_STORE> store_;
};

TEST_F(VerifyTest, AcceptsAValidLeafByNameAndIp) {
  TestCert leaf = ca_.Issue(LeafSpec::Localhost());
  for (const char* host : {"localhost", "127.0.0.1", "::1"}) {
    UpstreamVerification v = Verify(leaf, host);
    EXPECT_TRUE(v.ok) << host << ": " << v.message;
    ASSERT_TRUE(v.cert);
    EXPECT_TRUE(v.cert->verified);
    EXPECT_EQ(v.cert->sha256, leaf.Sha256Hex());
    EXPECT_EQ(v.cert->subject, "CN=localhost,O=mitmd tests");
    EXPECT_NE(v.cert->issuer.find("CN=mitmd test CA"), std::string::npos);
    EXPECT_EQ(v.cert->sans, (std::vector<std::string>{"DNS:localhost", "IP:127.0.0.1", "IP:::1"}));
  }
}

TEST_F(VerifyTest, ExpiredSaysWhen) {
  UpstreamVerification v = Verify(ca_.Issue(LeafSpec::ExpiredLocalhost()), "localhost");
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.message, "upstream certificate has expired (notAfter 2020-01-01)");
  ASSERT_TRUE(v.cert);
  EXPECT_FALSE(v.cert->verified);
  EXPECT_EQ(v.cert->verify_error, v.message);
}

TEST_F(VerifyTest, WrongHostNamesWhatTheCertificateCovers) {
  UpstreamVerification v = Verify(ca_.Issue(LeafSpec::OnlyFor("other.test")), "localhost");
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.message.find("does not match host 'localhost'"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("DNS:other.test"), std::string::npos) << v.message;
  UpstreamVerification ip = Verify(ca_.Issue(LeafSpec::OnlyFor("other.test")), "127.0.0.1");
  EXPECT_NE(ip.message.find("does not match host '127.0.0.1'"), std::string::npos) << ip.message;
}

TEST_F(VerifyTest, SelfSignedAndUnknownAuthority) {
  UpstreamVerification self = Verify(testing::MakeSelfSigned(LeafSpec::Localhost()), "localhost");
  EXPECT_FALSE(self.ok);
  EXPECT_NE(self.message.find("self-signed"), std::string::npos) << self.message;
  TestCa stranger("stranger CA");
  UpstreamVerification unknown = Verify(stranger.Issue(LeafSpec::Localhost()), "localhost");
  EXPECT_FALSE(unknown.ok);
  EXPECT_NE(unknown.message.find("unknown authority (issuer CN=stranger CA"), std::string::npos)
      << unknown.message;
  EXPECT_NE(unknown.message.find("--upstream-ca"), std::string::npos);
}

TEST_F(VerifyTest, NoCertificateAtAll) {
  UpstreamVerification v;
  v.host = "localhost";
  VerifyServerChain(store_.get(), nullptr, &v);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.message, "the upstream server sent no certificate");
}

}  // namespace
}  // namespace mitmd::proxy
