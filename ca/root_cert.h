#pragma once
// Building a new root certificate (the file handling lives in root_store.h).

#include <openssl/base.h>

#include <ctime>
#include <string>

#include "core/result.h"

namespace mitmd::ca {

inline constexpr int kRootValidityDays = 3650;

struct RootSpec {
  // Short id unique to this install, shown in the subject so users can tell roots apart.
  std::string install_id;
  // X.509 nameConstraints extension to add (DER-encodable C struct, NAME_CONSTRAINTS*), or null.
  NAME_CONSTRAINTS* name_constraints = nullptr;
};

// 8 random lower-case hex digits.
std::string NewInstallId();

// A self-signed CA certificate for |key|: subject "O=mitmd, CN=mitmd root CA <id>",
// basicConstraints CA:TRUE pathlen 0 (critical), keyUsage keyCertSign+cRLSign (critical),
// subject key id, random serial, valid from two days before |now| for kRootValidityDays,
// signed with SHA-256.
Result<bssl::UniquePtr<X509>> MintRoot(EVP_PKEY* key, const RootSpec& spec, time_t now);

}  // namespace mitmd::ca
