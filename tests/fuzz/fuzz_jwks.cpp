// JWKS documents (parse_jwks -> parse_jwk -> OpenSSL EVP_PKEY_fromdata): any text must give an Error
// or only usable public signing keys: RSA or EC on P-256/P-384, each with a built key.
#include "fuzz_common.hpp"
#include "jose/jwk.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto keys = kinde::parse_jwks(kinde::fuzz::as_text(data, size));
  if (!keys) {
    const std::string& code = keys.error().code;
    FUZZ_CHECK(code == "jwks_malformed" || code == "jwks_empty");
    return 0;
  }
  FUZZ_CHECK(!keys->empty());
  for (const auto& k : *keys) {
    FUZZ_CHECK(k.key != nullptr);
    FUZZ_CHECK(k.kty == "RSA" || k.kty == "EC");
    if (k.kty == "EC") FUZZ_CHECK(k.crv == "P-256" || k.crv == "P-384");
    FUZZ_CHECK(k.use != "enc");
  }
  return 0;
}
