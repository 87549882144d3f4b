#pragma once
// Test certificates made in-process with BoringSSL: a test CA, leaves it issues (valid, expired,
// for the wrong host), self-signed leaves, and leaves from a CA nobody trusts. All keys are
// ECDSA P-256. Failures inside BoringSSL are impossible in a working test environment, so they
// throw std::runtime_error (which fails the test that asked).

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctime>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace mitmd::testing {

// Paths of a certificate and its key written as PEM.
struct CertFiles {
  std::string cert;
  std::string key;
};

// What a leaf certificate says about itself.
struct LeafSpec {
  std::string common_name = "mitmd test leaf";
  std::vector<std::string> dns_names;  // subjectAltName DNS entries
  std::vector<std::string> ips;        // subjectAltName IP entries ("127.0.0.1", "::1")
  time_t not_before = 0;               // 0: one day ago
  time_t not_after = 0;                // 0: thirty days from now
  bool client_auth = false;            // also clientAuth EKU (a client certificate for mTLS)

  // A leaf for localhost, 127.0.0.1 and ::1, valid now.
  static LeafSpec Localhost();
  // Same names, but notBefore 2019-01-01 and notAfter 2020-01-01.
  static LeafSpec ExpiredLocalhost();
  // Valid now, but only for |dns_name| (no IP SANs).
  static LeafSpec OnlyFor(const std::string& dns_name);
};

// A UTC calendar time as time_t, e.g. Utc(2020, 1, 1).
time_t Utc(int year, int month, int day);

// A certificate with its private key.
class TestCert {
 public:
  TestCert(bssl::UniquePtr<X509> cert, bssl::UniquePtr<EVP_PKEY> key);
  TestCert(TestCert&&) = default;
  TestCert& operator=(TestCert&&) = default;

  std::string CertPem() const;
  std::string KeyPem() const;  // PKCS#8
  // Writes <dir>/<name>.pem and <dir>/<name>-key.pem.
  CertFiles Write(const TempDir& dir, const std::string& name) const;
  // Lower-case hex SHA-256 of the DER certificate.
  std::string Sha256Hex() const;

  X509* cert() const { return cert_.get(); }
  EVP_PKEY* key() const { return key_.get(); }

 private:
  bssl::UniquePtr<X509> cert_;
  bssl::UniquePtr<EVP_PKEY> key_;
};

// A self-signed root that issues leaves.
class TestCa {
 public:
  explicit TestCa(const std::string& common_name = "mitmd test CA");

  const TestCert& root() const { return root_; }
  // A leaf signed by this CA (serverAuth EKU, SANs from |spec|).
  TestCert Issue(const LeafSpec& spec) const;

 private:
  TestCert root_;
};

// A leaf that signs itself (not a CA), e.g. for the "self-signed" upstream failure.
TestCert MakeSelfSigned(const LeafSpec& spec);

}  // namespace mitmd::testing
