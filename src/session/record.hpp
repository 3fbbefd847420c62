// The session record: what a signed-in session keeps (Session::data), as types. Its JSON mapping lives
// in record.cpp, where every key of the on-disk format is spelled once; the format is the one sessions
// have always been written in, so sessions stored before this header existed read the same.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace kinde {

// The provider's tokens of a sign-in or of the latest refresh.
struct Tokens {
  std::string access_token;
  std::string id_token;       // "" when the provider gave none (a refresh may keep the old one)
  std::string refresh_token;  // "" without the offline scope: nothing can renew the access token
  std::int64_t expires_at = 0;  // Unix seconds when the access token expires; 0: unknown
};

// A signed-in session: who signed in and what the provider said. A session without one is not signed in
// (a pending sign-in never reaches the store: it lives in its own sealed cookie).
// bugprone-exception-escape: false positive, as for Identity in app/app.hpp.
struct SignedIn {  // NOLINT(bugprone-exception-escape)
  nlohmann::json user = nlohmann::json::object();           // user_from_id_claims: {id, given_name, ...}
  Tokens tokens;
  nlohmann::json id_claims = nlohmann::json::object();      // verified ID-token claims
  nlohmann::json access_claims = nlohmann::json::object();  // verified access-token claims ({} when opaque)
  std::optional<std::int64_t> retry_at;  // a failed refresh: not asked again before then (stored with the tokens)
};

// The record as Session::data holds it.
nlohmann::json record_to_json(const SignedIn& record);

// The signed-in record in a session's data; nullopt when it holds none (no user) or a member has the wrong
// type (a record no version wrote: read as not signed in). A member that is absent takes its default.
std::optional<SignedIn> signed_in_from(const nlohmann::json& data);
// The same, moving the members out of `data` when (and only when) it is a signed-in record.
std::optional<SignedIn> signed_in_from(nlohmann::json&& data);

// Overlays the members `partial` holds (a refresh result kept for the grace period: user, tokens, claims) on
// `record`; members it lacks keep their value. False, with `record` unchanged, when a member has the wrong type.
bool adopt_members(SignedIn& record, const nlohmann::json& partial);

}  // namespace kinde
