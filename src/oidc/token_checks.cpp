#include "oidc/token_checks.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <optional>


namespace kinde {
namespace {

using json = nlohmann::json;
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

// Saturating arithmetic: a token may carry any number (exp: 9e18 or 1e300), and signed overflow is UB.
std::int64_t sat_add(std::int64_t a, std::int64_t b) {
  if (b > 0 && a > kMax - b) return kMax;
  if (b < 0 && a < kMin - b) return kMin;
  return a + b;
}
std::int64_t sat_sub(std::int64_t a, std::int64_t b) {
  if (b > 0 && a < kMin + b) return kMin;
  if (b < 0 && a > kMax + b) return kMax;
  return a - b;
}

// A JWT NumericDate (RFC 7519 2): seconds, integer or not; nullopt when absent or not a finite number.
std::optional<std::int64_t> numeric_date(const json& payload, const char* name) {
  auto it = payload.find(name);
  if (it == payload.end()) return std::nullopt;
  if (it->is_number_unsigned()) {
    const auto v = it->get<std::uint64_t>();
    return v > std::uint64_t(kMax) ? kMax : std::int64_t(v);
  }
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (!std::isfinite(v)) return std::nullopt;
    // 2^63 is exactly representable; anything at or beyond it saturates.
    if (v >= 9223372036854775808.0) return kMax;
    if (v <= -9223372036854775808.0) return kMin;
    return std::int64_t(std::floor(v));
  }
  return std::nullopt;
}

// For error details: the claim as the token has it, bounded so a hostile token cannot bloat the log.
std::string shown(const json& payload, const char* name) {
  auto it = payload.find(name);
  if (it == payload.end()) return "(missing)";
  std::string text = it->dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 200) {
    text.resize(200);
    text += "...";
  }
  return text;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

Result<void> check_iss(const json& payload, const std::string& issuer) {
  auto it = payload.find("iss");
  if (it == payload.end() || !it->is_string() || it->get_ref<const std::string&>() != issuer)
    return make_error(kTokenBadIss, "expected iss " + in_quotes(issuer) + ", got " + shown(payload, "iss"));
  return Ok{};
}

// True when aud (a string, or an array of strings) names `who`.
bool aud_contains(const json& aud, const std::string& who) {
  if (aud.is_string()) return aud.get_ref<const std::string&>() == who;
  if (aud.is_array())
    for (const auto& a : aud)
      if (a.is_string() && a.get_ref<const std::string&>() == who) return true;
  return false;
}

Result<void> check_time(const json& payload, std::int64_t now, std::int64_t leeway, bool exp_required) {
  const auto exp = numeric_date(payload, "exp");
  if (!exp) {
    if (exp_required || payload.contains("exp"))
      return make_error(kTokenExpired, "exp missing or not a number: " + shown(payload, "exp"));
  } else if (sat_add(*exp, leeway) <= now) {
    return make_error(kTokenExpired, "exp " + std::to_string(*exp) + " + leeway " + std::to_string(leeway) +
                                           " <= now " + std::to_string(now));
  }
  if (payload.contains("nbf")) {
    const auto nbf = numeric_date(payload, "nbf");
    if (!nbf) return make_error(kTokenNotYetValid, "nbf is not a number: " + shown(payload, "nbf"));
    if (sat_sub(*nbf, leeway) > now)
      return make_error(kTokenNotYetValid, "nbf " + std::to_string(*nbf) + " - leeway " + std::to_string(leeway) +
                                                   " > now " + std::to_string(now));
  }
  return Ok{};
}

// True for the JOSE typ of an RFC 9068 access token: "at+jwt" or "application/at+jwt", case-insensitively.
bool is_at_jwt_type(const json& header) {
  if (!header.is_object()) return false;
  auto typ = header.find("typ");
  if (typ == header.end() || !typ->is_string()) return false;
  std::string t = typ->get<std::string>();
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t == "at+jwt" || t == "application/at+jwt";
}

// Refuses an ID token presented as an access token (see token_checks.hpp for the rule).
Result<void> check_not_id_token(const json& header, const json& payload, const AccessTokenExpectations& expect) {
  // Claims no access token carries: the ID token's binding to a sign-in (Core 3.1.3.6, 3.3.2.11; FAPI s_hash).
  for (const char* claim : {"nonce", "at_hash", "c_hash", "s_hash"}) {
    if (payload.contains(claim))
      return make_error(kTokenIsIdToken, std::string("the token carries ") + claim +
                                                 ": it is an ID token, not an access token");
  }
  // RFC 9068 2.2.1 allows auth_time in a typed access token; an untyped one with it is an ID token (Kinde's access
  // tokens never carry it, its ID tokens always do).
  if (is_at_jwt_type(header)) return Ok{};
  if (payload.contains("auth_time"))
    return make_error(kTokenIsIdToken, "the token carries auth_time and is not typed at+jwt: it is an ID token");
  auto aud = payload.find("aud");
  if (aud != payload.end() && !expect.client_id.empty() && expect.audience != expect.client_id &&
      aud_contains(*aud, expect.client_id))
    return make_error(kTokenIsIdToken, "the token's aud names this app's client id " + in_quotes(expect.client_id) +
                                               ": it is an ID token, not an access token");
  return Ok{};
}

}  // namespace


