// --cert [DOMAIN=]PATH: the option loads and checks the PEM at start-up (every refusal names the
// file), and the lookup picks exact, then wildcard, then catch-all certificates.

#include "ca/server_certs.h"

#include <gtest/gtest.h>
#include <openssl/mem.h>
#include <openssl/pool.h>
#include <openssl/x509.h>

#include "config/options.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"

namespace mitmd::ca {
namespace {

using ::mitmd::testing::TempDir;
using ::mitmd::testing::TestCa;
using ::mitmd::testing::TestCert;
using ::mitmd::testing::WriteFile;
using LeafSpec = ::mitmd::testing::LeafSpec;

class ServerCertsTest : public ::testing::Test {
 protected:
  // Writes |cert|'s chain (then |ca|'s root) and key into one PEM; returns its path.
  std::string Pem(const std::string& name, const TestCert& cert, bool with_key = true,
                  const TestCert* key_of = nullptr) {
    std::string path = dir_.File(name + ".pem");
    std::string text = (key_of ? key_of : &cert)->KeyPem();
    if (!with_key) text.clear();
    // The key first: the certificates' order matters, the key's place does not.
    WriteFile(path, text + cert.CertPem() + ca_.root().CertPem());
    return path;
  }

  // The SHA-256 of the first certificate of |leaf|, to tell certificates apart.
  static std::string FirstDer(const std::shared_ptr<const Leaf>& leaf) {
    if (!leaf) return "none";
    const CRYPTO_BUFFER* b = leaf->chain.front().get();
    return std::string(reinterpret_cast<const char*>(CRYPTO_BUFFER_data(b)),
                       CRYPTO_BUFFER_len(b));
  }
  static std::string Der(const TestCert& cert) {
    uint8_t* der = nullptr;
    int len = i2d_X509(cert.cert(), &der);
    std::string out(reinterpret_cast<const char*>(der), len);
    OPENSSL_free(der);
    return out;
  }

  TempDir dir_;
  TestCa ca_;
};

TEST_F(ServerCertsTest, LoadsChainAndKeyAndMatchesMostSpecificFirst) {
  TestCert exact = ca_.Issue(LeafSpec::OnlyFor("api.example.com"));
  TestCert wild = ca_.Issue(LeafSpec::OnlyFor("*.example.com"));
  TestCert any = ca_.Issue(LeafSpec::Localhost());
  std::vector<ServerCert> certs;
  // The catch-all and the wildcard come first: order does not beat specificity.
  for (std::string spec : {Pem("any", any), "*.EXAMPLE.com=" + Pem("wild", wild),
                           "api.example.com=" + Pem("exact", exact)}) {
    auto c = LoadServerCert(spec, time(nullptr));
    ASSERT_TRUE(c) << c.error().message;
    certs.push_back(std::move(*c));
  }
  ASSERT_EQ(certs[1].leaf->chain.size(), 2u) << "the leaf, then the chain after it";
  EXPECT_EQ(certs[1].domain, "*.example.com");
  EXPECT_TRUE(certs[1].leaf->key);
  EXPECT_EQ(FirstDer(FindServerCert(certs, "api.example.com")), Der(exact));
  EXPECT_EQ(FirstDer(FindServerCert(certs, "API.Example.COM")), Der(exact));
  EXPECT_EQ(FirstDer(FindServerCert(certs, "www.example.com")), Der(wild));
  EXPECT_EQ(FirstDer(FindServerCert(certs, "a.b.example.com")), Der(any)) << "one label only";
  EXPECT_EQ(FirstDer(FindServerCert(certs, "example.com")), Der(any));
  EXPECT_EQ(FirstDer(FindServerCert(certs, "other.test")), Der(any));

  certs.erase(certs.begin());  // without a catch-all, other names are minted
  EXPECT_EQ(FindServerCert(certs, "other.test"), nullptr);
  EXPECT_EQ(FindServerCert(certs, "example.com"), nullptr);
  EXPECT_EQ(FindServerCert({}, "api.example.com"), nullptr);
  auto star = LoadServerCert("*=" + Pem("any", any), time(nullptr));
  ASSERT_TRUE(star) << star.error().message;
  EXPECT_EQ(star->domain, "") << "'*' is mitmproxy's spelling of any name";
}

TEST_F(ServerCertsTest, TheOptionRefusesBadFilesNamingThem) {
  TestCert good = ca_.Issue(LeafSpec::Localhost());
  TestCert other = ca_.Issue(LeafSpec::Localhost());
  TestCert expired = ca_.Issue(LeafSpec::ExpiredLocalhost());
  LeafSpec future_spec = LeafSpec::Localhost();
  future_spec.not_before = time(nullptr) + 86400;
  future_spec.not_after = time(nullptr) + 2 * 86400;
  TestCert future = ca_.Issue(future_spec);
  auto refusal = [](std::string value) {
    auto inv = ParseArgs({"--cert", value}, "/home/u");
    return inv ? std::string("accepted") : inv.error().message;
  };
  std::string missing = dir_.File("missing.pem");
  std::string no_key = Pem("nokey", good, false);
  std::string mismatch = Pem("mismatch", good, true, &other);
  std::string old = Pem("expired", expired);
  std::string early = Pem("future", future);
  std::string key_only = dir_.File("keyonly.pem");
  WriteFile(key_only, good.KeyPem());
  struct Case {
    std::string value, file, words;
  } cases[] = {
      {missing, missing, "cannot read"},
      {"example.com=" + missing, missing, "cannot read"},
      {no_key, no_key, "private key"},
      {key_only, key_only, "no PEM certificate"},
      {mismatch, mismatch, "does not belong"},
      {old, old, "expired"},
      {early, early, "not valid yet"},
      {"=" + no_key, "", "DOMAIN=PATH"},
  };
  for (const Case& c : cases) {
    std::string message = refusal(c.value);
    EXPECT_TRUE(message.starts_with("--cert: ")) << c.value << ": " << message;
    EXPECT_NE(message.find(c.file), std::string::npos) << c.value << ": " << message;
    EXPECT_NE(message.find(c.words), std::string::npos) << c.value << ": " << message;
  }
  auto inv = ParseArgs({"--cert", "localhost=" + Pem("good", good), "--cert", Pem("good2", good)},
                       "/home/u");
  ASSERT_TRUE(inv) << inv.error().message;
  ASSERT_EQ(inv->config.server_certs.size(), 2u);
  EXPECT_EQ(inv->config.server_certs[0].domain, "localhost");
  EXPECT_EQ(inv->config.server_certs[1].domain, "");
  EXPECT_EQ(inv->config.server_certs[1].path, dir_.File("good2.pem"));
}

}  // namespace
}  // namespace mitmd::ca
