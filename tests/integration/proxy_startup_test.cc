// What a new user sees: the first run creates a private ~/.mitmd with a root unique to this
// install, prints where it is and its fingerprint, and later runs reuse it; --help and bad
// arguments behave.

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/strings.h"
#include "integration/proxy_fixture.h"

namespace mitmd::testing {
namespace {

using std::chrono::seconds;

// Upper-case hex SHA-256 of the certificate in a PEM file, without separators; "" on failure.
std::string PemFingerprint(const std::string& path) {
  std::string pem = ReadFile(path);
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return "";
  uint8_t* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return "";
  bssl::UniquePtr<uint8_t> owned(der);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  std::string hex = HexEncode(digest, sizeof(digest));
  for (char& c : hex) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return hex;
}

// |text| upper-cased with ':' removed, so "1d:18:..." and "1D18..." compare equal.
std::string Compact(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c != ':') out.push_back(static_cast<char>(toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

mode_t Mode(const std::string& path) {
  struct stat st = {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST_F(ProxyTest, FirstRunCreatesAPrivateConfdirAndPrintsTheRoot) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  options.upstream_ca = ca_files_.cert;
  options.default_confdir = true;
  ASSERT_TRUE(mitmd_.Start(options));

  std::string confdir = mitmd_.home() + "/.mitmd";
  ASSERT_EQ(mitmd_.confdir(), confdir);
  EXPECT_EQ(Mode(confdir), 0700u);
  ASSERT_EQ(Mode(mitmd_.ca_cert_path()) & 0400, 0400u) << "no root at " << mitmd_.ca_cert_path();
  int keys = 0;
  for (const auto& entry : std::filesystem::directory_iterator(confdir)) {
    std::string name = entry.path().filename();
    if (name.find("key") == std::string::npos) continue;
    ++keys;
    EXPECT_EQ(Mode(entry.path()), 0600u) << name << " must be readable by its owner only";
  }
  EXPECT_GE(keys, 1) << "no key file in " << confdir;

  std::string out = mitmd_.StdoutText();
  EXPECT_NE(out.find(mitmd_.ca_cert_path()), std::string::npos) << out;
  std::string fingerprint = PemFingerprint(mitmd_.ca_cert_path());
  ASSERT_EQ(fingerprint.size(), 64u);
  EXPECT_NE(Compact(out).find(fingerprint), std::string::npos)
      << "stdout does not show the root's SHA-256 " << fingerprint << ":\n" << out;

  // The default session log is in the confdir.
  ProcessResult r = mitmd_.Curl({up->Url("/bytes/10", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mitmd_.WaitForFlows(1).size(), 1u);
  EXPECT_EQ(mitmd_.flows_path(), confdir + "/flows.jsonl");

  // A second run keeps the same root.
  ASSERT_EQ(mitmd_.Stop(), 0);
  ASSERT_TRUE(mitmd_.Start(options));
  EXPECT_EQ(PemFingerprint(mitmd_.ca_cert_path()), fingerprint);
  ProcessResult again = mitmd_.Curl({up->Url("/bytes/10", "localhost")});
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST_F(ProxyTest, EachInstallGetsItsOwnRoot) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  MitmdProcess other;
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  ASSERT_TRUE(other.Start(options));
  std::string a = PemFingerprint(mitmd_.ca_cert_path());
  std::string b = PemFingerprint(other.ca_cert_path());
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
  EXPECT_EQ(other.Stop(), 0);
}

TEST(MitmdCli, HelpNamesTheOptions) {
  ProcessResult r = RunProcess({MITMD_BINARY, "--help"}, seconds(10));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* flag : {"--confdir", "--listen", "--upstream-ca", "--flows",
                           "--upstream-allow", "--max-body-record", "--help"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag << " missing from --help";
  }
}

TEST(MitmdCli, BadArgumentsFailWithAMessage) {
  TempDir home;
  ProcessResult r = RunProcess({MITMD_BINARY, "--listen", "not-an-address", "--no-web"},
                               seconds(10), {{"HOME", home.path()}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.err.find("--listen"), std::string::npos) << r.err;
  ProcessResult unknown = RunProcess({MITMD_BINARY, "--no-such-flag"}, seconds(10),
                                     {{"HOME", home.path()}});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("--no-such-flag"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace mitmd::testing
