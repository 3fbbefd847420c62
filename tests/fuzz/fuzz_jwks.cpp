// JWKS documents (parse_jwks -> parse_jwk -> OpenSSL EVP_PKEY_fromdata): any text must give an Error
// or only usable public signing keys: RSA, EC on P-256/P-384/P-521 or OKP Ed25519, each with a built key
// of the matching OpenSSL type.
#include "fuzz_common.hpp"
#include "jose/jwk.hpp"

#include <openssl/evp.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto keys = kinde::parse_jwks(kinde::fuzz::as_text(data, size));
  if (!keys) {
    const std::string& code = keys.error().code;
    FUZZ_CHECK(code == kinde::kJwksMalformed || code == kinde::kJwksEmpty);
    return 0;
  }
  FUZZ_CHECK(!keys->empty());
  for (const auto& k : *keys) {
    FUZZ_CHECK(k.key != nullptr);
    FUZZ_CHECK(k.kty == "RSA" || k.kty == "EC" || k.kty == "OKP");
    const int type = EVP_PKEY_get_base_id(k.key.get());
    if (k.kty == "RSA") FUZZ_CHECK(type == EVP_PKEY_RSA && EVP_PKEY_get_bits(k.key.get()) >= int(kinde::kMinRsaBits));
    if (k.kty == "EC") FUZZ_CHECK(type == EVP_PKEY_EC && (k.crv == "P-256" || k.crv == "P-384" || k.crv == "P-521"));
    if (k.kty == "OKP") FUZZ_CHECK(type == EVP_PKEY_ED25519 && k.crv == "Ed25519");
    FUZZ_CHECK(k.use != "enc");
  }
  return 0;
}
