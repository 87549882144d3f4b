#pragma once
// Minting one leaf certificate from a root.

#include <openssl/base.h>

#include <ctime>

#include "ca/authority.h"
#include "ca/leaf_names.h"
#include "ca/root_store.h"
#include "core/result.h"

namespace mitmd::ca {

inline constexpr int kLeafValidityDays = 365;  // under the 397 days Apple and Chrome accept
inline constexpr int kLeafBackdateDays = 2;    // tolerate clients whose clocks run behind

// A leaf for |names| with public key |leaf_key|, signed by |root|: SANs (DNS and IP), CN per
// LeafNames, EKU serverAuth, keyUsage digitalSignature (critical; plus keyEncipherment for RSA
// keys), basicConstraints CA:FALSE, authority key id = root's, subject key id, random serial,
// valid from |now| - kLeafBackdateDays until min(|now| + kLeafValidityDays, root's notAfter).
// The chain is the leaf then the root. Fails when |names| is empty.
Result<Leaf> MintLeaf(const Root& root, EVP_PKEY* leaf_key, const LeafNames& names, time_t now);

}  // namespace mitmd::ca
