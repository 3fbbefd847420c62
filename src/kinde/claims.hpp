// Kinde's claims, with the meanings of the SDK helpers (get_claim, get_permissions, get_flag ...).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace kinde {

// The tokens claims are read from: the access token's and the ID token's (either may be empty).
struct ClaimSource {
  const nlohmann::json& access;
  const nlohmann::json& id;
};

// The view model for the home page's "Next steps": permissions, organisation, organisations, flags.
nlohmann::json home_claims_view(const ClaimSource& claims);

}  // namespace kinde
