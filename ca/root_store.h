#pragma once
// The root on disk: <confdir>/mitmd-ca.pem (certificate) and <confdir>/mitmd-ca-key.pem (key).
// Loading validates the pair; creating never leaves the key readable by anyone but the owner.

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/pool.h>
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "ca/keys.h"
#include "ca/scope.h"
#include "core/result.h"

namespace mitmd::ca {

inline constexpr char kRootCertFile[] = "mitmd-ca.pem";
inline constexpr char kRootKeyFile[] = "mitmd-ca-key.pem";

struct RootPaths {
  std::string cert;
  std::string key;
};

// <confdir>/mitmd-ca.pem and <confdir>/mitmd-ca-key.pem.
RootPaths DefaultRootPaths(const std::string& confdir);

// A validated root: the certificate, its private key, and what leaves need from it.
struct Root {
  bssl::UniquePtr<X509> cert;
  bssl::UniquePtr<EVP_PKEY> key;
  bssl::UniquePtr<CRYPTO_BUFFER> der;  // the certificate, for leaf chains
  std::vector<uint8_t> key_id;         // subject key identifier, the leaves' authority key id
  time_t not_after = 0;
  std::string pem;
  std::string fingerprint_sha256;  // "AB:CD:..."
  Scope scope;                     // from the certificate's name constraints
};

// A new root as PEM text, not yet written anywhere.
struct RootFiles {
  std::string cert_pem;
  std::string key_pem;
};

// Validates a certificate/key pair given as PEM text: the key must be usable, match the
// certificate, and the certificate must be a CA. |cert_name|/|key_name| name the sources in errors.
Result<Root> RootFromPem(std::string_view cert_pem, std::string_view key_pem,
                         const std::string& cert_name, const std::string& key_name);

// Reads and validates the pair at |paths|. Refuses a key file that group or others can access,
// with the chmod that fixes it.
Result<Root> LoadRoot(const RootPaths& paths);

// Creates |dir| (mode 0700) when missing, with its parents.
Status EnsurePrivateDir(const std::string& dir);

// Writes |cert_pem| and |key_pem| to |paths|: the key through a file created O_EXCL with mode
// 0600, each file fsync'd and renamed into place without replacing an existing file.
Status WriteRootFiles(const RootPaths& paths, const std::string& cert_pem,
                      const std::string& key_pem);

// A new root of |type| (see MintRoot), constrained to |scope|.
Result<RootFiles> NewRootFiles(KeyType type, const Scope& scope);

// Makes a new root (see NewRootFiles) and writes it to |paths|, which must not exist.
Result<Root> CreateRoot(const RootPaths& paths, KeyType type, const Scope& scope);

// Renames the files at |paths| to "<path>.<UTC time>.bak" (the key keeps its mode) and returns
// the new names. Missing files are skipped (their returned name is empty).
Result<RootPaths> BackUpRootFiles(const RootPaths& paths, time_t now);

struct Regenerated {
  RootPaths backups;  // where the previous files went (empty names when there were none)
  Root root;
};

// Replaces the root at |paths| with a new one: the new pair is made first, then the old files
// are backed up (BackUpRootFiles) and the new ones written. If writing fails, the backups are
// moved back.
Result<Regenerated> RegenerateRoot(const RootPaths& paths, KeyType type, const Scope& scope);

// Reads a whole (small) file.
Result<std::string> ReadSmallFile(const std::string& path);

}  // namespace mitmd::ca
