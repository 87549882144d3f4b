#include <gtest/gtest.h>
#include <openssl/pkcs8.h>
#include <openssl/x509.h>
#include <unistd.h>

#include "ca/authority.h"
#include "ca/export.h"
#include "ca/x509_util.h"
#include "support/temp_dir.h"
#include "unit/ca_test_util.h"

namespace mitmd::ca {
namespace {

using ::mitmd::ca::testing::CommandResult;
using ::mitmd::ca::testing::kOpenSsl;
using ::mitmd::ca::testing::RunCommand;
using ::mitmd::testing::TempDir;
using ::mitmd::testing::WriteFile;

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = Authority::LoadOrCreate(dir_.File("conf"));
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
  }

  ExportedRoot Export(ExportFormat format) {
    auto out = ExportRoot(ca_->root(), format);
    EXPECT_TRUE(out) << out.error().message;
    return out ? *out : ExportedRoot{};
  }

  TempDir dir_;
  std::unique_ptr<Authority> ca_;
};

TEST(ExportFormatTest, ParsesNamesAndRefusesOthers) {
  EXPECT_EQ(ParseExportFormat("pem").value(), ExportFormat::kPem);
  EXPECT_EQ(ParseExportFormat("der").value(), ExportFormat::kDer);
  EXPECT_EQ(ParseExportFormat("cer").value(), ExportFormat::kDer);
  EXPECT_EQ(ParseExportFormat("p12").value(), ExportFormat::kP12);
  EXPECT_EQ(ParseExportFormat("android").value(), ExportFormat::kAndroid);
  auto bad = ParseExportFormat("jks");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("use pem, der, p12 or android"), std::string::npos);
}

TEST_F(ExportTest, PemAndDerAreTheRoot) {
  ExportedRoot pem = Export(ExportFormat::kPem);
  EXPECT_EQ(pem.file_name, "mitmd-ca.pem");
  EXPECT_FALSE(pem.binary);
  EXPECT_EQ(pem.content, ca_->root_pem());
  EXPECT_EQ(pem.content.find("PRIVATE"), std::string::npos);

  ExportedRoot der = Export(ExportFormat::kDer);
  EXPECT_EQ(der.file_name, "mitmd-ca.cer");
  EXPECT_TRUE(der.binary);
  EXPECT_EQ(der.content, CertToDer(ca_->root()).value());
}

TEST_F(ExportTest, P12HoldsTheCertificateAndNoKey) {
  ExportedRoot p12 = Export(ExportFormat::kP12);
  EXPECT_EQ(p12.file_name, "mitmd-ca.p12");
  const uint8_t* der = reinterpret_cast<const uint8_t*>(p12.content.data());
  bssl::UniquePtr<PKCS12> parsed(d2i_PKCS12(nullptr, &der, p12.content.size()));
  ASSERT_TRUE(parsed);
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* extra = nullptr;
  ASSERT_TRUE(PKCS12_parse(parsed.get(), "", &key, &cert, &extra)) << SslErrors();
  bssl::UniquePtr<EVP_PKEY> owned_key(key);
  bssl::UniquePtr<X509> owned_cert(cert);
  bssl::UniquePtr<STACK_OF(X509)> owned_extra(extra);
  EXPECT_EQ(key, nullptr);
  // Without a key, BoringSSL returns every certificate in |extra|.
  EXPECT_EQ(cert, nullptr);
  ASSERT_NE(extra, nullptr);
  ASSERT_EQ(sk_X509_num(extra), 1u);
  EXPECT_EQ(X509_cmp(sk_X509_value(extra, 0), ca_->root()), 0);

  if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
  WriteFile(dir_.File("root.p12"), p12.content);
  CommandResult r = RunCommand(std::string(kOpenSsl) + " pkcs12 -in " + dir_.File("root.p12") +
                               " -passin pass: -nokeys -info");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("BEGIN CERTIFICATE"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Shrouded Keybag"), std::string::npos) << r.output;
}

TEST_F(ExportTest, AndroidNameMatchesOpenSslSubjectHashOld) {
  ExportedRoot android = Export(ExportFormat::kAndroid);
  EXPECT_EQ(android.content, ca_->root_pem());
  EXPECT_EQ(android.file_name, AndroidFileName(ca_->root()));
  ASSERT_EQ(android.file_name.size(), 10u);
  EXPECT_TRUE(android.file_name.ends_with(".0"));

  if (access(kOpenSsl, X_OK) != 0) GTEST_SKIP() << kOpenSsl << " is not installed";
  CommandResult r = RunCommand(std::string(kOpenSsl) + " x509 -noout -subject_hash_old -in " +
                               ca_->root_cert_path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, android.file_name.substr(0, 8) + "\n");
}

}  // namespace
}  // namespace mitmd::ca
