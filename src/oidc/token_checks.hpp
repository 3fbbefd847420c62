// Claim checks on verified JWT payloads: ID tokens (OpenID Connect Core 3.1.3.7) and bearer access tokens.
// Pure functions: the time is passed in, nothing is fetched. Signature verification is jose/jws.hpp's job.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/result.hpp"
#include "util/text.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kTokenBadAud = "token_bad_aud";  // error code
inline constexpr const char* kTokenBadAzp = "token_bad_azp";  // error code
inline constexpr const char* kTokenBadIss = "token_bad_iss";  // error code
inline constexpr const char* kTokenBadNonce = "token_bad_nonce";  // error code
inline constexpr const char* kTokenExpired = "token_expired";  // error code
inline constexpr const char* kTokenIatFuture = "token_iat_future";  // error code
inline constexpr const char* kTokenIsIdToken = "token_is_id_token";  // error code
inline constexpr const char* kTokenNoAud = "token_no_aud";  // error code
inline constexpr const char* kTokenNoAzp = "token_no_azp";  // error code
inline constexpr const char* kTokenNoIat = "token_no_iat";  // error code
inline constexpr const char* kTokenNoSub = "token_no_sub";  // error code
inline constexpr const char* kTokenNotYetValid = "token_not_yet_valid";  // error code
inline constexpr const char* kTokenInactive = "token_inactive";  // error code
inline constexpr const char* kTokenOpaque = "token_opaque";  // error code

struct IdTokenExpectations {
  std::string issuer, client_id, nonce;
  std::int64_t now = 0;
  std::int64_t leeway = 60;
};

// OpenID Connect Core 3.1.3.7 checks on a verified payload, each failure its own code, detail with expected
// and actual values: token_bad_iss, token_no_aud / token_bad_aud (aud string or array must contain client_id,
// OR azp equal to client_id is accepted when aud lacks it — Kinde's aud is unconfirmed), token_bad_azp (azp present
// and != client_id), token_expired (exp missing or exp+leeway <= now), token_not_yet_valid (nbf-leeway > now),
// token_no_iat (missing/non-numeric), token_iat_future (iat-leeway > now), token_no_sub (missing/empty/non-string),
// token_bad_nonce (nonce missing or not equal — compare in constant time; if expectations.nonce is empty,
// nonce is not checked: used for refreshed ID tokens).
// Numeric dates may be integers or floats (fractions are dropped); an nbf that is present but not a number
// is token_not_yet_valid. aud missing, null, "" or [] is token_no_aud.
Result<void> check_id_token_claims(const nlohmann::json& payload, const IdTokenExpectations& expect);

struct AccessTokenExpectations {
  std::string issuer, audience, client_id;
  std::int64_t now = 0;
  std::int64_t leeway = 60;
};

// Bearer access token checks (RFC 9068 4, RFC 8725 3.9/3.11): a token counts only when it was issued to this app
// and is not an ID token. In order, each refusal its own code:
// - token_bad_iss: iss not equal; token_expired (exp missing too) / token_not_yet_valid: exp/nbf with leeway.
// - token_is_id_token: an ID token is never a bearer credential. It carries nonce, at_hash, c_hash or s_hash
//   (claims only ID tokens define, OpenID Connect Core 2 / 3.3.2.11, FAPI); or, unless the JOSE header's typ is
//   "at+jwt" / "application/at+jwt" (RFC 9068 2.1: ID tokens are never typed so, and such tokens may carry
//   auth_time), it carries auth_time or its aud contains client_id (an ID token's audience is the client, Core 2;
//   an access token's is an API), unless audience == client_id.
// - audience set: aud (string or array) must contain it (token_bad_aud, aud missing too). No azp check then:
//   every client granted that audience (M2M apps) may call.
// - audience empty: the token must name this client: azp and/or client_id (RFC 9068 2.2) present, and each one
//   present equal to client_id (token_no_azp when neither is a string, token_bad_azp otherwise).
// sub is not required (M2M tokens). `header` is the verified JWS header (a non-object counts as untyped).
Result<void> check_access_token_claims(const nlohmann::json& header, const nlohmann::json& payload,
                                       const AccessTokenExpectations& expect);


}  // namespace kinde
