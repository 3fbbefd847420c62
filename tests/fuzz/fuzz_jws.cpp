// Compact JWS tokens: parse_jws, then verify_jwt against a fixed JWKS (tests/fuzz/fixed_jwks.inc, made
// by make_seeds.cpp), then the ID-token and access-token claim checks on whatever payload parsed.
// Properties: nothing but a token signed by a fixed key verifies with an allowed alg; a verified
// payload is the parsed one; claim checks that pass saw the expected iss, a sub and a live exp.
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "jose/jws.hpp"
#include "oidc/token_checks.hpp"

namespace {

const std::vector<kinde::Jwk>& fixed_keys() {
  static const std::vector<kinde::Jwk> keys = [] {
    auto parsed = kinde::parse_jwks(
#include "fixed_jwks.inc"
    );
    if (!parsed) kinde::fuzz::fail("the fixed JWKS does not parse", __FILE__, __LINE__);
    return std::move(*parsed);
  }();
  return keys;
}

void check_claims(const nlohmann::json& payload) {
  namespace fz = kinde::fuzz;
  kinde::IdTokenExpectations id{std::string(fz::kIssuer), std::string(fz::kClientId), std::string(fz::kNonce),
                                fz::kNow, 60};
  if (kinde::check_id_token_claims(payload, id).ok()) {
    FUZZ_CHECK(payload.is_object());
    FUZZ_CHECK(payload.value("iss", nlohmann::json()) == fz::kIssuer);
    FUZZ_CHECK(payload.contains("sub") && payload["sub"].is_string() && !payload["sub"].get<std::string>().empty());
    FUZZ_CHECK(payload.contains("exp") && payload["exp"].is_number() && payload["exp"].get<double>() > fz::kNow - 60);
    FUZZ_CHECK(payload.value("nonce", nlohmann::json()) == fz::kNonce);
  }
  id.nonce.clear();  // refreshed ID tokens: nonce not checked
  (void)kinde::check_id_token_claims(payload, id);
  kinde::AccessTokenExpectations at{std::string(fz::kIssuer), std::string(fz::kAudience), std::string(fz::kClientId),
                                    fz::kNow, 60};
  const nlohmann::json untyped = nlohmann::json::object();
  if (kinde::check_access_token_claims(untyped, payload, at).ok()) {
    FUZZ_CHECK(payload.value("iss", nlohmann::json()) == fz::kIssuer);
    FUZZ_CHECK(payload.contains("aud"));
    // Never an ID token: none of the claims only ID tokens carry.
    for (const char* claim : {"nonce", "at_hash", "c_hash", "s_hash", "auth_time"}) FUZZ_CHECK(!payload.contains(claim));
  }
  at.audience.clear();
  if (kinde::check_access_token_claims(untyped, payload, at).ok()) {
    // Issued to this app: azp or client_id names it, and neither names another client.
    FUZZ_CHECK(payload.value("azp", nlohmann::json()) == fz::kClientId ||
               payload.value("client_id", nlohmann::json()) == fz::kClientId);
    FUZZ_CHECK(!payload.contains("azp") || payload["azp"] == fz::kClientId);
    FUZZ_CHECK(!payload.contains("client_id") || payload["client_id"] == fz::kClientId);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view token = kinde::fuzz::as_text(data, size);
  const auto& keys = fixed_keys();

  auto parsed = kinde::parse_jws(token);
  if (parsed) {
    FUZZ_CHECK(token.size() <= kinde::kMaxJwsSize);
    FUZZ_CHECK(parsed->header.is_object() && parsed->payload.is_object());
    FUZZ_CHECK(token.substr(0, parsed->signing_input.size()) == parsed->signing_input);
    FUZZ_CHECK(!parsed->header.contains("crit"));
    check_claims(parsed->payload);
  } else {
    FUZZ_CHECK(parsed.error().code == kinde::kJwtMalformed);
  }

  auto verified = kinde::verify_jwt(token, keys);
  if (verified) {
    FUZZ_CHECK(parsed.ok());
    FUZZ_CHECK(kinde::is_allowed_alg(verified->alg));
    FUZZ_CHECK(verified->payload == parsed->payload);
  }
  return 0;
}
