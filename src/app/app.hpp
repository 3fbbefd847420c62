// App: turns a Request into a Response. App::handle is the one place that catches.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/page_cache.hpp"
#include "cgi/request.hpp"
#include "cgi/response.hpp"
#include "config/config.hpp"
#include "oidc/client.hpp"
#include "session/record.hpp"
#include "session/sealed.hpp"
#include "session/session.hpp"
#include "util/clock.hpp"
#include "util/random.hpp"
#include "view/view.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kBearerEmpty = "bearer_empty";  // error code
inline constexpr const char* kBearerUnsupported = "bearer_unsupported";  // error code

// Who is calling: a browser session or a machine's bearer token.
// bugprone-exception-escape: false positive, as for Jws in jose/jws.hpp (nlohmann::json member,
// whose move constructor is noexcept).
struct Identity {  // NOLINT(bugprone-exception-escape)
  bool from_bearer = false;
  std::string session_id;                  // "" for bearer
  std::shared_ptr<const SignedIn> record;  // session only: the decoded record, shared and never changed
  bool access_lapsed = false;              // session only: its access token expired with no refresh token
  nlohmann::json bearer_claims;            // bearer only: the verified access-token claims

  // {id, given_name, family_name, email, picture}; null for bearer.
  const nlohmann::json& user() const;
  // Verified access-token claims (empty for opaque tokens, and for a session whose access token lapsed:
  // what it granted stops counting when it expires, as nothing can ask the provider again).
  const nlohmann::json& access_claims() const;
  // ID-token claims; null for bearer.
  const nlohmann::json& id_claims() const;
};

// Who is calling, as App::load_session finds it from the cookie or the Authorization header.
struct Caller {
  std::optional<Session> session;        // the loaded (and refreshed) session; a signed-in one's data is empty
  std::optional<Identity> identity;      // a signed-in session or a valid bearer token
  std::optional<Error> bearer_error;     // an Authorization: Bearer token was present and invalid
  std::optional<Error> store_error;      // the session store failed (the caller answers 503)
  std::optional<std::string> clear_cookie;  // Set-Cookie value clearing a stale session cookie
};

// Per-request state handed to handlers.
struct Ctx {
  explicit Ctx(const Request& r) : req(r) {}
  const Request& req;
  std::int64_t now = 0;
  std::optional<Session> session;   // loaded (and refreshed) session, if any; a signed-in one's data is
                                    // decoded once, into identity (its data is then empty)
  Tokens session_tokens;            // the signed-in session's tokens (sign-out names and revokes them)
  std::optional<Identity> identity; // set for a signed-in session or a valid bearer token
  std::vector<std::string> params;  // path parameters ("/items/{id}" -> id)
  std::vector<std::string> set_cookies;  // the one way a cookie leaves a handler (App::cookie values)
  std::optional<Error> store_error;      // the session store failed (answered 503)
  std::optional<Error> bearer_error;     // an Authorization: Bearer token was present and invalid
};

// Puts what load_session found into the request's state.
void attach_caller(Ctx& ctx, Caller&& caller);

struct AppParts {
  Config config;
  const Clock* clock = nullptr;
  Random* random = nullptr;
  SessionStore* sessions = nullptr;
  Sealer* sealer = nullptr;            // seals the sign-in cookies (under the session key)
  std::shared_ptr<const View> view;
  OidcClient* oidc = nullptr;
};

class App {
 public:
  explicit App(AppParts parts);
  // Handles one request; never throws (anything unexpected becomes a logged 500 page).
  Response handle(const Request& req);

  const Config& config() const { return p_.config; }
  AppParts& parts() { return p_; }
  // The signed-in home pages rendered per record (handle_home).
  RecordPageCache& home_pages() { return home_pages_; }

