#include "app/app.hpp"

#include <exception>

#include "util/log.hpp"
#include "util/url.hpp"

namespace kinde {
namespace {

enum Method : unsigned { GET = 1, POST = 2, HEAD = 4, OTHER = 8 };
// nginx's auth_request subrequest carries the visitor's method (PUT, DELETE, ...): /auth takes any.
constexpr unsigned ANY = GET | POST | HEAD | OTHER;

enum class Access {
  none,      // no session loaded: /healthz, the docs, and sign-in (whose state lives in the browser)
  open,      // anyone; session loaded if present (home page shows either view)
  api,       // session or bearer token required; 401 JSON otherwise (checked before validation)
};

using Handler = Response (*)(App&, Ctx&);

struct Route {
  const char* path;   // exact path, or a prefix when it ends in '/'+'*'
  unsigned methods;
  Handler handler;
  Access access;
};

// Ordered: the first match wins. Exact paths come first; the only pattern ("/items/*") is last so
// "/items" alone is a 404, as in FastAPI.
const Route kRoutes[] = {
    {"/", GET | HEAD, handle_home, Access::open},
    {"/healthz", GET | HEAD, handle_healthz, Access::none},
    // Sign-in keeps its state in a sealed cookie: nothing is read from or written to the session
    // store before a callback succeeds (a store that is down or full still lets /login answer).
    {"/login", GET | HEAD, handle_login, Access::none},
    {"/register", GET | HEAD, handle_login, Access::none},
    {"/create-org", GET | HEAD, handle_login, Access::none},
    {"/callback", GET, handle_callback, Access::none},
    {"/logout", GET | POST, handle_logout, Access::open},
    {"/api/auth/login", GET | HEAD, handle_login, Access::none},
    {"/api/auth/register", GET | HEAD, handle_login, Access::none},
    {"/api/auth/kinde_callback", GET, handle_callback, Access::none},
    {"/api/auth/logout", GET | POST, handle_logout, Access::open},
    {"/api/me", GET, handle_me, Access::api},
    {"/openapi.json", GET | HEAD, handle_openapi, Access::none},
    {"/docs", GET | HEAD, handle_docs, Access::none},
    {"/docs/", GET | HEAD, handle_docs, Access::none},
    // nginx auth_request: loads the session itself, as the Authorizer role does.
    {"/auth", ANY, handle_auth_request, Access::none},
    {"/items/*", GET, handle_items, Access::api},
};

unsigned method_bit(const std::string& m) {
  if (m == "GET") return GET;
  if (m == "POST") return POST;
  if (m == "HEAD") return HEAD;
  return OTHER;
}

// Matches a route path; fills params for "/prefix/*" (one non-empty segment).
bool match(const char* pattern, const std::string& path, std::vector<std::string>& params) {
  std::string_view p(pattern);
  if (p.size() >= 2 && p.substr(p.size() - 2) == "/*") {
    std::string_view prefix = p.substr(0, p.size() - 1);  // keeps the slash
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
    std::string rest = path.substr(prefix.size());
    if (rest.find('/') != std::string::npos) return false;
    params.assign(1, rest);
    return true;
  }
  return path == p;
}

// The app's base path as the browser sees it, from KINDE_CALLBACK_URL: in the Authorizer role the
// request's SCRIPT_NAME is the protected file's, not the app's.
std::string base_of_callback(const std::string& callback_url) {
  std::string origin = origin_of(callback_url);
  std::string path = callback_url.substr(origin.size());
  if (auto cut = path.find_first_of("?#"); cut != std::string::npos) path.resize(cut);
  for (std::string_view suffix : {"/api/auth/kinde_callback", "/callback"}) {
    if (path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return path.substr(0, path.size() - suffix.size());
    }
  }
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

}  // namespace

App::App(AppParts parts) : p_(std::move(parts)) {
  app_base_ = base_of_callback(p_.config.callback_url);
  if (!p_.config.cookie_path.empty()) {
    fixed_session_cookie_name_ =
        prefixed_cookie_name(p_.config.cookie_name, p_.config.cookie_secure, p_.config.cookie_path);
  }
  form_action_origin_ = origin_of(p_.config.issuer);
  // Built once: the policy depends only on the configured issuer, and finish() runs per request.
  csp_ = "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; "
         "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
  if (!form_action_origin_.empty()) csp_ += " " + form_action_origin_;
}

std::string App::url(const Request& req, const std::string& path) const { return req.base_path + path; }

std::string App::cookie_path(const Request& req) const {
  // KINDE_COOKIE_PATH widens the cookie, e.g. to "/" so it also reaches folders the Authorizer protects.
  if (!p_.config.cookie_path.empty()) return p_.config.cookie_path;
  // The Authorizer role and /auth (nginx's auth location has a SCRIPT_NAME of its own) use the app's base.
  const std::string& base = is_authorizer_request(req) || is_auth_route(req) ? app_base_ : req.base_path;
  return base.empty() ? "/" : base;
}

std::string App::session_cookie_name(const Request& req) const {
  if (!fixed_session_cookie_name_.empty()) return fixed_session_cookie_name_;
  return prefixed_cookie_name(p_.config.cookie_name, p_.config.cookie_secure, cookie_path(req));
}

std::string App::signin_cookie_name(const Request& req, std::string_view tag) const {
  return prefixed_cookie_name(std::string(kSignInCookieFamily) + std::string(tag), p_.config.cookie_secure,
                              cookie_path(req));
}

std::string App::cookie(const Request& req, const std::string& name, const std::string& value,
                        std::int64_t max_age) const {
  std::string c = name + "=" + value + "; Path=" + cookie_path(req) + "; HttpOnly; SameSite=Lax";
  if (p_.config.cookie_secure) c += "; Secure";
  if (max_age == 0) c += "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
  else if (max_age > 0) c += "; Max-Age=" + std::to_string(max_age);
  return c;
}

std::string App::session_cookie(const Request& req, const std::string& id, bool expire) const {
  return cookie(req, session_cookie_name(req), expire ? std::string() : id, expire ? 0 : -1);
}

std::string App::home_url(const Request& req) const {
  if (!p_.config.logout_url.empty()) return p_.config.logout_url;
  return origin_of(p_.config.callback_url) + req.base_path + "/";
}

Response App::page(const Request& req, int status, const std::string& tmpl, nlohmann::json ctx) {
  ctx["base"] = req.base_path;
  ctx["urls"] = {{"home", url(req, "/")},         {"login", url(req, "/login")},
                 {"register", url(req, "/register")}, {"logout", url(req, "/logout")},
                 {"me", url(req, "/api/me")},       {"items", url(req, "/items/42")}};
  // Static files are served by the web server from the site root (htdocs/).
  ctx["static"] = "";
  auto html = p_.view->render(tmpl, ctx);
  if (!html) {
    log_error("template " + tmpl + ": " + html.error().detail);
    Response r;
    r.status = 500;
    r.set_header("Content-Type", "text/plain; charset=utf-8");
    r.body = "500 Internal Server Error: a page template is missing; see the error log.\n";
    return r;
  }
  Response r;
  r.status = status;
  r.set_header("Content-Type", "text/html; charset=utf-8");
  r.body = std::move(*html);
  return r;
}

Response App::error_page(const Request& req, int status, const std::string& title, const std::string& message) {
  if (req.wants_json()) {
    nlohmann::json j = {{"detail", message}};
    return json_response(status, j.dump());
  }
  return page(req, status, "error", {{"status", status}, {"title", title}, {"message", message}});
}

Response App::store_unavailable(const Request& req, const Error& e) {
  log_error("session store: " + e.code + ": " + e.detail);
  return error_page(req, 503, "Sign-in is unavailable",
                    "The session store is unavailable: " + e.detail +
                        ". Existing sessions are kept; please try again shortly.");
}

Response App::handle(const Request& req) {
  Ctx ctx(req);
  Response r;
  try {
    ctx.now = p_.clock->now();
    // The Authorizer role (and Apache's 401 ErrorDocument for it) answers from the session alone.
    r = is_authorizer_request(req) ? handle_authorizer(*this, ctx) : dispatch(ctx);
  } catch (const std::exception& e) {
    log_error(std::string("unexpected error handling ") + req.method + " " + req.path_info + ": " + e.what());
    r = error_page(req, 500, "Something went wrong", "The server hit an unexpected error. Please try again.");
  } catch (...) {
    log_error("unexpected non-standard exception handling " + req.path_info);
    r = Response{};
    r.status = 500;
    r.body = "500 Internal Server Error\n";
  }
  for (auto& c : ctx.set_cookies) r.cookies.push_back(std::move(c));
  finish(req, r);
  return r;
}

void App::finish(const Request& req, Response& r) const {
  (void)req;
  r.set_header("Content-Security-Policy", csp_);
  r.set_header("X-Content-Type-Options", "nosniff");
  r.set_header("X-Frame-Options", "DENY");
  r.set_header("Referrer-Policy", "no-referrer");
  if (r.header("Cache-Control").empty()) r.set_header("Cache-Control", "no-store");
  if (r.header("Content-Type").empty()) r.set_header("Content-Type", "text/plain; charset=utf-8");
}

Response App::dispatch(Ctx& ctx) {
  const Request& req = ctx.req;
  // /auth decides from the cookie or Authorization header alone: a body nginx did not pass on (its
  // Content-Length still set) or a malformed query of the visitor's must not turn it into an error.
  if (req.bad && !is_auth_route(req)) {
    log_info("bad request " + req.method + " " + req.path_info + ": " + req.bad->second);
    return error_page(req, req.bad->first, "Bad request", req.bad->second);
  }
  unsigned allowed = 0;  // methods of the routes whose path matched (for 405's Allow header)
  for (const Route& route : kRoutes) {
    std::vector<std::string> params;
    if (!match(route.path, req.path_info, params)) continue;
    allowed |= route.methods;
    if ((route.methods & method_bit(req.method)) == 0) continue;
    ctx.params = std::move(params);
    if (route.access == Access::none) return route.handler(*this, ctx);
    attach_caller(ctx, load_session(req, ctx.now));
    if (ctx.store_error) return store_unavailable(req, *ctx.store_error);
    if (route.access == Access::api && (ctx.bearer_error || !ctx.identity)) return unauthorized_json(ctx.bearer_error);
    return route.handler(*this, ctx);
  }
  if (allowed != 0) {
    Response r = error_page(req, 405, "Method not allowed", "Method Not Allowed");
    std::string allow;
    for (auto [bit, name] : {std::pair<unsigned, const char*>{GET, "GET"}, {HEAD, "HEAD"}, {POST, "POST"}})
      if (allowed & bit) allow += (allow.empty() ? "" : ", ") + std::string(name);
    r.set_header("Allow", allow);
    return r;
  }
  return error_page(req, 404, "Page not found", "Not Found");
}

bool is_auth_route(const Request& req) { return req.path_info == "/auth"; }

Response handle_healthz(App&, Ctx&) {
  Response r;
  r.set_header("Content-Type", "text/plain; charset=utf-8");
  r.body = "ok";
  return r;
}

Response unauthorized_json(const std::optional<Error>& bearer_error, std::string_view detail) {
  if (bearer_error) {
    Response r = json_response(401, nlohmann::json{{"detail", "Invalid token: " + bearer_error->detail}}.dump());
    r.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return r;
  }
  Response r = json_response(401, nlohmann::json{{"detail", detail}}.dump());
  r.set_header("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace kinde
