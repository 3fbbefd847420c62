// What a session keeps from the tokens of a sign-in or a refresh (src/app/auth.cpp, src/app/identity.cpp).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "oidc/client.hpp"

namespace kinde {

// The verified claims of a JWT access token (OidcClient::verify_access_token), or "token_opaque" for a token that
// is not one: its claims then come from the ID token and UserInfo. Sign-in and every refresh use it.
Result<nlohmann::json> session_access_claims(OidcClient& oidc, const std::string& access_token, std::int64_t now);

}  // namespace kinde
