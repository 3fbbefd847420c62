// Access to protected content, decided from the session cookie alone (or an Authorization: Bearer
// token), with no provider round trip unless the session's tokens need a refresh. Two ways in:
//
// - The FastCGI Authorizer role: lighttpd ("mode" => "authorizer") and Apache mod_fcgid
//   (FcgidAccessChecker) ask the app whether a request for a protected file or script may go on.
//   200 with Variable-NAME headers, which the server turns into the script's environment.
// - The /auth route, for nginx's auth_request: nginx sends a subrequest (the visitor's headers, the
//   original REQUEST_URI) to an internal location that passes it to the app with PATH_INFO=/auth.
//   204 with X-Kinde-* headers, which nginx takes with auth_request_set; 401 and 403 refuse.
//   nginx treats any other status as an error, so a browser's sign-in redirect cannot be the
//   answer: nginx's `error_page 401` runs the app once more, as Apache's ErrorDocument does, with
//   REDIRECT_STATUS=401 (etc/nginx/snippets/kinde-fcgi.conf), and that answer is the redirect.
//
// Per-location rules arrive as server-set request variables (never client headers, which the
// servers only ever pass as HTTP_*): KINDE_REQUIRE_PERMISSION (all listed), KINDE_REQUIRE_ORG (the
// signed-in organisation is one of those listed), KINDE_REQUIRE_FLAG (every listed boolean feature
// flag is on). Lists are separated by spaces or commas. nginx sets them with fastcgi_param on the
// auth location.
//
// Apache replaces any non-200 authorizer answer with its own 401, keeping none of our headers. So
// Apache configs add `ErrorDocument 401 <the app>`: Apache then runs the app as a responder with
// REDIRECT_STATUS=401, the original REQUEST_URI and the rules as REDIRECT_KINDE_REQUIRE_*, and the
// app gives the real answer (redirect, 401 JSON or 403 page). lighttpd passes our non-200 answer
// through unchanged.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "app/app.hpp"
#include "kinde/claims.hpp"
#include "util/log.hpp"
#include "util/url.hpp"

