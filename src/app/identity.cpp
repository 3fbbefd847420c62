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

// True when the session's access token has expired and nothing can renew it (no refresh token).
bool access_token_lapsed(const SignedIn& rec, std::int64_t now) {
  const std::int64_t exp = rec.tokens.expires_at;
  return exp != 0 && exp <= now && rec.tokens.refresh_token.empty();
}

bool needs_refresh(const SignedIn& rec, std::int64_t now) {
  // A provider that just failed is not asked again at once: every request would wait a timeout.
  if (rec.retry_at && *rec.retry_at > now) return false;
  const std::int64_t exp = rec.tokens.expires_at;
  return exp != 0 && exp - kRefreshMargin <= now && !rec.tokens.refresh_token.empty();
}

enum class Refresh { refreshed, retry_later, ended };

// A refreshed ID token's claims onto the record; false when they must end the session. Unverifiable for an
// outage: the record keeps its claims (and its ID token).
bool adopt_refreshed_id_token(OidcClient& oidc, SignedIn& rec, const std::string& id_token, std::int64_t now) {
  auto claims = oidc.verify_id_token(id_token, "", now);
  if (!claims && is_provider_outage(claims.error())) {
    // The keys cannot be fetched right now. The token came straight from the token endpoint over
    // TLS (OpenID Connect Core 3.1.3.7 allows trusting that), and the old refresh token is already
    // spent: keep the new tokens and the old verified claims rather than lose the session.
    log_warn("refreshed ID token not verifiable now (" + claims.error().code + "); keeping the previous claims");
    return true;
  }
  if (!claims) {
    log_warn("refreshed ID token rejected: " + claims.error().code + ": " + claims.error().detail);
    return false;
  }
  // OpenID Connect Core 12.2: a refreshed ID token must keep iss and sub.
  const auto& old = rec.id_claims;
  if (claims->value("iss", "") != old.value("iss", "") || claims->value("sub", "") != old.value("sub", "")) {
    log_warn("refreshed ID token changed iss or sub: ending session");
    return false;
  }
  rec.tokens.id_token = id_token;
  // The user's details follow the newest ID token (a changed name, email or picture shows).
  rec.user = user_from_id_claims(*claims, rec.user);
  rec.id_claims = std::move(*claims);
  return true;
}

// Refreshes the record's tokens inside the store's lock. `ended` when the provider definitively
// refused (the session must end); `retry_later` when it could not be asked (kept for a retry).
Refresh refresh_tokens(OidcClient& oidc, SignedIn& rec, std::int64_t now, std::int64_t retry_after) {
  auto fresh = oidc.refresh(rec.tokens.refresh_token);
  if (!fresh) {
    if (fresh.error().code == kTokenError) {
      log_info("refresh refused by provider (" + fresh.error().detail + "): ending session");
      return Refresh::ended;
    }
    // Provider down or slow: keep the session; a request after retry_after seconds tries again.
    log_warn("refresh failed, keeping session for a retry: " + fresh.error().code + ": " + fresh.error().detail);
    rec.retry_at = now + retry_after;
    return Refresh::retry_later;
  }
  rec.retry_at.reset();
  if (!fresh->id_token.empty() && !adopt_refreshed_id_token(oidc, rec, fresh->id_token, now)) return Refresh::ended;
  rec.tokens.access_token = fresh->access_token;
  rec.tokens.expires_at = fresh->expires_at;
  // Kinde rotates refresh tokens on every use: keep the new one, or the next refresh fails.
  if (!fresh->refresh_token.empty()) rec.tokens.refresh_token = fresh->refresh_token;
  auto access = session_access_claims(oidc, fresh->access_token, now);
  if (access) {
    rec.access_claims = std::move(*access);
  } else if (!is_provider_outage(access.error())) {
    rec.access_claims = nlohmann::json::object();  // opaque or unverifiable: no claims from it
  }
  log_debug("tokens refreshed for a session");
  return Refresh::refreshed;
}