  // --- helpers shared by the handlers (src/app/*.cpp) ---
  // URL path inside the app: base_path() + path ("/login" -> "/app/login").
  std::string url(const Request& req, const std::string& path) const;
  // The path the app's cookies are scoped to: KINDE_COOKIE_PATH, else the app's base path ("/" at the
  // site root); in the Authorizer role the app's base from KINDE_CALLBACK_URL, not the protected file's.
  std::string cookie_path(const Request& req) const;
  // The one place cookie names are decided: the configured name with the __Host-/__Secure- prefix
  // that cookie_secure and cookie_path call for (prefixed_cookie_name). Every reader and writer uses these.
  std::string session_cookie_name(const Request& req) const;
  // The sign-in cookie for one attempt: kinde_fcgi_auth_<tag>, prefixed the same way ("" tag: the
  // prefix shared by all of them).
  std::string signin_cookie_name(const Request& req, std::string_view tag) const;
  // Set-Cookie value for a cookie of the app (name as returned above): HttpOnly, SameSite=Lax, the
  // app's Path, Secure as configured; max_age < 0: a browser-session cookie, 0: clears it.
  std::string cookie(const Request& req, const std::string& name, const std::string& value,
                     std::int64_t max_age) const;
  // Set-Cookie value for the session cookie (empty id + expire=true clears it).
  std::string session_cookie(const Request& req, const std::string& id, bool expire) const;
  // The app's base path as the browser sees it, from KINDE_CALLBACK_URL ("" at the site root).
  const std::string& app_base_path() const { return app_base_; }
  // Absolute URL of the app's home (origin of KINDE_CALLBACK_URL + base path + "/").
  std::string home_url(const Request& req) const;
  // An HTML page from a template, with the common context (urls, app name) merged in.
  Response page(const Request& req, int status, const std::string& tmpl, nlohmann::json ctx);
  // The error page (HTML) or a JSON {"detail": ...} for API clients.
  Response error_page(const Request& req, int status, const std::string& title, const std::string& message);
  // The 503 page for a failing session store (disk full, unwritable, Redis down); logs the error.
  Response store_unavailable(const Request& req, const Error& e);
  // Who is calling: the session attached to this request's cookie (loaded, idle time touched, tokens
  // refreshed when due) or the request's bearer token.
  Caller load_session(const Request& req, std::int64_t now);

 private:
  Response dispatch(Ctx& ctx);
  void finish(const Request& req, Response& r) const;
  AppParts p_;
  std::string app_base_;
  std::string fixed_session_cookie_name_;  // when KINDE_COOKIE_PATH fixes the path: computed once
  std::string form_action_origin_;
  std::string csp_;  // Content-Security-Policy value, fixed per process
  RecordPageCache home_pages_;
};

// Handlers: one file each under src/app/.
// The API's 401 (RFC 6750 3), the one builder for it: {"detail": detail} with WWW-Authenticate
// "Bearer" or, when a bearer token was refused, "Invalid token: <why>" with error="invalid_token".
Response unauthorized_json(const std::optional<Error>& bearer_error, std::string_view detail = "Not authenticated");

Response handle_home(App& app, Ctx& ctx);
Response handle_healthz(App& app, Ctx& ctx);
Response handle_login(App& app, Ctx& ctx);     // also /register, /create-org (by path)
Response handle_callback(App& app, Ctx& ctx);
Response handle_logout(App& app, Ctx& ctx);
Response handle_items(App& app, Ctx& ctx);
Response handle_me(App& app, Ctx& ctx);
Response handle_openapi(App& app, Ctx& ctx);  // GET /openapi.json
Response handle_docs(App& app, Ctx& ctx);     // GET /docs: Swagger UI page

// FastCGI Authorizer (src/app/authorizer.cpp): true for FCGI_ROLE=AUTHORIZER, and for the app run as
// Apache's 401 ErrorDocument after a failed authorizer check (REDIRECT_STATUS=401).
bool is_authorizer_request(const Request& req);
// The authorizer's answer from the session cookie (or a bearer token) and the location's rules:
// 200 with Variable-* headers, a sign-in redirect (browsers) or 401 JSON, or 403 when a rule fails.
Response handle_authorizer(App& app, Ctx& ctx);

// nginx auth_request (src/app/authorizer.cpp), the /auth route: the same decision from the same
// session, rules and user values as handle_authorizer, answered as nginx needs it: 204 with X-Kinde-*
// headers (kinde_header_name), 401 JSON, or 403 with the page (or JSON) that says what is missing.
Response handle_auth_request(App& app, Ctx& ctx);
// The response header that carries an authorizer variable for nginx: "KINDE_USER_ID" -> "X-Kinde-User-Id".
std::string kinde_header_name(std::string_view variable);
// True for the /auth route: like the Authorizer role, it answers for content outside the app.
bool is_auth_route(const Request& req);

// The OpenAPI 3 description of the API routes; servers = [script_name] when the app has a prefix.
nlohmann::json openapi_document(const std::string& script_name, const std::string& cookie_name);
// Python's int() on text, as FastAPI 0.92 validates an int path parameter: canonical decimal, or nullopt.
std::optional<std::string> parse_python_int(std::string_view text);

// The session's user record from verified ID-token claims: {id (sub), given_name, family_name, email,
// picture, name}. A claim that is missing (or not a string) keeps its value from `previous` (the
// record before a refresh; none at sign-in: ""). Sign-in and every refresh use it.
nlohmann::json user_from_id_claims(const nlohmann::json& claims,
                                   const nlohmann::json& previous = nlohmann::json::object());

// Builds the user's display values: full name (given + family, else name, else email, else the subject id: never
// blank), initials (UTF-8 aware) from the same, picture.
nlohmann::json user_view(const nlohmann::json& user);
// Initials from given and family name: first UTF-8 character of each, upper-cased when ASCII; without
// either, the first character of `fallback` (the shown name: name, email or subject); "?" when all are empty.
std::string initials(const std::string& given, const std::string& family, const std::string& fallback);

}  // namespace kinde
