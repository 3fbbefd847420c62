// Kinde's claims, with the meanings of the SDK helpers (get_claim, get_permissions, get_flag ...).
// Every helper reads a ClaimSource: the verified claims of a session's access and ID tokens, or of a
// machine's bearer token (access claims only; the ID-token view is then empty). A claim that is absent
// reads as "none" (null org code, empty lists); a claim of the wrong shape is an Error, never a guess.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace kinde {

// The tokens claims are read from: the access token's and the ID token's (either may be empty or null).
struct ClaimSource {
  const nlohmann::json& access;
  const nlohmann::json& id;
};

// Which token a claim is read from (the SDK's token_name "access_token" / "id_token").
enum class TokenKind { access, id };

// Error codes returned by the helpers.
inline constexpr const char* kClaimWrongType = "claim_wrong_type";    // a claim is not of the documented shape
inline constexpr const char* kNoIdToken = "no_id_token";              // an ID-token helper on a bearer token
inline constexpr const char* kFlagNotFound = "flag_not_found";        // flag absent and no default given
inline constexpr const char* kFlagTypeMismatch = "flag_type_mismatch";// flag (or default) of another type
inline constexpr const char* kFlagMalformed = "flag_malformed";       // {"t","v"} missing, unknown t, v not of t

// get_claim's answer: the claim's name and value (null when the token lacks it).
struct Claim {
  std::string name;
  nlohmann::json value;
};

// get_permission's answer.
struct PermissionGrant {
  std::optional<std::string> org_code;
  bool is_granted = false;
};

// get_permissions' answer.
struct Permissions {
  std::optional<std::string> org_code;
  std::vector<std::string> permissions;
};

// get_organization's answer.
struct Organization {
  std::optional<std::string> org_code;
};

// get_user_organizations' answer.
struct UserOrganizations {
  std::vector<std::string> org_codes;
};

// get_user_details' answer (id is the ID token's sub).
struct UserDetails {
  std::string id;
  std::optional<std::string> given_name, family_name, email, picture;
};

// One role of the access token's "roles" claim.
struct Role {
  std::string id, key, name;
};

// get_roles' answer.
struct Roles {
  std::optional<std::string> org_code;
  std::vector<Role> roles;
};

// Kinde's flag types: "b", "s", "i" in tokens; "boolean", "string", "integer" in the SDK's answers.
enum class FlagType { boolean, string, integer };

// get_flag's answer: value is a JSON boolean, string or integer matching type.
struct Flag {
  std::string code;
  nlohmann::json value;
  bool is_default = false;
  FlagType type = FlagType::string;
};

// "boolean", "string" or "integer".
const char* flag_type_name(FlagType type);
// The type for a token letter ("b", "s", "i") or an SDK name ("boolean", ...); nullopt otherwise.
std::optional<FlagType> parse_flag_type(std::string_view text);

// The named claim of the access or ID token; value null when absent. Never fails for a missing token.
Result<Claim> get_claim(const ClaimSource& claims, std::string_view name, TokenKind token = TokenKind::access);

// Whether the access token's "permissions" list holds `permission`, with the token's org_code.
// Errors: claim_wrong_type (permissions not a list of strings, org_code not a string).
Result<PermissionGrant> get_permission(const ClaimSource& claims, std::string_view permission);

// The access token's permissions (empty when the claim is absent) and org_code. Errors: claim_wrong_type.
Result<Permissions> get_permissions(const ClaimSource& claims);

// The access token's org_code (null when absent). Errors: claim_wrong_type.
Result<Organization> get_organization(const ClaimSource& claims);

// The ID token's org_codes (empty when absent). Errors: no_id_token (bearer), claim_wrong_type.
Result<UserOrganizations> get_user_organizations(const ClaimSource& claims);

// The ID token's sub, given_name, family_name, email, picture. Errors: no_id_token, claim_wrong_type
// (sub missing or not a string, or another of these not a string).
Result<UserDetails> get_user_details(const ClaimSource& claims);

// The access token's roles ([{id, key, name}], empty when absent) and org_code. Errors: claim_wrong_type.
Result<Roles> get_roles(const ClaimSource& claims);

// The access token's feature flag `code`. Absent: the default (is_default true; its type is `type`, or
// inferred from the default's JSON type), or flag_not_found without a default. With `type` set, a flag
// (or default) of another type is flag_type_mismatch. Errors also: claim_wrong_type, flag_malformed.
Result<Flag> get_flag(const ClaimSource& claims, std::string_view code,
                      const std::optional<nlohmann::json>& default_value = std::nullopt,
                      std::optional<FlagType> type = std::nullopt);

// get_flag with type boolean; the value.
Result<bool> get_boolean_flag(const ClaimSource& claims, std::string_view code,
                              std::optional<bool> default_value = std::nullopt);
// get_flag with type string; the value.
Result<std::string> get_string_flag(const ClaimSource& claims, std::string_view code,
                                    std::optional<std::string> default_value = std::nullopt);
// get_flag with type integer; the value.
Result<std::int64_t> get_integer_flag(const ClaimSource& claims, std::string_view code,
                                      std::optional<std::int64_t> default_value = std::nullopt);

// Every well-formed flag of the access token, ordered by code (malformed ones are skipped).
// Errors: claim_wrong_type (feature_flags not an object).
Result<std::vector<Flag>> get_flags(const ClaimSource& claims);

// JSON forms of the answers, with the SDK's snake_case keys ({"org_code": ..., "is_granted": ...}).
nlohmann::json to_json(const PermissionGrant& v);
nlohmann::json to_json(const Permissions& v);
nlohmann::json to_json(const Organization& v);
nlohmann::json to_json(const UserOrganizations& v);
nlohmann::json to_json(const UserDetails& v);
nlohmann::json to_json(const Roles& v);
nlohmann::json to_json(const Flag& v);

// The view model for the home page's "Next steps": permissions, organisation, organisations, roles,
// flags (with has_* booleans for the template). Claims of the wrong shape show as none (and are logged).
nlohmann::json home_claims_view(const ClaimSource& claims);

}  // namespace kinde
