// Compact JWS (RFC 7515) parsing and signature verification for JWTs, with a fixed algorithm allow-list.
// Keys embedded in or referenced by the header (jwk, jku, x5u, x5c) are never used: keys come from the JWKS.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "jose/jwk.hpp"
#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kJwtAlgNotAllowed = "jwt_alg_not_allowed";  // error code
inline constexpr const char* kJwtAmbiguousKey = "jwt_ambiguous_key";  // error code
inline constexpr const char* kJwtBadSignature = "jwt_bad_signature";  // error code
inline constexpr const char* kJwtKeyMismatch = "jwt_key_mismatch";  // error code
inline constexpr const char* kJwtMalformed = "jwt_malformed";  // error code
inline constexpr const char* kJwtUnknownKid = "jwt_unknown_kid";  // error code

// Largest compact token accepted (bytes): bounds the work an attacker can cause per request.
inline constexpr std::size_t kMaxJwsSize = 16 * 1024;

// A parsed, not yet verified, compact JWS. `signing_input` is "<header b64>.<payload b64>" as received;
// `signature` holds the decoded signature bytes. Duplicate JSON members: the last one wins (RFC 7515 4).
// bugprone-exception-escape is a false positive here: the implicit move constructor is noexcept
// (nlohmann::json's is, its invariant check is an assert); clang-tidy 14 misreads it.
struct Jws {  // NOLINT(bugprone-exception-escape)
  nlohmann::json header, payload;
  std::string alg, kid, signing_input, signature;
};

// True when a token has the shape of a compact JWS (exactly two dots). Anything else is an opaque token (a
// reference the provider resolves: LemonLDAP's and Google's access tokens), checked by introspection if at all.
bool looks_like_jwt(std::string_view token);
// Compact JWS: exactly three base64url parts, header and payload JSON objects, total size <= 16 KiB,
// "crit" header rejected. Errors: "jwt_malformed" (with a detail saying which part).
Result<Jws> parse_jws(std::string_view compact);
// The allow-list: RS256 RS384 RS512 PS256 PS384 PS512 (RSA keys), ES256 / ES384 / ES512 (EC keys on P-256 /
// P-384 / P-521 respectively), EdDSA (OKP Ed25519 keys only). "none" and every HS* are never allowed.
bool is_allowed_alg(std::string_view alg);
// True when alg is allowed and a key of this kty (and crv, for EC and OKP) can verify it.
bool alg_fits_key(std::string_view alg, std::string_view kty, std::string_view crv);
// Chooses the key: by kid when the token has one ("jwt_unknown_kid" if absent: caller may re-fetch JWKS);
// without kid, the only key whose kty fits the alg ("jwt_ambiguous_key" if several). A token alg off the
// allow-list gives "jwt_alg_not_allowed" before any lookup (so such tokens never trigger a JWKS re-fetch).
Result<const Jwk*> select_key(const Jws& jws, const std::vector<Jwk>& keys);
// Verifies the signature: alg on the allow-list ("jwt_alg_not_allowed"), key type matching the alg and the
// key's own "alg" if set ("jwt_key_mismatch"), EVP_DigestVerify with PKCS1 / PSS(salt=digest length) /
// ECDSA raw r||s converted to DER / Ed25519 ("jwt_bad_signature").
Result<void> verify_jws_signature(const Jws& jws, const Jwk& key);
// parse + select + verify in one call, returning the payload.
Result<Jws> verify_jwt(std::string_view compact, const std::vector<Jwk>& keys);

}  // namespace kinde
