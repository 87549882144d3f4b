#pragma once
// Key types the authority can make, and making them.

#include <openssl/base.h>

#include <string_view>

#include "core/result.h"

namespace mitmd::ca {

enum class KeyType { kEcdsaP256, kRsa2048, kRsa3072 };

// "ecdsa-p256" (also "ec", "p256"), "rsa2048", "rsa3072".
Result<KeyType> ParseKeyType(std::string_view text);
std::string_view ToString(KeyType type);

// A fresh private key of |type|.
Result<bssl::UniquePtr<EVP_PKEY>> GenerateKey(KeyType type);

// Succeeds for keys the authority can sign with: ECDSA P-256, or RSA of 2048 bits or more.
Status CheckSigningKey(const EVP_PKEY* key);

}  // namespace mitmd::ca
