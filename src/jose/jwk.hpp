// JWK / JWKS (RFC 7517, RFC 7518 section 6) to OpenSSL public keys usable for JWS verification.
// Only signature keys the verifier can use are kept: RSA (>= 2048 bits), EC P-256 / P-384 / P-521, and OKP
// Ed25519 (RFC 8037).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/types.h>

#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kJwksEmpty = "jwks_empty";  // error code
inline constexpr const char* kJwksMalformed = "jwks_malformed";  // error code

// A public signing key. `key` is built once and shared (EVP_PKEY is reference-safe for concurrent verify).
struct Jwk {
  std::string kid, kty, alg, use, crv;
  std::shared_ptr<EVP_PKEY> key;
};

// Error codes of parse_jwk (parse_jwks skips such keys): "jwk_malformed" (not an object, missing or
// non-string members, bad base64url, EC coordinate longer than the field size; a shorter one is left-padded
// with zeros), "jwk_unsupported" (kty other than RSA/EC/OKP,
// EC curve other than P-256/P-384/P-521, OKP curve other than Ed25519, alg not usable with this key), "jwk_private" (private members such as
// "d" present), "jwk_not_for_signing" (use "enc" or key_ops without "verify"), "jwk_weak_key" (RSA
// modulus below 2048 bits), "jwk_invalid_key" (OpenSSL refuses the parameters, e.g. point not on curve).
inline constexpr std::size_t kMinRsaBits = 2048;
inline constexpr std::size_t kMaxRsaBits = 16384;

// One JWK (RSA n/e, EC P-256/P-384/P-521 x/y, OKP Ed25519 x) to a public key via OpenSSL 3 OSSL_PARAM /
// EVP_PKEY_fromdata.
Result<Jwk> parse_jwk(const nlohmann::json& jwk);
// A JWKS document ({"keys":[...]}) to usable signing keys; skips keys with use=="enc", unknown kty/crv,
// or private members; error "jwks_malformed" if not JSON/no keys array, "jwks_empty" if nothing usable.
Result<std::vector<Jwk>> parse_jwks(std::string_view json_text);

}  // namespace kinde