Result<void> check_id_token_claims(const json& payload, const IdTokenExpectations& expect) {
  if (!payload.is_object()) return make_error(kTokenBadIss, "the payload is not a JSON object");
  if (auto r = check_iss(payload, expect.issuer); !r) return r;

  auto aud = payload.find("aud");
  const bool no_aud = aud == payload.end() || aud->is_null() || (aud->is_string() && aud->get_ref<const std::string&>().empty()) ||
                      (aud->is_array() && aud->empty());
  if (no_aud) return make_error(kTokenNoAud, "the ID token has no aud (expected " + in_quotes(expect.client_id) + ")");
  auto azp = payload.find("azp");
  if (azp != payload.end() && (!azp->is_string() || azp->get_ref<const std::string&>() != expect.client_id))
    return make_error(kTokenBadAzp, "expected azp " + in_quotes(expect.client_id) + ", got " + shown(payload, "azp"));
  // Core 3.1.3.7 wants client_id in aud. Kinde's aud content is unconfirmed (it may list API audiences), so an
  // azp naming this client is accepted instead; azp was checked above to be exactly client_id when present.
  if (!aud_contains(*aud, expect.client_id) && azp == payload.end())
    return make_error(kTokenBadAud,
                      "aud " + shown(payload, "aud") + " does not contain " + in_quotes(expect.client_id) + " and no azp");

  if (auto r = check_time(payload, expect.now, expect.leeway, /*exp_required=*/true); !r) return r;

  const auto iat = numeric_date(payload, "iat");
  if (!iat) return make_error(kTokenNoIat, "iat missing or not a number: " + shown(payload, "iat"));
  if (sat_sub(*iat, expect.leeway) > expect.now)
    return make_error(kTokenIatFuture, "iat " + std::to_string(*iat) + " - leeway " + std::to_string(expect.leeway) +
                                              " > now " + std::to_string(expect.now));

  auto sub = payload.find("sub");
  if (sub == payload.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty())
    return make_error(kTokenNoSub, "sub missing, empty or not a string: " + shown(payload, "sub"));

  if (!expect.nonce.empty()) {
    auto nonce = payload.find("nonce");
    // The nonce is a secret of this sign-in: the detail never shows either value.
    if (nonce == payload.end() || !nonce->is_string())
      return make_error(kTokenBadNonce, "the ID token has no nonce string");
    if (!constant_time_equal(nonce->get_ref<const std::string&>(), expect.nonce))
      return make_error(kTokenBadNonce, "the ID token's nonce is not the one sent with this sign-in");
  }
  return Ok{};
}

Result<void> check_access_token_claims(const json& header, const json& payload, const AccessTokenExpectations& expect) {
  if (!payload.is_object()) return make_error(kTokenBadIss, "the payload is not a JSON object");
  if (auto r = check_iss(payload, expect.issuer); !r) return r;
  if (auto r = check_time(payload, expect.now, expect.leeway, /*exp_required=*/true); !r) return r;
  if (auto r = check_not_id_token(header, payload, expect); !r) return r;
  if (!expect.audience.empty()) {
    // RFC 9068 4 / RFC 8725 3.9: the token must be meant for this resource server.
    auto aud = payload.find("aud");
    if (aud == payload.end() || !aud_contains(*aud, expect.audience))
      return make_error(kTokenBadAud, "aud " + shown(payload, "aud") + " does not contain " + in_quotes(expect.audience));
    return Ok{};
  }
  // No API audience configured: only tokens issued to this app's own client count (Kinde names it in azp,
  // RFC 9068 2.2 in client_id). Without this, any app of the tenant could call with its own tokens.
  bool named = false;
  for (const char* name : {"azp", "client_id"}) {
    auto it = payload.find(name);
    if (it == payload.end()) continue;
    if (!it->is_string() || it->get_ref<const std::string&>() != expect.client_id)
      return make_error(kTokenBadAzp, std::string(name) + " " + shown(payload, name) +
                                             " is not this app's client id " + in_quotes(expect.client_id));
    named = true;
  }
  if (!named)
    return make_error(kTokenNoAzp, "the token names no client (no azp or client_id; expected " +
                                          in_quotes(expect.client_id) + "); set KINDE_AUDIENCE to accept API tokens");
  return Ok{};
}

}  // namespace kinde
