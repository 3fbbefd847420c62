// Test helpers: signing keys generated at run time, their public JWK/JWKS, and signed JWTs.
// For any test that needs a token a real provider would issue (handler tests, callback, bearer).
//
//   using namespace kinde::testing;
//   const PKey& key = rsa_key();                                   // cached per process (fast)
//   std::string jwks = jwks_json({jwk_json(key, "k1")});          // {"keys":[{kty,n,e,kid,use:"sig"}]}
//   std::string jwt = sign_jwt({{"kid", "k1"}}, id_token_payload("https://idp", "client", "n0nce", now),
//                              key, "RS256");                     // "alg" is added to the header
//   auto keys = kinde::parse_jwks(jwks);                          // then verify_jwt(jwt, *keys)
//
// All helpers throw std::runtime_error on an OpenSSL failure (never expected in tests).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/types.h>

namespace kinde::testing {

using PKey = std::shared_ptr<EVP_PKEY>;

// A fresh RSA key pair (slow: tens of milliseconds for 2048 bits).
PKey make_rsa_key(int bits = 2048);
// A fresh EC key pair on "P-256", "P-384" or "P-521".
PKey make_ec_key(const std::string& crv = "P-256");
// A fresh Edwards-curve key pair: "Ed25519" or "Ed448".
PKey make_okp_key(const std::string& crv = "Ed25519");

// Keys generated once per test process and shared: use these unless a test needs a distinct key.
const PKey& rsa_key();     // RSA 2048
const PKey& rsa_key2();    // another RSA 2048 (for "signed by someone else")
const PKey& ec256_key();   // EC P-256
const PKey& ec384_key();   // EC P-384
const PKey& ec521_key();   // EC P-521
const PKey& ed25519_key(); // OKP Ed25519

// The public JWK of key: RSA {kty,n,e}, EC {kty,crv,x,y} or OKP {kty,crv,x}, plus kid, "use":"sig", and alg if non-empty.
nlohmann::json jwk_json(const PKey& key, const std::string& kid, const std::string& alg = "");
// {"keys":[...]} as text, ready to be served as a JWKS document.
std::string jwks_json(const std::vector<nlohmann::json>& jwks);

// Compact JWS of header and payload signed with key. alg: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA
// (with an Ed25519 or Ed448 key).
// The header is used as given, with "alg" added when it has none (so tests can also lie about alg).
std::string sign_jwt(nlohmann::json header, const nlohmann::json& payload, const PKey& key, const std::string& alg);
// Compact JWS with an HMAC signature (HS256/384/512) keyed by `secret`: for alg-confusion attack tests.
std::string sign_hs_jwt(nlohmann::json header, const nlohmann::json& payload, const std::string& secret,
                        const std::string& alg = "HS256");
// "<b64 header>.<b64 payload>.<signature_b64>" with no real signature (alg none, garbage, truncation tests).
std::string unsigned_jwt(const nlohmann::json& header, const nlohmann::json& payload,
                         const std::string& signature_b64 = "");
// base64url (no padding) of the compact JSON text of value.
std::string b64_json(const nlohmann::json& value);

// The public key as PEM (SubjectPublicKeyInfo) and as DER bytes.
std::string public_pem(const PKey& key);
std::string public_der(const PKey& key);

// A valid ID-token payload: iss, aud [client_id], azp, sub "kp_test_user", exp now+3600, iat now, nonce
// (omitted when empty), given_name/family_name/email. Tests change or erase members from there.
nlohmann::json id_token_payload(const std::string& issuer, const std::string& client_id, const std::string& nonce,
                                std::int64_t now);
// A valid Kinde-like access-token payload: iss, aud [audience] (omitted when empty), azp client_id,
// sub, exp now+86400, iat now, scp, permissions [], org_code "org_test", feature_flags {}.
nlohmann::json access_token_payload(const std::string& issuer, const std::string& client_id,
                                    const std::string& audience, std::int64_t now);

}  // namespace kinde::testing
