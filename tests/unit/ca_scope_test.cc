#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <ctime>

#include "ca/keys.h"
#include "ca/root_cert.h"
#include "ca/scope.h"

namespace mitmd::ca {
namespace {

Scope MustParse(std::string_view list) {
  auto scope = Scope::Parse(list);
  EXPECT_TRUE(scope) << scope.error().message;
  return scope ? *scope : Scope();
}

TEST(ScopeTest, UnconstrainedPermitsEverything) {
  Scope scope;
  EXPECT_FALSE(scope.constrained());
  EXPECT_TRUE(scope.Permits("example.com"));
  EXPECT_TRUE(scope.Permits("10.1.2.3"));
  EXPECT_EQ(scope.ToString(), "unconstrained");
}

TEST(ScopeTest, DomainCoversItselfAndNamesBelowIt) {
  Scope scope = MustParse("example.com");
  EXPECT_TRUE(scope.constrained());
  EXPECT_TRUE(scope.Permits("example.com"));
  EXPECT_TRUE(scope.Permits("WWW.Example.com"));
  EXPECT_TRUE(scope.Permits("a.b.example.com."));
  EXPECT_TRUE(scope.Permits("*.example.com"));
  EXPECT_FALSE(scope.Permits("badexample.com"));
  EXPECT_FALSE(scope.Permits("example.com.evil.test"));
  EXPECT_FALSE(scope.Permits("example.org"));
  EXPECT_FALSE(scope.Permits("com"));
  // Addresses are out when the scope names no network.
  EXPECT_FALSE(scope.Permits("127.0.0.1"));
  EXPECT_FALSE(scope.Permits("::1"));
}

TEST(ScopeTest, LeadingDotCoversOnlyNamesBelow) {
  Scope scope = MustParse(" .test , example.com ");
  EXPECT_TRUE(scope.Permits("a.test"));
  EXPECT_TRUE(scope.Permits("x.y.test"));
  EXPECT_FALSE(scope.Permits("test"));
  EXPECT_FALSE(scope.Permits("atest"));
  EXPECT_TRUE(scope.Permits("example.com"));
}

TEST(ScopeTest, NetworksCoverTheirAddressesOnly) {
  Scope scope = MustParse("127.0.0.0/8,::1,10.1.0.0/16");
  EXPECT_TRUE(scope.Permits("127.0.0.1"));
  EXPECT_TRUE(scope.Permits("127.255.1.2"));
  EXPECT_TRUE(scope.Permits("10.1.200.3"));
  EXPECT_FALSE(scope.Permits("10.2.0.1"));
  EXPECT_TRUE(scope.Permits("::1"));
  EXPECT_TRUE(scope.Permits("[::1]"));
  EXPECT_FALSE(scope.Permits("::2"));
  // Names are out when the scope names no domain.
  EXPECT_FALSE(scope.Permits("localhost"));
  EXPECT_EQ(scope.permitted_ips().size(), 3u);
  EXPECT_EQ(scope.permitted_ips()[0].ToString(), "127.0.0.0/8");
  EXPECT_EQ(scope.permitted_ips()[1].ToString(), "::1/128");
}

TEST(ScopeTest, NetworkAddressIsMasked) {
  Scope scope = MustParse("192.168.1.77/24");
  EXPECT_EQ(scope.permitted_ips()[0].ToString(), "192.168.1.0/24");
  EXPECT_TRUE(scope.Permits("192.168.1.1"));
}

TEST(ScopeTest, RejectsWhatIsNeitherDomainNorNetwork) {
  for (std::string_view bad : {"", " , ", "not a domain", "*.example.com", "10.0.0.0/33", "::/129",
                               "10.0.0.0/x", "300.1.1.1/8", "."}) {
    auto scope = Scope::Parse(bad);
    EXPECT_FALSE(scope) << "'" << bad << "' was accepted";
    if (!scope) {
      EXPECT_TRUE(scope.error().message.starts_with("--scope: ")) << scope.error().message;
    }
  }
}

TEST(ScopeTest, RoundTripsThroughARootCertificate) {
  Scope scope = MustParse("example.com,.test,127.0.0.1");
  auto constraints = scope.ToNameConstraints();
  ASSERT_TRUE(constraints) << constraints.error().message;
  auto key = GenerateKey(KeyType::kEcdsaP256);
  ASSERT_TRUE(key);
  auto cert = MintRoot(key->get(), RootSpec{"abcd0123", constraints->get()}, time(nullptr));
  ASSERT_TRUE(cert) << cert.error().message;

  int critical = -1;
  bssl::UniquePtr<NAME_CONSTRAINTS> nc(static_cast<NAME_CONSTRAINTS*>(
      X509_get_ext_d2i(cert->get(), NID_name_constraints, &critical, nullptr)));
  ASSERT_TRUE(nc);
  EXPECT_EQ(critical, 1);

  auto read = Scope::Of(cert->get());
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_TRUE(read->constrained());
  EXPECT_EQ(read->ToString(), scope.ToString());
  EXPECT_EQ(read->ToString(), "permitted: example.com, .test, 127.0.0.1/32");
  for (std::string_view host : {"example.com", "a.example.com", "a.test", "127.0.0.1"}) {
    EXPECT_TRUE(read->Permits(host)) << host;
  }
  for (std::string_view host : {"test", "example.org", "127.0.0.2", "::1"}) {
    EXPECT_FALSE(read->Permits(host)) << host;
  }
}

TEST(ScopeTest, DomainOnlyScopeExcludesAllAddressesInTheCertificate) {
  Scope scope = MustParse("example.com");
  EXPECT_EQ(scope.ToString(), "permitted: example.com; excluded: 0.0.0.0/0, ::/0");
  Scope networks = MustParse("10.0.0.0/8");
  EXPECT_EQ(networks.ToString(), "permitted: 10.0.0.0/8; excluded: (all names)");
}

TEST(ScopeTest, RootWithoutConstraintsIsUnconstrained) {
  auto key = GenerateKey(KeyType::kEcdsaP256);
  ASSERT_TRUE(key);
  auto cert = MintRoot(key->get(), RootSpec{"abcd0123", nullptr}, time(nullptr));
  ASSERT_TRUE(cert);
  auto read = Scope::Of(cert->get());
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->constrained());
}

}  // namespace
}  // namespace mitmd::ca
