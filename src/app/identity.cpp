// Who is calling: the session cookie (with token refresh) or an Authorization: Bearer token.
#include "app/app.hpp"
#include "app/session_tokens.hpp"
#include "jose/jws.hpp"
#include "oidc/token_checks.hpp"
#include "util/log.hpp"

namespace kinde {
namespace {

constexpr std::int64_t kRefreshMargin = 60;   // refresh this many seconds before the access token expires
constexpr std::int64_t kTouchInterval = 60;   // write last_used at most once a minute (idle timeout is coarse)

// Moves the member out of the session's data ({} when absent). Why move, not copy: the request
// only needs these three objects as the Identity; later code reads the session for its id and
// "tokens" alone (sign-out), and copying the JSON trees was a visible share of a signed-in request.
nlohmann::json take_member(Session& s, const char* key) {
  auto it = s.data.find(key);
  if (it == s.data.end()) return nlohmann::json::object();
  return std::move(*it);
}

// True when the session's access token has expired and nothing can renew it (no refresh token).
bool access_token_lapsed(const Session& s, std::int64_t now) {
  auto t = s.data.find("tokens");
  if (t == s.data.end() || !t->is_object()) return false;
  const std::int64_t exp = t->value("expires_at", std::int64_t{0});
  return exp != 0 && exp <= now && t->value("refresh_token", std::string()).empty();
}

Identity identity_from_session(Session& s, std::int64_t now) {
  Identity id;
  id.session_id = s.id;
  id.user = take_member(s, "user");
  id.access_claims = take_member(s, "access_claims");
  id.id_claims = take_member(s, "id_claims");
  // Without a refresh token the session lives on with the ID token's identity until its own lifetime ends, but
  // what the access token granted (permissions, organisation, feature flags, roles) stops counting when it expires:
  // the provider might no longer grant it, and nothing here can ask.
  if (access_token_lapsed(s, now) && !id.access_claims.empty()) {
    log_debug("session's access token expired without a refresh token: its claims no longer count");
    id.access_claims = nlohmann::json::object();
  }
  return id;
}

bool needs_refresh(const Session& s, std::int64_t now) {
  // find, not value(): value() would copy the whole tokens object (three long JWTs) per request.
  static const nlohmann::json kNone = nlohmann::json::object();
  auto found = s.data.find("tokens");
  const auto& t = found != s.data.end() ? *found : kNone;
  std::int64_t exp = t.value("expires_at", std::int64_t{0});
  // A provider that just failed is not asked again at once: every request would wait a timeout.
  if (t.value("retry_at", std::int64_t{0}) > now) return false;
  return exp != 0 && exp - kRefreshMargin <= now && !t.value("refresh_token", std::string()).empty();
}

enum class Refresh { refreshed, retry_later, ended };

// Refreshes the session's tokens inside the store's lock. `ended` when the provider definitively
// refused (the session must end); `retry_later` when it could not be asked (kept for a retry).
Refresh refresh_tokens(OidcClient& oidc, Session& s, std::int64_t now, std::int64_t retry_after) {
  auto& tokens = s.data["tokens"];
  auto fresh = oidc.refresh(tokens.value("refresh_token", std::string()));
  if (!fresh) {
    if (fresh.error().code == kTokenError) {
      log_info("refresh refused by provider (" + fresh.error().detail + "): ending session");
      return Refresh::ended;
    }
    // Provider down or slow: keep the session; a request after retry_after seconds tries again.
    log_warn("refresh failed, keeping session for a retry: " + fresh.error().code + ": " + fresh.error().detail);
    tokens["retry_at"] = now + retry_after;
    return Refresh::retry_later;
  }
  tokens.erase("retry_at");
  if (!fresh->id_token.empty()) {
    auto claims = oidc.verify_id_token(fresh->id_token, "", now);
    const std::string code = claims ? std::string() : claims.error().code;
    if (!claims && is_provider_outage(claims.error())) {
      // The keys cannot be fetched right now. The token came straight from the token endpoint over
      // TLS (OpenID Connect Core 3.1.3.7 allows trusting that), and the old refresh token is already
      // spent: keep the new tokens and the old verified claims rather than lose the session.
      log_warn("refreshed ID token not verifiable now (" + code + "); keeping the previous claims");
    } else if (!claims) {
      log_warn("refreshed ID token rejected: " + claims.error().code + ": " + claims.error().detail);
      return Refresh::ended;
    } else {
      // OpenID Connect Core 12.2: a refreshed ID token must keep iss and sub.
      const auto& old = s.data.value("id_claims", nlohmann::json::object());
      if (claims->value("iss", "") != old.value("iss", "") || claims->value("sub", "") != old.value("sub", "")) {
        log_warn("refreshed ID token changed iss or sub: ending session");
        return Refresh::ended;
      }
      tokens["id_token"] = fresh->id_token;
      // The user's details follow the newest ID token (a changed name, email or picture shows).
      s.data["user"] = user_from_id_claims(*claims, s.data.value("user", nlohmann::json::object()));
      s.data["id_claims"] = *claims;
    }
  }
  tokens["access_token"] = fresh->access_token;
  tokens["expires_at"] = fresh->expires_at;
  // Kinde rotates refresh tokens on every use: keep the new one, or the next refresh fails.
  if (!fresh->refresh_token.empty()) tokens["refresh_token"] = fresh->refresh_token;
  auto access = session_access_claims(oidc, fresh->access_token, now);
  if (access) {
    s.data["access_claims"] = *access;
  } else if (!is_provider_outage(access.error())) {
    s.data["access_claims"] = nlohmann::json::object();  // opaque or unverifiable: no claims from it
  }
  log_debug("tokens refreshed for a session");
  return Refresh::refreshed;
}

// The members of a session a refresh writes: what the grace cache keeps and a late request adopts.
constexpr const char* kRefreshedMembers[] = {"tokens", "user", "id_claims", "access_claims"};

// Refreshes under the session's lock; false when the session must end. A result kept for the same
// spent refresh token (a request whose write was lost, or one that ran while this one's lock had
// lapsed) is adopted instead of spending the token a second time, which a rotating provider answers
// with invalid_grant, ending the session. A new result is kept for later requests before it is written.
bool refresh_session(AppParts& p, Session& s, std::int64_t now) {
  const std::string spent = s.data["tokens"].value("refresh_token", std::string());
  auto kept = p.sessions->refresh_result(s.id, spent, now);
  if (!kept) log_warn("refresh grace cache not readable: " + kept.error().detail);
  if (kept && *kept) {
    for (const char* m : kRefreshedMembers)
      if (auto it = (*kept)->find(m); it != (*kept)->end()) s.data[m] = *it;
    log_info("refresh token already spent by another request: its result is reused");
    // Its tokens may be due themselves (short-lived): then refresh with the token it brought.
    if (!needs_refresh(s, now)) return true;
  }
  const std::string presented = s.data["tokens"].value("refresh_token", std::string());
  const Refresh r = refresh_tokens(*p.oidc, s, now, p.config.refresh_retry_seconds);
  // Kept only when the provider rotated the token: one that was not spent may be presented again.
  if (r == Refresh::refreshed && s.data["tokens"].value("refresh_token", std::string()) != presented) {
    nlohmann::json result = nlohmann::json::object();
    for (const char* m : kRefreshedMembers)
      if (auto it = s.data.find(m); it != s.data.end()) result[m] = *it;
    if (auto k = p.sessions->keep_refresh_result(s.id, presented, result, now); !k)
      log_warn("refresh result not kept for the grace period: " + k.error().detail);
  }
  return r != Refresh::ended;
}

// Writes last_used and, when due, refreshes the tokens, all under the session's lock. `ended`: the
// provider refused the refresh and the session is gone.
Result<std::optional<Session>> touch_and_refresh(AppParts& p, const std::string& id, std::int64_t now, bool& ended) {
  bool refreshed = false;
  auto change = [&](std::optional<Session>& cur) {
    if (!cur) return false;
    cur->last_used = now;
    // Re-check under the lock: another process may have refreshed already.
    if (p.oidc && needs_refresh(*cur, now)) {
      // The lock lives provider_calls_budget_ms + a margin from now: every provider call ends before it.
      ProviderDeadline deadline(*p.oidc, p.clock->monotonic_ms() + provider_calls_budget_ms(p.config));
      refreshed = true;
      if (!refresh_session(p, *cur, now)) {
        cur.reset();
        ended = true;
      }
    }
    return true;
  };
  auto updated = p.sessions->update(id, now, change);
  if (!updated && refreshed && !ended) {
    // The write after a refresh failed (the lock lapsed, Redis blinked): once more, which adopts the
    // result kept for the grace period instead of losing the new tokens.
    log_warn("session write after a refresh failed, trying once more: " + updated.error().detail);
    updated = p.sessions->update(id, now, change);
  }
  return updated;
}

}  // namespace

nlohmann::json user_from_id_claims(const nlohmann::json& c, const nlohmann::json& previous) {
  // A refreshed ID token may carry fewer claims than the first one (OpenID Connect Core 12.2 does
  // not require them again): what it leaves out is kept, what it carries wins.
  auto str = [&](const char* claim, const char* field) -> std::string {
    if (auto it = c.find(claim); it != c.end() && it->is_string()) return it->get<std::string>();
    if (!previous.is_object()) return {};
    if (auto old = previous.find(field); old != previous.end() && old->is_string()) return old->get<std::string>();
    return {};
  };
  return {{"id", str("sub", "id")},          {"given_name", str("given_name", "given_name")},
          {"family_name", str("family_name", "family_name")}, {"email", str("email", "email")},
          {"picture", str("picture", "picture")}, {"name", str("name", "name")}};
}

Result<nlohmann::json> session_access_claims(OidcClient& oidc, const std::string& access_token, std::int64_t now) {
  // An opaque access token is not introspected for a session: the session's identity is the ID token's (and
  // UserInfo's), and an introspection per sign-in and refresh would buy nothing a page shows.
  if (!looks_like_jwt(access_token)) return make_error(kTokenOpaque, "the access token is not a JWT");
  return oidc.verify_access_token(access_token, now);
}

std::optional<Session> App::load_session(Ctx& ctx) {
  const Request& req = ctx.req;
  AppParts& p = parts();

  // A bearer token decides over a cookie (machine clients; RFC 6750), even an empty or malformed one.
  if (auto bearer = req.bearer_token()) {
    if (bearer->empty()) {
      ctx.bearer_error = make_error(kBearerEmpty, "the Authorization header names the Bearer scheme but no token");
      log_info("bearer token rejected: " + ctx.bearer_error->code);
      return std::nullopt;
    }
    const std::string token(*bearer);
    if (!p.oidc) {
      ctx.bearer_error = make_error(kBearerUnsupported, "no provider configured");
      return std::nullopt;
    }
    auto claims = p.oidc->verify_access_token(token, ctx.now);
    if (!claims) {
      log_info("bearer token rejected: " + claims.error().code + ": " + claims.error().detail);
      ctx.bearer_error = claims.error();
      return std::nullopt;
    }
    Identity id;
    id.from_bearer = true;
    id.access_claims = std::move(*claims);
    ctx.identity = std::move(id);
    return std::nullopt;
  }

  auto cookie = req.cookie(session_cookie_name(req));
  if (!cookie || cookie->empty()) return std::nullopt;
  if (!is_valid_session_id(*cookie)) {
    log_debug("session cookie of the wrong shape ignored");
    return std::nullopt;
  }
  auto loaded = p.sessions->load(*cookie, ctx.now);
  if (!loaded) {
    ctx.store_error = loaded.error();  // the caller logs it and answers App::store_unavailable
    return std::nullopt;
  }
  if (!*loaded) {
    // Unknown or expired: clear the stale cookie so the browser stops sending it.
    ctx.set_cookies.push_back(session_cookie(req, "", true));
    return std::nullopt;
  }
  std::optional<Session> s = std::move(*loaded);
  if (!s->data.contains("user")) return s;  // not signed in (should not happen: only sign-in creates sessions)

  bool refresh = p.oidc && needs_refresh(*s, ctx.now);
  bool touch = ctx.now - s->last_used >= kTouchInterval;
  if (refresh || touch) {
    // Discovery and the keys are read (or fetched) before the lock, so under it only the token call waits.
    if (refresh) p.oidc->warm_up();
    bool ended = false;
    auto updated = touch_and_refresh(p, s->id, ctx.now, ended);
    if (!updated) {
      ctx.store_error = updated.error();
      return std::nullopt;
    }
    if (ended || !*updated) {
      ctx.set_cookies.push_back(session_cookie(req, "", true));
      return std::nullopt;
    }
    s = std::move(*updated);
  }
  ctx.identity = identity_from_session(*s, ctx.now);
  return s;
}

}  // namespace kinde