namespace kinde {
namespace {

std::string server_var(const Request& req, std::string_view name) {
  return find_param(req.server_vars, name).value_or("");
}

// The app runs as Apache's ErrorDocument for a failed authorizer check (not a real authorizer call).
bool is_error_document(const Request& req) {
  return req.fcgi_role != "AUTHORIZER" && server_var(req, "REDIRECT_STATUS") == "401";
}

// "a b,c" -> {"a", "b", "c"}: the rule lists are separated by spaces and/or commas.
std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ' ' || c == ',' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

struct Rules {
  std::vector<std::string> permissions;  // all required
  std::vector<std::string> orgs;         // one of them is the signed-in organisation
  std::vector<std::string> flags;        // every boolean flag on
};

Rules rules_of(const Request& req) {
  // After Apache's internal redirect to the ErrorDocument, the location's variables carry REDIRECT_.
  std::string prefix = is_error_document(req) ? "REDIRECT_" : "";
  Rules r;
  r.permissions = split_list(server_var(req, prefix + "KINDE_REQUIRE_PERMISSION"));
  r.orgs = split_list(server_var(req, prefix + "KINDE_REQUIRE_ORG"));
  r.flags = split_list(server_var(req, prefix + "KINDE_REQUIRE_FLAG"));
  return r;
}

// A browser navigating (Accept lists text/html, no Bearer header) is sent to sign in; anything else gets 401.
bool is_browser(const Request& req) {
  return !req.bearer_token() && req.header("accept").find("text/html") != std::string::npos;
}

// The request as the app's own pages see it (links under the app's base path).
Request as_app_request(const App& app, const Request& req) {
  Request r = req;
  r.base_path = app.app_base_path();
  return r;
}

// Which server is asking: the FastCGI Authorizer role (or Apache's ErrorDocument for it), or nginx's
// auth_request subrequest to /auth.
enum class Asker { authorizer, auth_request };

// The sign-in URL that comes back to the page asked for (the login handler filters `next` once more).
std::string login_url(const App& app, const Request& req) {
  std::string next = safe_next_path(req.request_uri.empty() ? "/" : req.request_uri);
  return origin_of(app.config().callback_url) + app.app_base_path() + "/login?next=" + url_encode(next);
}

Response not_authenticated(App& app, const Request& req, const Ctx& ctx, Asker asker) {
  if (ctx.bearer_error) return unauthorized_json(ctx.bearer_error);
  if (asker == Asker::authorizer && is_browser(req)) return redirect_response(login_url(app, req));
  // nginx accepts only 2xx, 401 or 403 from auth_request: the redirect is its error_page's to send.
  return unauthorized_json(std::nullopt);
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// A space-separated list for a script to split: a value that holds whitespace (or a control
// character) would split into other values, so it is left out, and logged, rather than misread.
std::string space_list(const std::vector<std::string>& values, const char* what) {
  std::string out;
  for (const auto& v : values) {
    bool plain = !v.empty();
    for (unsigned char c : v) plain = plain && c > 0x20 && c != 0x7f;
    if (!plain) {
      log_warn(std::string("authorizer: a ") + what + " holding whitespace is left out of the variable: \"" + v + "\"");
      continue;
    }
    out += (out.empty() ? "" : " ") + v;
  }
  return out;
}

struct Granted {
  std::vector<std::string> missing;  // plain-words reasons, empty when every rule holds
};

Granted check_rules(const Rules& rules, const ClaimSource& claims) {
  Granted g;
  if (!rules.permissions.empty()) {
    auto perms = get_permissions(claims);
    if (!perms) log_warn("authorizer: permissions claim unreadable: " + perms.error().detail);
    for (const auto& p : rules.permissions) {
      bool has = perms && std::find(perms->permissions.begin(), perms->permissions.end(), p) != perms->permissions.end();
      if (!has) g.missing.push_back("the permission \"" + p + "\"");
    }
  }
  if (!rules.orgs.empty()) {
    auto org = get_organization(claims);
    if (!org) log_warn("authorizer: org_code claim unreadable: " + org.error().detail);
    bool in = org && org->org_code && std::find(rules.orgs.begin(), rules.orgs.end(), *org->org_code) != rules.orgs.end();
    if (!in) {
      g.missing.push_back(rules.orgs.size() == 1 ? "to be signed in to the organisation \"" + rules.orgs[0] + "\""
                                                 : "to be signed in to one of the organisations \"" +
                                                       join(rules.orgs, "\", \"") + "\"");
    }
  }
  for (const auto& f : rules.flags) {
    auto on = get_boolean_flag(claims, f, false);
    if (!on) log_warn("authorizer: feature flag " + f + " unreadable: " + on.error().detail);
    if (!on || !*on) g.missing.push_back("the feature flag \"" + f + "\" turned on");
  }
  return g;
}

Response forbidden(App& app, const Request& req, const std::string& who, const Granted& g) {
  std::string need = join(g.missing, " and ");
  std::string message = "You are signed in" + (who.empty() ? std::string() : " as " + who) +
                        ", but this page needs " + need + ". Ask the site's administrator for access, or "
                        "sign in with another account.";
  log_info("authorizer: 403 for " + req.request_uri + ": missing " + need);
  if (!is_browser(req)) {
    nlohmann::json j = {{"detail", "Forbidden: needs " + need}};
    return json_response(403, j.dump());
  }
  Request app_req = as_app_request(app, req);
  return app.page(app_req, 403, "error",
                  {{"status", 403}, {"title", "You don't have access to this page"}, {"message", message},
                   {"retry", true}});
}

// The user's details for the protected content: user id (also REMOTE_USER), email, names,
// organisation(s), permissions and roles, as (variable name, value) pairs. Names start with KINDE_
// so no client header (HTTP_*) can produce them; empty values are left out.
std::vector<std::pair<std::string, std::string>> user_variables(const Identity& id, const ClaimSource& claims) {
  std::vector<std::pair<std::string, std::string>> out;
  auto var = [&out](const char* name, const std::string& value) {
    if (!value.empty()) out.emplace_back(name, value);
  };
  auto str = [](const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string user_id = str(id.user(), "id");
  if (user_id.empty()) user_id = str(id.id_claims(), "sub");
  if (user_id.empty()) user_id = str(id.access_claims(), "sub");
  var("REMOTE_USER", user_id);
  var("KINDE_USER_ID", user_id);
  var("KINDE_EMAIL", str(id.user(), "email"));
  var("KINDE_GIVEN_NAME", str(id.user(), "given_name"));
  var("KINDE_FAMILY_NAME", str(id.user(), "family_name"));
  if (auto org = get_organization(claims); org && org->org_code) var("KINDE_ORG_CODE", *org->org_code);
  if (!id.from_bearer) {
    if (auto orgs = get_user_organizations(claims)) var("KINDE_ORG_CODES", space_list(orgs->org_codes, "organisation code"));
  }
  if (auto perms = get_permissions(claims)) var("KINDE_PERMISSIONS", space_list(perms->permissions, "permission"));
  if (auto roles = get_roles(claims)) {
    std::vector<std::string> keys;
    for (const auto& role : roles->roles) keys.push_back(role.key);
    var("KINDE_ROLES", space_list(keys, "role key"));
  }
  return out;
}

// The access granted, in the asker's words: the Authorizer role's 200 with Variable-NAME headers
// (the server's environment for the script), or auth_request's 204 with X-Kinde-* headers.
Response granted(const Identity& id, const ClaimSource& claims, Asker asker) {
  Response r;
  r.status = asker == Asker::authorizer ? 200 : 204;
  for (const auto& [name, value] : user_variables(id, claims)) {
    if (asker == Asker::authorizer) {
      r.add_header("Variable-" + name, value);
    } else if (name != "REMOTE_USER") {  // the same value as KINDE_USER_ID; nginx sets REMOTE_USER from it
      r.add_header(kinde_header_name(name), value);
    }
  }
  return r;
}

// Both askers: the identity, then the location's rules.
Response decide(App& app, Ctx& ctx, Asker asker) {
  const Request& req = ctx.req;
  attach_caller(ctx, app.load_session(req, ctx.now));
  if (ctx.store_error) return app.store_unavailable(req, *ctx.store_error);
  if (!ctx.identity) return not_authenticated(app, req, ctx, asker);

  const Identity& id = *ctx.identity;
  const nlohmann::json no_id_token;
  ClaimSource claims{id.access_claims(), id.from_bearer ? no_id_token : id.id_claims()};
  Granted g = check_rules(rules_of(req), claims);
  if (!g.missing.empty()) {
    std::string who = id.user().is_object() ? id.user().value("email", std::string()) : std::string();
    return forbidden(app, req, who, g);
  }
  if (asker == Asker::authorizer && is_error_document(req)) {
    // Apache ran us as the ErrorDocument, yet the check passes now (a sign-in or refresh finished
    // in between). No automatic redirect back: should the two checks ever disagree for good, that
    // would loop. A page with a link lets the visitor retry.
    if (!is_browser(req)) {
      return unauthorized_json(std::nullopt, "Not authenticated, please retry");
    }
    return app.page(as_app_request(app, req), 401, "error",
                    {{"status", 401}, {"title", "Please try again"},
                     {"message", "Your session changed while this page was loading. Reload the page to continue."}});
  }
  return granted(id, claims, asker);
}

}  // namespace

bool is_authorizer_request(const Request& req) { return req.fcgi_role == "AUTHORIZER" || is_error_document(req); }

Response handle_authorizer(App& app, Ctx& ctx) { return decide(app, ctx, Asker::authorizer); }

Response handle_auth_request(App& app, Ctx& ctx) { return decide(app, ctx, Asker::auth_request); }

std::string kinde_header_name(std::string_view variable) {
  std::string_view rest = variable;
  if (rest.substr(0, 6) == "KINDE_") rest.remove_prefix(6);
  std::string out = "X-Kinde";
  bool word_start = true;
  for (char c : rest) {
    if (c == '_') {
      word_start = true;
      continue;
    }
    if (word_start) out += '-';
    out += word_start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                      : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    word_start = false;
  }
  return out;
}

}  // namespace kinde
