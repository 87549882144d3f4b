#include "ca/keys.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>

#include "core/strings.h"

namespace mitmd::ca {
namespace {

Result<bssl::UniquePtr<EVP_PKEY>> GenerateEc() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!ec || !key || !EC_KEY_generate_key(ec.get()) ||
      !EVP_PKEY_assign_EC_KEY(key.get(), ec.release())) {
    return Fail("cannot generate an ECDSA P-256 key");
  }
  return key;
}

Result<bssl::UniquePtr<EVP_PKEY>> GenerateRsa(int bits) {
  bssl::UniquePtr<RSA> rsa(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!rsa || !e || !key || !BN_set_word(e.get(), RSA_F4) ||
      !RSA_generate_key_ex(rsa.get(), bits, e.get(), nullptr) ||
      !EVP_PKEY_assign_RSA(key.get(), rsa.release())) {
    return Fail(StrCat("cannot generate an RSA ", bits, "-bit key"));
  }
  return key;
}

}  // namespace

Result<KeyType> ParseKeyType(std::string_view text) {
  if (text == "ecdsa-p256" || text == "ec" || text == "ecdsa" || text == "p256") {
    return KeyType::kEcdsaP256;
  }
  if (text == "rsa2048") return KeyType::kRsa2048;
  if (text == "rsa3072") return KeyType::kRsa3072;
  return Fail(StrCat("unknown key type '", text, "': use ecdsa-p256, rsa2048 or rsa3072"));
}

std::string_view ToString(KeyType type) {
  switch (type) {
    case KeyType::kEcdsaP256:
      return "ecdsa-p256";
    case KeyType::kRsa2048:
      return "rsa2048";
    case KeyType::kRsa3072:
      return "rsa3072";
  }
  return "unknown";
}

Result<bssl::UniquePtr<EVP_PKEY>> GenerateKey(KeyType type) {
  switch (type) {
    case KeyType::kEcdsaP256:
      return GenerateEc();
    case KeyType::kRsa2048:
      return GenerateRsa(2048);
    case KeyType::kRsa3072:
      return GenerateRsa(3072);
  }
  return Fail("unknown key type");
}

Status CheckSigningKey(const EVP_PKEY* key) {
  switch (EVP_PKEY_id(key)) {
    case EVP_PKEY_EC: {
      const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key);
      if (EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_X9_62_prime256v1) {
        return Fail("only P-256 EC keys are supported");
      }
      return {};
    }
    case EVP_PKEY_RSA: {
      unsigned bits = EVP_PKEY_bits(key);
      if (bits < 2048)
        return Fail(StrCat("RSA keys need at least 2048 bits (this one has ", bits, ")"));
      return {};
    }
    default:
      return Fail("unsupported key type: use an ECDSA P-256 or RSA (2048 bits or more) key");
  }
}

}  // namespace mitmd::ca
