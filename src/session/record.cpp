#include "session/record.hpp"

#include <type_traits>
#include <utility>

namespace kinde {
namespace {

// The on-disk names: the only place they are spelled.
constexpr const char* kUser = "user";
constexpr const char* kTokens = "tokens";
constexpr const char* kIdClaims = "id_claims";
constexpr const char* kAccessClaims = "access_claims";
constexpr const char* kAccessToken = "access_token";
constexpr const char* kIdToken = "id_token";
constexpr const char* kRefreshToken = "refresh_token";
constexpr const char* kExpiresAt = "expires_at";
constexpr const char* kRetryAt = "retry_at";  // inside "tokens", where the first versions put it

// A member of `j` (nullptr when absent).
const nlohmann::json* member(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

bool is_string_or_absent(const nlohmann::json* v) { return !v || v->is_string(); }
bool is_integer_or_absent(const nlohmann::json* v) { return !v || v->is_number_integer(); }
bool is_object_or_absent(const nlohmann::json* v) { return !v || v->is_object(); }

// True when every member `partial` holds has the type this header reads it as.
bool well_typed(const nlohmann::json& partial) {
  if (!partial.is_object()) return false;
  if (!is_object_or_absent(member(partial, kUser)) || !is_object_or_absent(member(partial, kIdClaims)) ||
      !is_object_or_absent(member(partial, kAccessClaims)))
    return false;
  const nlohmann::json* t = member(partial, kTokens);
  if (!t) return true;
  if (!t->is_object()) return false;
  return is_string_or_absent(member(*t, kAccessToken)) && is_string_or_absent(member(*t, kIdToken)) &&
         is_string_or_absent(member(*t, kRefreshToken)) && is_integer_or_absent(member(*t, kExpiresAt)) &&
         is_integer_or_absent(member(*t, kRetryAt));
}

// Copies (J = const json&) or moves (J = json&&) the value of `key`, when present, into `out`.
template <class J, class T>
void take(J&& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  constexpr bool kMove = std::is_rvalue_reference_v<J&&>;
  if constexpr (kMove && std::is_same_v<T, nlohmann::json>) {
    out = std::move(*it);
  } else if constexpr (kMove && std::is_same_v<T, std::string>) {
    out = std::move(it->template get_ref<std::string&>());
  } else {
    out = it->template get<T>();
  }
}

// The tokens member (well typed) onto `record`: absent keys take the defaults, as the whole object is replaced.
template <class J>
void read_tokens(J&& t, SignedIn& record) {
  record.tokens = Tokens{};
  take(std::forward<J>(t), kAccessToken, record.tokens.access_token);
  take(std::forward<J>(t), kIdToken, record.tokens.id_token);
  take(std::forward<J>(t), kRefreshToken, record.tokens.refresh_token);
  take(std::forward<J>(t), kExpiresAt, record.tokens.expires_at);
  record.retry_at.reset();
  if (const nlohmann::json* r = member(t, kRetryAt)) record.retry_at = r->template get<std::int64_t>();
}

// The members of a well-typed `partial` onto `record`, copied or moved as J says.
template <class J>
void overlay(J&& partial, SignedIn& record) {
  take(std::forward<J>(partial), kUser, record.user);
  take(std::forward<J>(partial), kIdClaims, record.id_claims);
  take(std::forward<J>(partial), kAccessClaims, record.access_claims);
  auto t = partial.find(kTokens);
  if (t == partial.end()) return;
  if constexpr (std::is_rvalue_reference_v<J&&>) {
    read_tokens(std::move(*t), record);
  } else {
    read_tokens(*t, record);
  }
}

}  // namespace

nlohmann::json record_to_json(const SignedIn& r) {
  nlohmann::json tokens = {{kAccessToken, r.tokens.access_token},
                           {kIdToken, r.tokens.id_token},
                           {kRefreshToken, r.tokens.refresh_token},
                           {kExpiresAt, r.tokens.expires_at}};
  if (r.retry_at) tokens[kRetryAt] = *r.retry_at;
  return {{kUser, r.user}, {kTokens, std::move(tokens)}, {kIdClaims, r.id_claims}, {kAccessClaims, r.access_claims}};
}

std::optional<SignedIn> signed_in_from(const nlohmann::json& data) {
  if (!data.is_object() || !data.contains(kUser) || !well_typed(data)) return std::nullopt;
  SignedIn r;
  overlay(data, r);
  return r;
}

std::optional<SignedIn> signed_in_from(nlohmann::json&& data) {
  if (!data.is_object() || !data.contains(kUser) || !well_typed(data)) return std::nullopt;
  SignedIn r;
  overlay(std::move(data), r);
  return r;
}

bool adopt_members(SignedIn& record, const nlohmann::json& partial) {
  if (!well_typed(partial)) return false;
  overlay(partial, record);
  return true;
}

}  // namespace kinde