// Refreshes under the session's lock; false when the session must end. A result kept for the same
// spent refresh token (a request whose write was lost, or one that ran while this one's lock had
// lapsed) is adopted instead of spending the token a second time, which a rotating provider answers
// with invalid_grant, ending the session. A new result is kept for later requests before it is written.
bool refresh_session(AppParts& p, const std::string& session_id, SignedIn& rec, std::int64_t now) {
  auto kept = p.sessions->refresh_result(session_id, rec.tokens.refresh_token, now);
  if (!kept) log_warn("refresh grace cache not readable: " + kept.error().detail);
  if (kept && *kept) {
    if (!adopt_members(rec, **kept)) {
      log_warn("refresh grace cache holds a result of the wrong shape: not used");
    } else {
      log_info("refresh token already spent by another request: its result is reused");
      // Its tokens may be due themselves (short-lived): then refresh with the token it brought.
      if (!needs_refresh(rec, now)) return true;
    }
  }
  const std::string presented = rec.tokens.refresh_token;
  const Refresh r = refresh_tokens(*p.oidc, rec, now, p.config.refresh_retry_seconds);
  // Kept only when the provider rotated the token: one that was not spent may be presented again.
  if (r == Refresh::refreshed && rec.tokens.refresh_token != presented) {
    if (auto k = p.sessions->keep_refresh_result(session_id, presented, record_to_json(rec), now); !k)
      log_warn("refresh result not kept for the grace period: " + k.error().detail);
  }
  return r != Refresh::ended;
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

namespace {

// The caller an Authorization: Bearer token names (caller.identity), or why it is refused (caller.bearer_error).
void load_bearer(AppParts& p, Caller& caller, std::string_view bearer, std::int64_t now) {
  if (bearer.empty()) {
    caller.bearer_error = make_error(kBearerEmpty, "the Authorization header names the Bearer scheme but no token");
    log_info("bearer token rejected: " + caller.bearer_error->code);
    return;
  }
  if (!p.oidc) {
    caller.bearer_error = make_error(kBearerUnsupported, "no provider configured");
    return;
  }
  auto claims = p.oidc->verify_access_token(std::string(bearer), now);
  if (!claims) {
    log_info("bearer token rejected: " + claims.error().code + ": " + claims.error().detail);
    caller.bearer_error = claims.error();
    return;
  }
  Identity id;
  id.from_bearer = true;
  id.bearer_claims = std::move(*claims);
  caller.identity = std::move(id);
}

// Under the store's lock: writes last_used and refreshes the tokens when due. The session as stored after;
// nullopt when it is gone or ended (a refused refresh removes it); an Error when the store failed.
Result<std::optional<Session>> touch_and_refresh(AppParts& p, const std::string& id, std::int64_t now) {
  bool ended = false, refreshed = false;
  auto change = [&](std::optional<Session>& cur) {
    if (!cur) return false;
    cur->last_used = now;
    if (!p.oidc) return true;
    // Re-check under the lock: another process may have refreshed already.
    std::optional<SignedIn> rec = signed_in_from(cur->data);
    if (!rec || !needs_refresh(*rec, now)) return true;
    // The lock lives provider_calls_budget_ms + a margin from now: every provider call ends before it.
    ProviderDeadline deadline(*p.oidc, p.clock->monotonic_ms() + provider_calls_budget_ms(p.config));
    refreshed = true;
    if (!refresh_session(p, cur->id, *rec, now)) {
      cur.reset();
      ended = true;
      return true;
    }
    cur->data = record_to_json(*rec);
    return true;
  };
  auto updated = p.sessions->update(id, now, change);
  if (!updated && refreshed && !ended) {
    // The write after a refresh failed (the lock lapsed, Redis blinked): once more, which adopts the
    // result kept for the grace period instead of losing the new tokens.
    log_warn("session write after a refresh failed, trying once more: " + updated.error().detail);
    updated = p.sessions->update(id, now, change);
  }
  if (!updated) return updated.error();
  if (ended) return std::optional<Session>{};
  return std::move(*updated);
}

// The caller a signed-in record names: the record is shared, not copied.
Identity identity_from_record(std::shared_ptr<const SignedIn> rec, const std::string& session_id, std::int64_t now) {
  Identity id;
  id.session_id = session_id;
  // Without a refresh token the session lives on with the ID token's identity until its own lifetime ends, but
  // what the access token granted (permissions, organisation, feature flags, roles) stops counting when it expires:
  // the provider might no longer grant it, and nothing here can ask.
  id.access_lapsed = access_token_lapsed(*rec, now) && !rec->access_claims.empty();
  if (id.access_lapsed) log_debug("session's access token expired without a refresh token: its claims no longer count");
  id.record = std::move(rec);
  return id;
}

}  // namespace

namespace {
const nlohmann::json kNoClaims;                               // null: what a bearer caller has no ID token for
const nlohmann::json kEmptyClaims = nlohmann::json::object();  // a lapsed access token's claims
}  // namespace

const nlohmann::json& Identity::user() const { return record ? record->user : kNoClaims; }
const nlohmann::json& Identity::id_claims() const { return record ? record->id_claims : kNoClaims; }
const nlohmann::json& Identity::access_claims() const {
  if (!record) return bearer_claims;
  return access_lapsed ? kEmptyClaims : record->access_claims;
}

void attach_caller(Ctx& ctx, Caller&& caller) {
  if (caller.identity && caller.identity->record) ctx.session_tokens = caller.identity->record->tokens;
  ctx.session = std::move(caller.session);
  ctx.identity = std::move(caller.identity);
  ctx.bearer_error = std::move(caller.bearer_error);
  ctx.store_error = std::move(caller.store_error);
  if (caller.clear_cookie) ctx.set_cookies.push_back(std::move(*caller.clear_cookie));
}

Caller App::load_session(const Request& req, std::int64_t now) {
  Caller caller;
  AppParts& p = parts();

  // A bearer token decides over a cookie (machine clients; RFC 6750), even an empty or malformed one.
  if (auto bearer = req.bearer_token()) {
    load_bearer(p, caller, *bearer, now);
    return caller;
  }
  auto cookie = req.cookie(session_cookie_name(req));
  if (!cookie || cookie->empty()) return caller;
  if (!is_valid_session_id(*cookie)) {
    log_debug("session cookie of the wrong shape ignored");
    return caller;
  }
  // Unknown or expired: clear the stale cookie so the browser stops sending it.
  auto clear = [&]() {
    caller.clear_cookie = session_cookie(req, "", true);
    return caller;
  };
  auto loaded = p.sessions->load_record(*cookie, now);
  if (!loaded) {
    caller.store_error = loaded.error();  // the caller logs it and answers App::store_unavailable
    return caller;
  }
  if (!*loaded) return clear();
  LoadedRecord l = std::move(**loaded);
  if (!l.record) {  // not signed in (should not happen: only sign-in creates sessions)
    caller.session = std::move(l.session);
    return caller;
  }
  const bool refresh = p.oidc && needs_refresh(*l.record, now);
  if (refresh || now - l.session.last_used >= kTouchInterval) {
    // Discovery and the keys are read (or fetched) before the lock, so under it only the token call waits.
    if (refresh) p.oidc->warm_up();
    auto updated = touch_and_refresh(p, l.session.id, now);
    if (!updated) {
      caller.store_error = updated.error();
      return caller;
    }
    if (!*updated) return clear();
    l = to_loaded_record(std::move(**updated));
    if (!l.record) {
      caller.session = std::move(l.session);
      return caller;
    }
  }
  caller.identity = identity_from_record(std::move(l.record), l.session.id, now);
  caller.session = std::move(l.session);
  return caller;
}

}  // namespace kinde
