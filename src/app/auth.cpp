// /login, /register, /create-org, /callback, /logout (and the FastAPI tutorial's /api/auth/* aliases).
#include <utility>

#include <openssl/crypto.h>

#include "app/app.hpp"
#include "jose/base64url.hpp"
#include "oidc/authorize.hpp"
#include "util/log.hpp"
#include "util/url.hpp"

namespace kinde {
namespace {

constexpr const char* kBindingCookie = "kinde_fcgi_auth";
constexpr std::int64_t kPendingLifetime = 900;   // a sign-in must finish within 15 minutes
constexpr std::size_t kGcBudget = 20;            // expired sessions removed per sign-in (no cron needed)

// Query parameters a visitor may pass on to the provider (Kinde's documented extras).
constexpr const char* kPassThrough[] = {"org_code", "audience", "lang", "login_hint", "connection_id",
                                        "invitation_code"};

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

bool plain_value(const std::string& v) {
  if (v.empty() || v.size() > 256 || !is_valid_utf8(v)) return false;
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

bool same_secret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Response provider_unavailable(App& app, const Request& req, const Error& e) {
  log_error("provider unavailable: " + e.code + ": " + e.detail);
  return app.error_page(req, 503, "Sign-in is unavailable",
                        "The sign-in provider cannot be reached right now. Please try again in a moment.");
}

}  // namespace

Response handle_login(App& app, Ctx& ctx) {
  const Request& req = ctx.req;
  AppParts& p = app.parts();
  const Config& cfg = p.config;
  if (!p.oidc) return app.error_page(req, 503, "Sign-in is unavailable", "No provider is configured.");

  Params extra;
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
  if (count_param(req.query, "next") > 1) return app.error_page(req, 400, "Bad request", "repeated parameter next");
  std::string next = safe_next_path(find_param(req.query, "next").value_or(app.url(req, "/")));

  auto meta = p.oidc->metadata();
  if (!meta) return provider_unavailable(app, req, meta.error());

  // The binding cookie ties the pending sign-in to this browser (login CSRF); one value serves
  // every tab, so several sign-ins may be under way at once.
  std::string binding = req.cookie(kBindingCookie).value_or("");
  if (!is_valid_session_id(binding)) binding = p.random->token();
  std::string binding_cookie = std::string(kBindingCookie) + "=" + binding + "; Path=" + app.cookie_path(req) +
                               "; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(kPendingLifetime) +
                               (cfg.cookie_secure ? "; Secure" : "");

  AuthorizeRequest ar;
  ar.client_id = cfg.client_id;
  ar.redirect_uri = cfg.callback_url;
  ar.scope = cfg.scopes;
  ar.state = p.random->token();
  ar.nonce = p.random->token();
  ar.code_verifier = p.random->token();
  ar.extra = std::move(extra);

  Session pending;
  pending.id = ar.state;  // the store names the record by a hash of the state
  pending.created = pending.last_used = ctx.now;
  pending.data["pending"] = {{"nonce", ar.nonce}, {"verifier", ar.code_verifier}, {"next", next},
                             {"binding", binding}, {"redirect_uri", ar.redirect_uri}};
  if (auto saved = p.sessions->save(pending); !saved) return app.store_unavailable(req, saved.error());
  if (auto gc = p.sessions->collect_expired(ctx.now, kGcBudget); !gc) log_warn("session gc: " + gc.error().detail);

  Response r = redirect_response(build_authorize_url(meta->authorization_endpoint, ar));
  r.cookies.push_back(binding_cookie);
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

}  // namespace

Response handle_callback(App& app, Ctx& ctx) {
  const Request& req = ctx.req;
  AppParts& p = app.parts();
  const Config& cfg = p.config;
  if (!p.oidc) return app.error_page(req, 503, "Sign-in is unavailable", "No provider is configured.");

  // Repeated parameters are an attack or a broken client: never pick one (RFC 6749 3.1).
  for (const char* key : {"state", "code", "error", "iss"}) {
    if (count_param(req.query, key) > 1)
      return app.error_page(req, 400, "Bad request", std::string("repeated parameter ") + key);
  }
  std::string state = find_param(req.query, "state").value_or("");
  std::string error = find_param(req.query, "error").value_or("");
  if (error == "login_link_expired") return restart_expired_login(app, req);

  // Take the pending sign-in out of the store: used once, whatever happens next.
  std::optional<Session> pending;
  if (is_valid_session_id(state)) {
    auto taken = p.sessions->update(state, ctx.now, [&](std::optional<Session>& s) {
      if (!s || !s->data.contains("pending")) return false;
      pending = std::exchange(s, std::nullopt);  // take it; the store then removes the record
      return true;
    });
    if (!taken) return app.store_unavailable(req, taken.error());
  }

  if (!error.empty()) {
    std::string desc = find_param(req.query, "error_description").value_or("");
    log_info("provider returned error " + error + (desc.empty() ? "" : ": " + desc));
    std::string msg = error == "access_denied" ? "Sign-in was cancelled." : "The sign-in provider said: " + error;
    if (!desc.empty() && plain_value(desc)) msg += " (" + desc + ")";
    return app.page(req, 400, "error",
                    {{"status", 400}, {"title", "Sign-in did not complete"}, {"message", msg}, {"retry", true}});
  }
  if (state.empty()) return app.error_page(req, 400, "Bad request", "The callback has no state parameter.");
  if (!pending) {
    log_info("callback with unknown or used state");
    return app.page(req, 400, "error",
                    {{"status", 400}, {"title", "Sign-in expired"},
                     {"message", "This sign-in was already used or has expired. Please sign in again."},
                     {"retry", true}});
  }
  const nlohmann::json& pd = pending->data["pending"];
  if (ctx.now - pending->created > kPendingLifetime) {
    return app.page(req, 400, "error",
                    {{"status", 400}, {"title", "Sign-in expired"},
                     {"message", "This sign-in took too long. Please sign in again."}, {"retry", true}});
  }
  std::string binding = req.cookie(kBindingCookie).value_or("");
  if (!same_secret(binding, pd.value("binding", std::string()))) {
    log_warn("callback state does not belong to this browser (binding cookie mismatch)");
    return app.error_page(req, 400, "Bad request", "This sign-in was started in another browser. Please sign in again.");
  }
  if (count_param(req.query, "code") != 1)
    return app.error_page(req, 400, "Bad request", "The callback has no code parameter.");
  std::string code = *find_param(req.query, "code");

  auto tokens = p.oidc->exchange_code(code, pd.value("verifier", std::string()),
                                      pd.value("redirect_uri", cfg.callback_url));
  if (!tokens) {
    if (tokens.error().code == "token_error") {
      log_warn("code exchange refused: " + tokens.error().detail);
      return app.page(req, 400, "error",
                      {{"status", 400}, {"title", "Sign-in failed"},
                       {"message", "The provider refused the sign-in code. Please sign in again."}, {"retry", true}});
    }
    return provider_unavailable(app, req, tokens.error());
  }
  auto claims = p.oidc->verify_id_token(tokens->id_token, pd.value("nonce", std::string()), ctx.now);
  if (!claims) {
    // Keys we could not fetch say nothing about the token: that is an outage (503), not a forgery (401).
    if (claims.error().code == "jwks_failed" || claims.error().code == "discovery_failed")
      return provider_unavailable(app, req, claims.error());
    log_warn("ID token rejected: " + claims.error().code + ": " + claims.error().detail);
    return app.error_page(req, 401, "Sign-in failed", "The identity token could not be verified (" +
                                                          claims.error().code + ").");
  }
  auto access = p.oidc->verify_access_token(tokens->access_token, ctx.now);
  if (!access) log_debug("access token not verifiable as a JWT: " + access.error().code);

  const nlohmann::json& c = *claims;
  auto str = [&](const char* k) {
    auto it = c.find(k);
    return it != c.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  Session s;
  s.id = p.random->token();  // a new id at every sign-in: no fixation
  s.created = s.last_used = ctx.now;
  s.data["user"] = {{"id", str("sub")},         {"given_name", str("given_name")}, {"family_name", str("family_name")},
                    {"email", str("email")},    {"picture", str("picture")},       {"name", str("name")}};
  s.data["tokens"] = {{"access_token", tokens->access_token}, {"id_token", tokens->id_token},
                      {"refresh_token", tokens->refresh_token}, {"expires_at", tokens->expires_at}};
  s.data["id_claims"] = c;
  s.data["access_claims"] = access ? *access : nlohmann::json::object();
  if (auto saved = p.sessions->save(s); !saved) return app.store_unavailable(req, saved.error());
  if (auto old = req.cookie(cfg.cookie_name); old && is_valid_session_id(*old)) {
    if (auto removed = p.sessions->remove(*old); !removed) log_warn("old session not removed: " + removed.error().detail);
  }
  log_info("signed in user " + str("sub"));
  Response r = redirect_response(pd.value("next", app.url(req, "/")), 303);
  r.cookies.push_back(app.session_cookie(req, s.id, false));
  r.cookies.push_back(std::string(kBindingCookie) + "=; Path=" + app.cookie_path(req) +
                      "; HttpOnly; SameSite=Lax; Max-Age=0" + (cfg.cookie_secure ? "; Secure" : ""));
  return r;
}

Response handle_logout(App& app, Ctx& ctx) {
  const Request& req = ctx.req;
  AppParts& p = app.parts();
  const Config& cfg = p.config;
  std::string id_token, refresh_token;
  if (ctx.session) {
    const auto tokens = ctx.session->data.value("tokens", nlohmann::json::object());
    id_token = tokens.value("id_token", std::string());
    refresh_token = tokens.value("refresh_token", std::string());
    if (auto removed = p.sessions->remove(ctx.session->id); !removed) {
      return app.store_unavailable(req, removed.error());
    }
    log_info("signed out");
  }
  ctx.set_cookies.push_back(app.session_cookie(req, "", true));
  if (!p.oidc) return redirect_response(app.url(req, "/"), 303);
  ProviderMetadata meta;
  if (auto m = p.oidc->metadata()) meta = *m;  // without discovery, fall back to Kinde's /logout
  if (!refresh_token.empty() && !meta.revocation_endpoint.empty()) {
    // RFC 7009: the refresh token must not outlive the sign-out. The session is already gone, so a failure
    // (or a timeout, a few seconds at most) is logged and the sign-out goes on.
    if (auto revoked = p.oidc->revoke_refresh_token(refresh_token); !revoked)
      log_warn("refresh token not revoked at sign-out: " + revoked.error().code + ": " + revoked.error().detail);
  }
  return redirect_response(build_logout_url(meta, cfg.issuer, cfg.client_id, app.home_url(req), id_token), 303);
}

}  // namespace kinde
