// /login, /register, /create-org, /callback, /logout (and the FastAPI tutorial's /api/auth/* aliases).
//
// A sign-in in progress lives in the browser, never on the server: /login seals state, nonce, PKCE
// verifier, `next` and redirect_uri into a cookie of its own (kinde_fcgi_auth_<tag>, tag from the
// state), AES-256-GCM under the session key, so any server sharing KINDE_SESSION_SECRET finishes it.
// The callback finds the cookie by its state, opens it, compares the state inside, and removes it.
#include <algorithm>
#include <utility>

#include "app/app.hpp"
#include "app/session_tokens.hpp"
#include "util/encoding.hpp"
#include "oidc/authorize.hpp"
#include "oidc/token_checks.hpp"
#include "session/sealed.hpp"
#include "util/log.hpp"
#include "util/url.hpp"
#include "util/text.hpp"

namespace kinde {
namespace {

constexpr std::int64_t kSignInLifetime = 900;   // a sign-in must finish within 15 minutes
constexpr std::int64_t kClockSkew = 60;         // servers behind one balancer may disagree this much
constexpr std::size_t kMaxSignIns = 5;          // sign-in cookies per browser at once; the oldest goes
constexpr std::size_t kTagLength = 16;          // hex characters of SHA-256(state) in the cookie name
constexpr std::size_t kMaxNextLength = 2000;    // keeps the sealed cookie under the browsers' 4 KB
constexpr std::size_t kGcBudget = 20;           // expired sessions removed per sign-in (no cron needed)

// Query parameters a visitor may pass on to the provider (Kinde's documented extras).
constexpr const char* kPassThrough[] = {"org_code", "audience", "lang", "login_hint", "connection_id",
                                        "invitation_code"};


bool plain_value(const std::string& v) {
  if (v.empty() || v.size() > 256 || !is_valid_utf8(v)) return false;
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

Response provider_unavailable(App& app, const Request& req, const Error& e) {
  log_error("provider unavailable: " + e.code + ": " + e.detail);
  return app.error_page(req, 503, "Sign-in is unavailable",
                        "The sign-in provider cannot be reached right now. Please try again in a moment.");
}

// One sign-in in progress, as sealed into its cookie.
struct PendingSignIn {
  std::string state, nonce, verifier, next, redirect_uri;
  std::int64_t created = 0;
};

// The cookie-name tag of a state: a state is public (it travels in URLs), the tag only names the cookie.
std::string signin_tag(const std::string& state) { return session_id_hash(state).substr(0, kTagLength); }

std::string seal_pending(Sealer& sealer, const PendingSignIn& p, const std::string& cookie_name) {
  nlohmann::json j = {{"s", p.state}, {"n", p.nonce}, {"v", p.verifier}, {"x", p.next}, {"r", p.redirect_uri},
                      {"t", p.created}};
  // replace: a base path that is not UTF-8 must not throw out of a login (next itself always is).
  return sealer.seal(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), cookie_name);
}

// Opens a sign-in cookie: authentic (sealed under our key, for this cookie name), well-formed, and
// named after the state it holds. Its age is the caller's to judge.
Result<PendingSignIn> open_pending(const Sealer& sealer, const std::string& cookie_name, const std::string& value,
                                   const std::string& family) {
  auto plain = sealer.open(value, cookie_name);
  if (!plain) return plain.error();
  auto j = nlohmann::json::parse(*plain, nullptr, false);
  auto str = [&](const char* k) { return j.is_object() && j.contains(k) && j[k].is_string(); };
  if (!str("s") || !str("n") || !str("v") || !str("x") || !str("r") || !j.contains("t") ||
      !j["t"].is_number_integer()) {
    return make_error(kSealedInvalid, "sign-in cookie payload is malformed");
  }
  PendingSignIn p{j["s"], j["n"], j["v"], j["x"], j["r"], j["t"].get<std::int64_t>()};
  if (cookie_name != family + signin_tag(p.state)) return make_error(kSealedInvalid, "cookie name does not match its state");
  return p;
}

bool too_old(const PendingSignIn& p, std::int64_t now) {
  return now - p.created > kSignInLifetime || p.created > now + kClockSkew;
}

}  // namespace

namespace {

// The provider parameters this login adds (sign-up, a new organisation, the visitor's pass-through values,
// the configured org_code and audience) into `extra`; a 400 page when a value is repeated or not plain.
std::optional<Response> login_extras(App& app, const Request& req, Params& extra) {
  const Config& cfg = app.parts().config;
  if (ends_with(req.path_info, "/register")) extra.emplace_back("prompt", "create");
  if (ends_with(req.path_info, "/create-org")) {
    extra.emplace_back("prompt", "create");
    extra.emplace_back("is_create_org", "true");
    if (auto name = find_param(req.query, "org_name")) {
      if (!plain_value(*name)) return app.error_page(req, 400, "Bad request", "org_name is not a plain value");
      extra.emplace_back("org_name", *name);
    }
  }
  for (const char* key : kPassThrough) {
    std::size_t n = count_param(req.query, key);
    if (n > 1) return app.error_page(req, 400, "Bad request", std::string("repeated parameter ") + key);
    if (n == 1) {
      std::string v = *find_param(req.query, key);
      if (!plain_value(v)) return app.error_page(req, 400, "Bad request", std::string(key) + " is not a plain value");
      extra.emplace_back(key, v);
    } else if (std::string_view(key) == "org_code" && !cfg.org_code.empty()) {
      extra.emplace_back("org_code", cfg.org_code);
    } else if (std::string_view(key) == "audience" && !cfg.audience.empty()) {
      extra.emplace_back("audience", cfg.audience);
    }
  }
  return std::nullopt;
}

// This browser's other sign-ins in progress: one cookie each, at most kMaxSignIns at once (the
// oldest goes first), stale ones cleared. Cookies of the family that do not open under our key
// (another app on the same host and path, or damage) are left alone: they expire by themselves.
void prune_sign_ins(App& app, Ctx& ctx, const std::string& family) {
  const Request& req = ctx.req;
  std::vector<std::pair<std::int64_t, std::string>> live;  // (created, cookie name)
  std::vector<std::string> seen;
  for (const auto& [name, value] : req.cookies) {
    if (name.size() != family.size() + kTagLength || name.compare(0, family.size(), family) != 0) continue;
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
    seen.push_back(name);
    auto other = open_pending(*app.parts().sealer, name, value, family);
    if (!other) continue;
    if (too_old(*other, ctx.now)) ctx.set_cookies.push_back(app.cookie(req, name, "", 0));
    else live.emplace_back(other->created, name);
  }
  std::sort(live.begin(), live.end());
  for (std::size_t i = 0; i + kMaxSignIns <= live.size(); ++i) {
    log_debug("more than " + std::to_string(kMaxSignIns - 1) + " sign-ins under way in one browser: the oldest is dropped");
    ctx.set_cookies.push_back(app.cookie(req, live[i].second, "", 0));
  }
}

}  // namespace

Response handle_login(App& app, Ctx& ctx) {
  const Request& req = ctx.req;
  AppParts& p = app.parts();
  const Config& cfg = p.config;
  if (!p.oidc) return app.error_page(req, 503, "Sign-in is unavailable", "No provider is configured.");

  Params extra;
  if (auto refused = login_extras(app, req, extra)) return std::move(*refused);
  if (count_param(req.query, "next") > 1) return app.error_page(req, 400, "Bad request", "repeated parameter next");
  std::string next = safe_next_path(find_param(req.query, "next").value_or(app.url(req, "/")));

  auto meta = p.oidc->metadata();
  if (!meta) return provider_unavailable(app, req, meta.error());

  if (next.size() > kMaxNextLength) {
    log_info("next is " + std::to_string(next.size()) + " bytes: landing on the home page after sign-in instead");
    next = app.url(req, "/");
  }
  if (!p.sealer) return app.error_page(req, 503, "Sign-in is unavailable", "No session key is configured.");

  const std::string family = app.signin_cookie_name(req, "");
  prune_sign_ins(app, ctx, family);

  AuthorizeRequest ar;
  ar.client_id = cfg.client_id;
  ar.redirect_uri = cfg.callback_url;
  ar.scope = cfg.scopes;
  ar.state = p.random->token();
  ar.nonce = p.random->token();
  ar.code_verifier = p.random->token();
  ar.extra = std::move(extra);

  PendingSignIn pending{ar.state, ar.nonce, ar.code_verifier, next, ar.redirect_uri, ctx.now};
  const std::string name = family + signin_tag(ar.state);
  Response r = redirect_response(build_authorize_url(meta->authorization_endpoint, ar));
  ctx.set_cookies.push_back(app.cookie(req, name, seal_pending(*p.sealer, pending, name), kSignInLifetime));
  return r;
}

namespace {

// Kinde's expired magic link: restart the sign-in with the values it sent back.
Response restart_expired_login(App& app, const Request& req) {
  std::string raw = find_param(req.query, "reauth_state").value_or("");
  std::string b64 = raw;
  for (auto& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  auto decoded = base64url_decode(b64);
  nlohmann::json state = decoded ? nlohmann::json::parse(*decoded, nullptr, false) : nlohmann::json();
  Params q;
  if (state.is_object()) {
    for (const char* key : kPassThrough)
      if (auto it = state.find(key); it != state.end() && it->is_string()) q.emplace_back(key, *it);
  }
  log_info("sign-in link expired: restarting the sign-in");
  std::string target = app.url(req, "/login") + (q.empty() ? "" : "?" + build_query(q));
  return redirect_response(target);
}

// The page's words for a provider's error code (RFC 6749 4.1.2.1, OpenID Connect Core 3.1.2.6). The
// code arrives in a URL anyone can craft: an unknown one gets fixed words, and the raw value (and
// error_description) goes to the log only.
std::string provider_error_message(const std::string& code) {
  static constexpr std::pair<const char*, const char*> kWords[] = {
      {"access_denied", "Sign-in was cancelled."},
      {"temporarily_unavailable", "The sign-in provider had a problem. Please try again in a moment."},
      {"server_error", "The sign-in provider had a problem. Please try again in a moment."},
      {"login_required", "The sign-in provider needs you to sign in again."},
      {"interaction_required", "The sign-in provider needs you to sign in again."},
      {"consent_required", "The sign-in provider needs you to sign in again."},
      {"account_selection_required", "The sign-in provider needs you to sign in again."},
  };
  for (const auto& [known, words] : kWords)
    if (code == known) return words;
  return "The sign-in provider could not complete the sign-in.";
}

// True when the ID token names the user: name, given_name, family_name or email (a non-empty string).
bool has_profile_claims(const nlohmann::json& claims) {
  for (const char* k : {"name", "given_name", "family_name", "email"})
    if (auto it = claims.find(k); it != claims.end() && it->is_string() && !it->get_ref<const std::string&>().empty())
      return true;
  return false;
}

// The user record with UserInfo's claims (OpenID Connect Core 5.3) when the ID token names nobody and the provider
// lists a userinfo_endpoint (LemonLDAP by default, Google for some scopes); called once per sign-in. A failure only
// leaves the record as it was: the sign-in itself is verified.
nlohmann::json with_userinfo(OidcClient& oidc, const nlohmann::json& id_claims, const std::string& access_token,
                             nlohmann::json user) {
  if (has_profile_claims(id_claims)) return user;
  auto meta = oidc.metadata();
  if (!meta || meta->userinfo_endpoint.empty()) return user;
  auto info = oidc.userinfo(access_token);
  if (!info) {
    log_warn("userinfo not used: " + info.error().code + ": " + info.error().detail);
    return user;
  }
  // Core 5.3.4: a UserInfo answer about another subject must not be used (a token substitution).
  const auto sub = info->find("sub");
  const auto id_sub = id_claims.find("sub");
  if (sub == info->end() || id_sub == id_claims.end() || *sub != *id_sub) {
    log_warn("userinfo not used: its sub is not the ID token's (OpenID Connect Core 5.3.4)");
    return user;
  }
  return user_from_id_claims(*info, user);
}

// Logged once per process: a provider that gives no refresh token gives none to anyone.
void note_no_refresh_token(const Config& cfg) {
  static std::atomic<bool> said{false};
  log_once(said, LogLevel::info,
           "the provider gave no refresh token (KINDE_SCOPES '" + cfg.scopes + "'; Kinde's scope for one is offline, "
           "most providers' offline_access): sessions keep the ID token's identity until they expire, but the access "
           "token's claims stop counting when it does (kinde.fcgi --check-config lists the scopes the provider knows)");
}

Response sign_in_again(App& app, const Request& req, int status, const std::string& title, const std::string& msg) {
  return app.page(req, status, "error", {{"status", status}, {"title", title}, {"message", msg}, {"retry", true}});
}

// This attempt's sign-in cookie, named after its state. It is removed ("spent") once the callback has an
// answer (success or a definite failure) and kept only when the provider could not be reached, so a reload
// can retry.
struct AttemptCookie {
  std::string family;                 // the name shared by all sign-in cookies (App::signin_cookie_name)
  std::string name;                   // "" when the state cannot name one
  std::optional<std::string> sealed;  // the browser's value, when it sent the cookie
};

AttemptCookie attempt_cookie(App& app, const Request& req, const std::string& state) {
  AttemptCookie c;
  c.family = app.signin_cookie_name(req, "");
  if (is_valid_session_id(state)) {
    c.name = c.family + signin_tag(state);
    c.sealed = req.cookie(c.name);
  }
  return c;
}

void spend(App& app, Ctx& ctx, const AttemptCookie& c) {
  if (c.sealed) ctx.set_cookies.push_back(app.cookie(ctx.req, c.name, "", 0));
}

// Refuses a callback that repeats a parameter or names another provider; nullopt when it may go on.
std::optional<Response> refuse_bad_callback(App& app, const Request& req) {
  AppParts& p = app.parts();
  if (!p.oidc || !p.sealer) return app.error_page(req, 503, "Sign-in is unavailable", "No provider is configured.");
  // Repeated parameters are an attack or a broken client: never pick one (RFC 6749 3.1).
  for (const char* key : {"state", "code", "error", "iss"}) {
    if (count_param(req.query, key) > 1)
      return app.error_page(req, 400, "Bad request", std::string("repeated parameter ") + key);
  }
  // RFC 9207 2.4: an authorization response naming an issuer must name ours (a mix-up attack sends
  // another provider's response here); an error response included. Compared as the provider
  // states it in discovery (which must equal KINDE_ISSUER_URL) or as configured.
  if (auto iss = find_param(req.query, "iss")) {
    bool ours = *iss == p.config.issuer;
    if (!ours) {
      auto meta = p.oidc->metadata();
      ours = meta && !meta->issuer.empty() && *iss == meta->issuer;
    }
    if (!ours) {
      log_warn("callback iss is not the configured issuer (RFC 9207): " + iss->substr(0, 200));
      return app.error_page(req, 400, "Bad request", "This sign-in response comes from another provider.");
    }
  }
  return std::nullopt;
}

Response sign_in_expired(App& app, const Request& req) {
  return sign_in_again(app, req, 400, "Sign-in expired",
                       "This sign-in was already used, has expired, or was started in another browser. "
                       "Please sign in again.");
}

// Takes the pending sign-in this callback answers (its cookie, found by the state, opened and checked) into
// `out`; a Response when the callback ends here: the provider's error, an expired link, no or a bad cookie.
std::optional<Response> take_pending_sign_in(App& app, Ctx& ctx, const AttemptCookie& cookie, const std::string& state,
                                             PendingSignIn& out) {
  const Request& req = ctx.req;
  const std::string error = find_param(req.query, "error").value_or("");
  if (error == "login_link_expired") {
    spend(app, ctx, cookie);
    return restart_expired_login(app, req);
  }
  if (!error.empty()) {
    spend(app, ctx, cookie);
    std::string desc = find_param(req.query, "error_description").value_or("");
    log_info("provider returned error " + error.substr(0, 200) + (desc.empty() ? "" : ": " + desc.substr(0, 500)));
    return sign_in_again(app, req, 400, "Sign-in did not complete", provider_error_message(error));
  }
  if (state.empty()) return app.error_page(req, 400, "Bad request", "The callback has no state parameter.");
  // Login CSRF (RFC 6749 10.12): without this browser's cookie for this state, nothing goes on. A
  // replayed callback finds no cookie either: the first one removed it.
  if (!cookie.sealed) {
    log_info("callback without its sign-in cookie: the state is unknown to this browser, used, or expired");
    return sign_in_expired(app, req);
  }
  auto pending = open_pending(*app.parts().sealer, cookie.name, *cookie.sealed, cookie.family);
  if (!pending || !constant_time_equal(pending->state, state)) {
    spend(app, ctx, cookie);
    log_warn("sign-in cookie rejected: " + (pending ? std::string("it holds another state") : pending.error().detail));
    return sign_in_expired(app, req);
  }
  if (too_old(*pending, ctx.now)) {
    spend(app, ctx, cookie);
    return sign_in_again(app, req, 400, "Sign-in expired", "This sign-in took too long. Please sign in again.");
  }
  if (count_param(req.query, "code") != 1) {
    spend(app, ctx, cookie);
    return app.error_page(req, 400, "Bad request", "The callback has no code parameter.");
  }
  out = std::move(*pending);
  return std::nullopt;
}

// Exchanges the code and verifies what comes back into the signed-in record `out`; a Response when the
// provider refuses or cannot be reached, or the ID token fails a check.
std::optional<Response> exchange_and_verify(App& app, Ctx& ctx, const AttemptCookie& cookie,
                                            const PendingSignIn& pending, SignedIn& out) {
  const Request& req = ctx.req;
  AppParts& p = app.parts();
  auto tokens = p.oidc->exchange_code(*find_param(req.query, "code"), pending.verifier, pending.redirect_uri);
  if (!tokens) {
    if (tokens.error().code == kTokenError) {
      spend(app, ctx, cookie);
      log_warn("code exchange refused: " + tokens.error().detail);
      return sign_in_again(app, req, 400, "Sign-in failed", "The provider refused the sign-in code. Please sign in again.");
    }
    return provider_unavailable(app, req, tokens.error());
  }
  auto claims = p.oidc->verify_id_token(tokens->id_token, pending.nonce, ctx.now);
  if (!claims) {
    // Keys we could not fetch say nothing about the token: that is an outage (503), not a forgery (401).
    if (is_provider_outage(claims.error())) return provider_unavailable(app, req, claims.error());
    spend(app, ctx, cookie);
    log_warn("ID token rejected: " + claims.error().code + ": " + claims.error().detail);
    return app.error_page(req, 401, "Sign-in failed", "The identity token could not be verified (" +
                                                          claims.error().code + ").");
  }
  auto access = session_access_claims(*p.oidc, tokens->access_token, ctx.now);
  if (!access) log_debug("access token claims not used: " + access.error().code);
  if (tokens->refresh_token.empty()) note_no_refresh_token(p.config);
  out.user = with_userinfo(*p.oidc, *claims, tokens->access_token, user_from_id_claims(*claims));
  out.tokens = {tokens->access_token, tokens->id_token, tokens->refresh_token, tokens->expires_at};
  out.id_claims = std::move(*claims);
  if (access) out.access_claims = std::move(*access);
  return std::nullopt;
}

// Stores the new session (a new id at every sign-in: no fixation), ends the browser's old one, and sends the
// browser on to where the sign-in began.
Response finish_sign_in(App& app, Ctx& ctx, const AttemptCookie& cookie, const PendingSignIn& pending,
                        const SignedIn& rec) {
  const Request& req = ctx.req;
  AppParts& p = app.parts();
  Session s;
  s.id = p.random->token();
  s.created = s.last_used = ctx.now;
  s.data = record_to_json(rec);
  // The first write of this sign-in: nothing was stored before it.
  if (auto saved = p.sessions->save(s); !saved) return app.store_unavailable(req, saved.error());
  if (auto old = req.cookie(app.session_cookie_name(req)); old && is_valid_session_id(*old)) {
    if (auto removed = p.sessions->remove(*old); !removed) log_warn("old session not removed: " + removed.error().detail);
  }
  if (auto gc = p.sessions->collect_expired(ctx.now, kGcBudget); !gc) log_warn("session gc: " + gc.error().detail);
  log_info("signed in user " + rec.user.value("id", std::string()));
  spend(app, ctx, cookie);
  Response r = redirect_response(pending.next, 303);
  ctx.set_cookies.push_back(app.session_cookie(req, s.id, false));
  return r;
}

}  // namespace

// The callback in its named steps: refuse a bad one, take the pending sign-in, exchange and verify, finish.
Response handle_callback(App& app, Ctx& ctx) {
  if (auto refused = refuse_bad_callback(app, ctx.req)) return std::move(*refused);
  const std::string state = find_param(ctx.req.query, "state").value_or("");
  const AttemptCookie cookie = attempt_cookie(app, ctx.req, state);
  PendingSignIn pending;
  if (auto ended = take_pending_sign_in(app, ctx, cookie, state, pending)) return std::move(*ended);
  SignedIn rec;
  if (auto ended = exchange_and_verify(app, ctx, cookie, pending, rec)) return std::move(*ended);
  return finish_sign_in(app, ctx, cookie, pending, rec);
}

Response handle_logout(App& app, Ctx& ctx) {
  const Request& req = ctx.req;
  AppParts& p = app.parts();
  const Config& cfg = p.config;
  // Fetch Metadata (W3C, Sec-Fetch-Site): a sign-out another site started (a link, an image, a form)
  // ends nothing; the visitor gets a Sign out button that posts here from our own page. Same-origin,
  // `none` (typed, bookmarked) and clients that send no Fetch Metadata sign out at once, so the
  // tutorials' <a href="/logout"> keeps working.
  if (const std::string site = req.header("sec-fetch-site"); site == "cross-site" || site == "same-site") {
    log_info("sign-out requested by another site (Sec-Fetch-Site: " + site + "): asking the visitor first");
    return app.page(req, req.method == "POST" ? 403 : 200, "logout",
                    {{"title", "Sign out?"}, {"action", req.base_path + req.path_info},
                     {"signed_in", ctx.session.has_value()}});
  }
  std::string id_token, refresh_token;
  if (ctx.session) {
    id_token = ctx.session_tokens.id_token;
    refresh_token = ctx.session_tokens.refresh_token;
    if (auto removed = p.sessions->remove(ctx.session->id); !removed) {
      return app.store_unavailable(req, removed.error());
    }
    log_info("signed out");
  }
  ctx.set_cookies.push_back(app.session_cookie(req, "", true));
  if (!p.oidc) return redirect_response(app.url(req, "/"), 303);
  ProviderMetadata meta;
  if (auto m = p.oidc->metadata()) meta = *m;  // without discovery: Kinde's /logout, the configured one, or none
  if (!refresh_token.empty() && !meta.revocation_endpoint.empty()) {
    // RFC 7009: the refresh token must not outlive the sign-out. The session is already gone, so a failure
    // (or a timeout, a few seconds at most) is logged and the sign-out goes on.
    if (auto revoked = p.oidc->revoke_refresh_token(refresh_token); !revoked)
      log_warn("refresh token not revoked at sign-out: " + revoked.error().code + ": " + revoked.error().detail);
  }
  const std::string endpoint = provider_logout_endpoint(meta, cfg.issuer, cfg.end_session_endpoint);
  if (endpoint.empty()) {
    static std::atomic<bool> said{false};
    log_once(said, LogLevel::info,
             "the provider lists no end_session_endpoint (and KINDE_END_SESSION_ENDPOINT is unset): sign-out ends "
             "the app's session only and returns to " + app.home_url(req));
    return redirect_response(app.home_url(req), 303);
  }
  // The state is not checked on return: KINDE_LOGOUT_URL may be any page, not a route of the app, and nothing
  // rides on it (the session is already gone). It is sent because some providers return only with one.
  return redirect_response(build_logout_url(endpoint, cfg.client_id, app.home_url(req), id_token, p.random->token()),
                           303);
}

}  // namespace kinde
