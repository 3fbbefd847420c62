// The FastCGI Authorizer role: 200 with Variable-* headers for a signed-in user, a sign-in redirect
// for browsers and 401 for API clients without a session, 403 when a location's rule fails, the
// same answers when Apache runs the app as the 401 ErrorDocument, and KINDE_COOKIE_PATH.
// The /auth route for nginx's auth_request: the same decisions, as 204 with X-Kinde-* headers, 401
// (X-Kinde-Login for browsers) or 403.
#include <boost/test/unit_test.hpp>

#include <map>
#include <string>

#include "config/config.hpp"
#include "fakes.hpp"

using namespace kinde;
using namespace kinde::testing;
using nlohmann::json;

namespace {


// Every value of a response header (Variable-* may in principle repeat).
std::vector<std::string> header_values(const Response& r, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers)
    if (k == name) out.push_back(v);
  return out;
}

const json kAliceAccess = {
    {"sub", "kp_alice"},
    {"permissions", {"read:items", "write:items"}},
    {"org_code", "org_123"},
    {"roles", {{{"id", "r1"}, {"key", "admin"}, {"name", "Admin"}}}},
    {"feature_flags", {{"is_dark_mode", {{"t", "b"}, {"v", true}}}, {"beta", {{"t", "b"}, {"v", false}}}}},
};
const json kAliceUser = {{"id", "kp_alice"}, {"given_name", "Alice"}, {"family_name", "Liddell"},
                         {"email", "alice@example.com"}};
const json kAliceId = {{"sub", "kp_alice"}, {"org_codes", {"org_123", "org_456"}}};

// A signed-in session with these access-token claims; returns the Cookie header.
std::string sign_in(TestApp& t, const json& user = kAliceUser, const json& access = kAliceAccess,
                    const json& id_claims = kAliceId) {
  SignedIn rec;
  rec.user = user;
  rec.id_claims = id_claims;
  rec.access_claims = access;
  return t.session_cookie_header(t.save_record(rec));
}

// What lighttpd or mod_fcgid sends in the Authorizer role for GET /private/a.txt?q=1.
RequestSpec authorizer_request(const std::string& cookie = "", const std::string& accept = "",
                               std::map<std::string, std::string> vars = {}) {
  RequestSpec s;
  s.path = "";
  s.script_name = "/private/a.txt";
  s.request_uri = "/private/a.txt?q=1";
  s.query = "q=1";
  s.cookie = cookie;
  s.accept = accept;
  s.extra = std::move(vars);
  s.extra["FCGI_ROLE"] = "AUTHORIZER";
  return s;
}

constexpr const char* kHtml = "text/html,application/xhtml+xml,*/*;q=0.8";

// What nginx's auth_request subrequest brings to the app for GET /private/a.php?x=1&y=2 through the
// internal location /_kinde/auth/staff (etc/nginx/snippets/kinde-fcgi-auth.conf): PATH_INFO=/auth,
// the original REQUEST_URI, the visitor's headers, no query string of its own.
RequestSpec nginx_auth_request(const std::string& cookie = "", const std::string& accept = "",
                               std::map<std::string, std::string> vars = {}) {
  RequestSpec s;
  s.path = "/auth";
  s.script_name = "";
  s.request_uri = "/private/a.php?x=1&y=2";
  s.cookie = cookie;
  s.accept = accept;
  s.extra = std::move(vars);
  s.extra["FCGI_ROLE"] = "RESPONDER";
  return s;
}

// The X-Kinde-* headers of a response, by name.
std::map<std::string, std::string> kinde_headers(const Response& r) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : r.headers)
    if (k.rfind("X-Kinde-", 0) == 0) out[k] = v;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(authorizer)

BOOST_AUTO_TEST_CASE(signed_in_user_gets_200_with_variables_from_the_session) {
  TestApp t;
  Response r = t.handle(authorizer_request(sign_in(t)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("Variable-REMOTE_USER") == "kp_alice");
  BOOST_TEST(r.header("Variable-KINDE_USER_ID") == "kp_alice");
  BOOST_TEST(r.header("Variable-KINDE_EMAIL") == "alice@example.com");
  BOOST_TEST(r.header("Variable-KINDE_GIVEN_NAME") == "Alice");
  BOOST_TEST(r.header("Variable-KINDE_FAMILY_NAME") == "Liddell");
  BOOST_TEST(r.header("Variable-KINDE_ORG_CODE") == "org_123");
  BOOST_TEST(r.header("Variable-KINDE_ORG_CODES") == "org_123 org_456");
  BOOST_TEST(r.header("Variable-KINDE_PERMISSIONS") == "read:items write:items");
  BOOST_TEST(r.header("Variable-KINDE_ROLES") == "admin");
  BOOST_TEST(header_values(r, "Variable-KINDE_USER_ID").size() == 1u);
  BOOST_TEST(r.body.empty());
}

BOOST_AUTO_TEST_CASE(list_values_holding_whitespace_are_left_out_of_the_space_separated_variables) {
  TestApp t;
  json access = {{"sub", "kp_alice"},
                 {"permissions", {"read:items", "write items", "admin\tall", "delete:items"}},
                 {"roles", {{{"key", "editor"}}, {{"key", "super admin"}}}}};
  json id_claims = {{"sub", "kp_alice"}, {"org_codes", {"org_1", "org 2", "org_3"}}};
  Response r = t.handle(authorizer_request(sign_in(t, kAliceUser, access, id_claims)));
  BOOST_TEST(r.status == 200);
  // Never "write items" split into "write" and "items": such values are left out.
  BOOST_TEST(r.header("Variable-KINDE_PERMISSIONS") == "read:items delete:items");
  BOOST_TEST(r.header("Variable-KINDE_ROLES") == "editor");
  BOOST_TEST(r.header("Variable-KINDE_ORG_CODES") == "org_1 org_3");
  // The rules still see the whole value.
  Response rule = t.handle(authorizer_request(sign_in(t, kAliceUser, access, id_claims), "",
                                              {{"KINDE_REQUIRE_PERMISSION", "delete:items"}}));
  BOOST_TEST(rule.status == 200);
}

BOOST_AUTO_TEST_CASE(the_authorizer_reads_the_prefixed_session_cookie_only) {
  TestApp t;
  // Secure at "/": the app's cookie is __Host-kinde_fcgi_session, whatever the protected file's path.
  std::string cookie = sign_in(t);
  BOOST_TEST(cookie.rfind("__Host-kinde_fcgi_session=", 0) == 0u);
  BOOST_TEST(t.handle(authorizer_request(cookie)).status == 200);
  // The same id under the plain name (as a sibling subdomain could plant it) is no session.
  std::string planted = cookie.substr(std::string("__Host-").size());
  Response r = t.handle(authorizer_request(planted, kHtml));
  BOOST_TEST(r.status == 302);
  BOOST_TEST(header_values(r, "Variable-KINDE_USER_ID").empty());
}

BOOST_AUTO_TEST_CASE(absent_details_are_left_out_not_sent_empty) {
  TestApp t;
  json user = {{"id", "kp_plain"}, {"given_name", "Plain"}};
  json access = {{"sub", "kp_plain"}, {"permissions", json::array()}};
  Response r = t.handle(authorizer_request(sign_in(t, user, access, {{"sub", "kp_plain"}})));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("Variable-KINDE_USER_ID") == "kp_plain");
  BOOST_TEST(header_values(r, "Variable-KINDE_EMAIL").empty());
  BOOST_TEST(header_values(r, "Variable-KINDE_ORG_CODE").empty());
  BOOST_TEST(header_values(r, "Variable-KINDE_PERMISSIONS").empty());
}

BOOST_AUTO_TEST_CASE(browser_without_session_is_sent_to_sign_in_and_back_to_the_page) {
  TestApp t;
  Response r = t.handle(authorizer_request("", kHtml));
  BOOST_TEST(r.status == 302);
  BOOST_TEST(r.header("Location") == "https://app.example/login?next=%2Fprivate%2Fa.txt%3Fq%3D1");
  BOOST_TEST(header_values(r, "Variable-KINDE_USER_ID").empty());
}

BOOST_AUTO_TEST_CASE(sign_in_link_uses_the_apps_prefix_from_the_callback_url) {
  TestApp t;
  t.config.callback_url = "https://app.example/app/callback";
  BOOST_TEST(t.handle(authorizer_request("", kHtml)).header("Location") ==
             "https://app.example/app/login?next=%2Fprivate%2Fa.txt%3Fq%3D1");
  TestApp fastapi;
  fastapi.config.callback_url = "https://app.example/api/auth/kinde_callback";
  BOOST_TEST(fastapi.handle(authorizer_request("", kHtml)).header("Location") ==
             "https://app.example/login?next=%2Fprivate%2Fa.txt%3Fq%3D1");
}

BOOST_AUTO_TEST_CASE(next_that_leaves_the_site_becomes_the_home_page) {
  TestApp t;
  RequestSpec s = authorizer_request("", kHtml);
  s.request_uri = "//evil.example/x";
  BOOST_TEST(t.handle(s).header("Location") == "https://app.example/login?next=%2F");
}

BOOST_AUTO_TEST_CASE(api_client_without_session_gets_401_json_with_www_authenticate) {
  TestApp t;
  for (std::string accept : {"", "application/json", "*/*"}) {
    Response r = t.handle(authorizer_request("", accept));
    BOOST_TEST(r.status == 401, accept);
    BOOST_TEST(r.header("WWW-Authenticate") == "Bearer");
    BOOST_TEST(json::parse(r.body)["detail"] == "Not authenticated");
  }
}

BOOST_AUTO_TEST_CASE(unknown_session_cookie_counts_as_no_session) {
  TestApp t;
  Response r = t.handle(authorizer_request(t.session_cookie_header(t.random.token()), kHtml));
  BOOST_TEST(r.status == 302);
  BOOST_TEST(contains(r.header("Location"), "/login?next="));
}

BOOST_AUTO_TEST_CASE(valid_bearer_token_passes_with_its_subject_and_permissions) {
  TestApp t;
  t.oidc.access_tokens["tok"] = {{"sub", "kp_machine"}, {"permissions", {"read:items"}}, {"org_code", "org_9"}};
  RequestSpec s = authorizer_request();
  s.authorization = "Bearer tok";
  Response r = t.handle(s);
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("Variable-KINDE_USER_ID") == "kp_machine");
  BOOST_TEST(r.header("Variable-KINDE_PERMISSIONS") == "read:items");
  BOOST_TEST(r.header("Variable-KINDE_ORG_CODE") == "org_9");
  BOOST_TEST(header_values(r, "Variable-KINDE_EMAIL").empty());

  s.authorization = "Bearer forged";
  Response bad = t.handle(s);
  BOOST_TEST(bad.status == 401);
  BOOST_TEST(contains(bad.header("WWW-Authenticate"), "invalid_token"));
}

BOOST_AUTO_TEST_CASE(the_bearer_scheme_is_read_the_same_way_as_by_the_api) {
  // One parser (Request::bearer_token): any case of the scheme is a bearer call, answered in JSON, never
  // with a sign-in redirect; an empty token is an invalid one, not "no credentials".
  TestApp t;
  t.oidc.access_tokens["tok"] = {{"sub", "kp_machine"}, {"permissions", {"read:items"}}};
  for (const char* scheme_text : {"Bearer", "bearer", "BEARER"}) {
    const std::string scheme = scheme_text;
    RequestSpec s = authorizer_request("", kHtml);
    s.authorization = scheme + " tok";
    BOOST_TEST(t.handle(s).status == 200, scheme);
    s.authorization = scheme + " forged";
    Response bad = t.handle(s);
    BOOST_TEST(bad.status == 401, scheme);
    BOOST_TEST(bad.header("Location").empty(), scheme);
    BOOST_TEST(contains(bad.header("Content-Type"), "application/json"), scheme);
    // The API route gives the same verdicts.
    RequestSpec api;
    api.path = "/api/me";
    api.accept = kHtml;
    api.authorization = scheme + " tok";
    BOOST_TEST(t.handle(api).status == 200, scheme);
    api.authorization = scheme + " forged";
    BOOST_TEST(t.handle(api).status == 401, scheme);
  }
  std::string cookie = sign_in(t);
  for (const char* empty : {"Bearer", "Bearer   "}) {
    RequestSpec s = authorizer_request(cookie, kHtml);
    s.authorization = empty;
    Response r = t.handle(s);
    BOOST_TEST(r.status == 401, "'" << empty << "'");  // the session cookie does not rescue it
    BOOST_TEST(contains(r.header("WWW-Authenticate"), "invalid_token"));
  }
  // Another scheme is no bearer call: the browser with a session passes, without one it is sent to sign in.
  RequestSpec basic = authorizer_request(cookie, kHtml);
  basic.authorization = "Basic dXNlcjpwYXNz";
  BOOST_TEST(t.handle(basic).status == 200);
  basic.cookie.clear();
  BOOST_TEST(t.handle(basic).status == 302);
}

BOOST_AUTO_TEST_CASE(missing_permission_is_403_with_a_page_that_names_it) {
  TestApp t;
  std::string cookie = sign_in(t);
  Response ok = t.handle(authorizer_request(cookie, kHtml, {{"KINDE_REQUIRE_PERMISSION", "read:items, write:items"}}));
  BOOST_TEST(ok.status == 200);
  Response r = t.handle(authorizer_request(cookie, kHtml, {{"KINDE_REQUIRE_PERMISSION", "read:items delete:items"}}));
  BOOST_TEST(r.status == 403);
  BOOST_TEST(contains(r.header("Content-Type"), "text/html"));
  BOOST_TEST(contains(r.body, "delete:items"));
  BOOST_TEST(!contains(r.body, "&quot;read:items"));
  BOOST_TEST(contains(r.body, "alice@example.com"));
  // Its links point into the app, not under the protected file's SCRIPT_NAME.
  BOOST_TEST(contains(r.body, "href=\"" + mstch_escaped("/login") + "\""));
  BOOST_TEST(!contains(r.body, mstch_escaped("/private/a.txt/login")));
  BOOST_TEST(header_values(r, "Variable-KINDE_USER_ID").empty());
  Response api = t.handle(authorizer_request(cookie, "application/json", {{"KINDE_REQUIRE_PERMISSION", "delete:items"}}));
  BOOST_TEST(api.status == 403);
  BOOST_TEST(contains(json::parse(api.body)["detail"].get<std::string>(), "delete:items"));
}

BOOST_AUTO_TEST_CASE(organisation_rule_accepts_any_listed_signed_in_organisation) {
  TestApp t;
  std::string cookie = sign_in(t);
  BOOST_TEST(t.handle(authorizer_request(cookie, kHtml, {{"KINDE_REQUIRE_ORG", "org_999 org_123"}})).status == 200);
  // org_456 is one of the user's organisations, but not the one signed in to.
  Response r = t.handle(authorizer_request(cookie, kHtml, {{"KINDE_REQUIRE_ORG", "org_456"}}));
  BOOST_TEST(r.status == 403);
  BOOST_TEST(contains(r.body, "org_456"));
}

BOOST_AUTO_TEST_CASE(flag_rule_needs_every_listed_boolean_flag_on) {
  TestApp t;
  std::string cookie = sign_in(t);
  BOOST_TEST(t.handle(authorizer_request(cookie, kHtml, {{"KINDE_REQUIRE_FLAG", "is_dark_mode"}})).status == 200);
  BOOST_TEST(t.handle(authorizer_request(cookie, kHtml, {{"KINDE_REQUIRE_FLAG", "is_dark_mode,beta"}})).status == 403);
  BOOST_TEST(t.handle(authorizer_request(cookie, kHtml, {{"KINDE_REQUIRE_FLAG", "no_such_flag"}})).status == 403);
}

BOOST_AUTO_TEST_CASE(client_headers_that_look_like_rules_or_variables_change_nothing) {
  TestApp t;
  std::string cookie = sign_in(t);
  // A client header "Kinde-Require-Permission" arrives as HTTP_KINDE_REQUIRE_PERMISSION: not a rule.
  Response r = t.handle(authorizer_request(cookie, kHtml,
                                           {{"HTTP_KINDE_REQUIRE_PERMISSION", "delete:items"},
                                            {"HTTP_KINDE_USER_ID", "kp_forged"},
                                            {"HTTP_VARIABLE_KINDE_USER_ID", "kp_forged"}}));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("Variable-KINDE_USER_ID") == "kp_alice");
  // Nor can a header switch on the ErrorDocument mode.
  RequestSpec s = authorizer_request("", kHtml, {{"HTTP_REDIRECT_STATUS", "401"}});
  s.extra.erase("FCGI_ROLE");
  s.path = "/";
  s.script_name = "";
  BOOST_TEST(!is_authorizer_request(s.build()));
}

BOOST_AUTO_TEST_CASE(header_values_cannot_inject_lines) {
  TestApp t;
  json user = kAliceUser;
  user["given_name"] = "Eve\r\nVariable-REMOTE_USER: kp_admin";
  Response r = t.handle(authorizer_request(sign_in(t, user)));
  BOOST_TEST(r.status == 200);
  std::string out = serialize_cgi(r);
  BOOST_TEST(!contains(out, "\nVariable-REMOTE_USER: kp_admin"));
  BOOST_TEST(header_values(r, "Variable-REMOTE_USER").size() == 1u);
}

BOOST_AUTO_TEST_CASE(apache_error_document_gives_the_real_answer_with_redirect_variables) {
  TestApp t;
  std::string cookie = sign_in(t);
  // Apache ran the app at /login as ErrorDocument 401 for GET /private/a.txt?q=1.
  auto errdoc = [](const std::string& c, const std::string& accept, std::map<std::string, std::string> vars) {
    RequestSpec s;
    s.path = "/login";
    s.request_uri = "/private/a.txt?q=1";
    s.cookie = c;
    s.accept = accept;
    s.extra = std::move(vars);
    s.extra["FCGI_ROLE"] = "RESPONDER";
    s.extra["REDIRECT_STATUS"] = "401";
    return s;
  };
  Response login = t.handle(errdoc("", kHtml, {}));
  BOOST_TEST(login.status == 302);
  BOOST_TEST(login.header("Location") == "https://app.example/login?next=%2Fprivate%2Fa.txt%3Fq%3D1");
  BOOST_TEST(t.handle(errdoc("", "", {})).status == 401);
  Response denied = t.handle(errdoc(cookie, kHtml, {{"REDIRECT_KINDE_REQUIRE_PERMISSION", "delete:items"}}));
  BOOST_TEST(denied.status == 403);
  BOOST_TEST(contains(denied.body, "delete:items"));
  // Passing now (signed in meanwhile): a page to retry, never a redirect that could loop.
  Response retry = t.handle(errdoc(cookie, kHtml, {{"REDIRECT_KINDE_REQUIRE_PERMISSION", "read:items"}}));
  BOOST_TEST(retry.status == 401);
  BOOST_TEST(retry.header("Location").empty());
}

BOOST_AUTO_TEST_CASE(ordinary_requests_still_reach_the_routes) {
  TestApp t;
  RequestSpec s;
  s.path = "/healthz";
  s.extra["FCGI_ROLE"] = "RESPONDER";
  Response r = t.handle(s);
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == "ok");
}

BOOST_AUTO_TEST_CASE(session_store_outage_is_503_not_a_pass) {
  TestApp t(std::make_unique<FailingStore>());
  Response r = t.handle(authorizer_request(t.session_cookie_header(t.random.token()), kHtml));
  BOOST_TEST(r.status == 503);
  BOOST_TEST(header_values(r, "Variable-KINDE_USER_ID").empty());
}

BOOST_AUTO_TEST_CASE(cookie_path_setting_widens_the_session_cookie) {
  TestApp t;
  t.config.cookie_path = "/";
  RequestSpec s;
  s.script_name = "/app";
  s.path = "/";
  Request req = s.build();
  BOOST_TEST(contains(t.app().session_cookie(req, "abc", false), "; Path=/;"));
  BOOST_TEST(t.app().url(req, "/login") == "/app/login");
  BOOST_TEST(t.app().home_url(req) == "https://app.example/app/");
  TestApp plain;
  BOOST_TEST(contains(plain.app().session_cookie(req, "abc", false), "; Path=/app;"));
}

// --- nginx auth_request: the /auth route ---

BOOST_AUTO_TEST_CASE(auth_route_passes_a_signed_in_user_with_204_and_x_kinde_headers) {
  TestApp t;
  Response r = t.handle(nginx_auth_request(sign_in(t), kHtml));
  BOOST_TEST(r.status == 204);
  BOOST_TEST(r.body.empty());
  std::map<std::string, std::string> want = {
      {"X-Kinde-User-Id", "kp_alice"},       {"X-Kinde-Email", "alice@example.com"},
      {"X-Kinde-Given-Name", "Alice"},       {"X-Kinde-Family-Name", "Liddell"},
      {"X-Kinde-Org-Code", "org_123"},       {"X-Kinde-Org-Codes", "org_123 org_456"},
      {"X-Kinde-Permissions", "read:items write:items"}, {"X-Kinde-Roles", "admin"}};
  BOOST_TEST(kinde_headers(r) == want);
  BOOST_TEST(header_values(r, "Variable-KINDE_USER_ID").empty());
  BOOST_TEST(r.header("Cache-Control") == "no-store");
}

BOOST_AUTO_TEST_CASE(auth_route_exports_the_same_values_as_the_authorizer) {
  TestApp t;
  json access = {{"sub", "kp_alice"}, {"permissions", {"read:items", "write items", "x:y"}}, {"org_code", "org_1"}};
  std::string cookie = sign_in(t, kAliceUser, access, {{"sub", "kp_alice"}, {"org_codes", {"org_1", "org 2"}}});
  Response authz = t.handle(authorizer_request(cookie));
  Response nginx = t.handle(nginx_auth_request(cookie));
  std::map<std::string, std::string> from_authorizer;
  for (const auto& [k, v] : authz.headers) {
    if (k.rfind("Variable-KINDE_", 0) == 0) from_authorizer[kinde_header_name(k.substr(9))] = v;
  }
  BOOST_TEST(from_authorizer.size() == 7u);  // no family name in this session's user
  BOOST_TEST(kinde_headers(nginx) == from_authorizer);
  BOOST_TEST(nginx.header("X-Kinde-Permissions") == "read:items x:y");
}

BOOST_AUTO_TEST_CASE(kinde_header_names_follow_the_variable_names) {
  BOOST_TEST(kinde_header_name("KINDE_USER_ID") == "X-Kinde-User-Id");
  BOOST_TEST(kinde_header_name("KINDE_EMAIL") == "X-Kinde-Email");
  BOOST_TEST(kinde_header_name("KINDE_ORG_CODES") == "X-Kinde-Org-Codes");
  BOOST_TEST(kinde_header_name("KINDE_GIVEN_NAME") == "X-Kinde-Given-Name");
}

BOOST_AUTO_TEST_CASE(auth_route_without_session_is_401_never_a_redirect) {
  TestApp t;
  for (std::string accept : {kHtml, "application/json", ""}) {
    Response r = t.handle(nginx_auth_request("", accept));
    // nginx accepts only 2xx, 401 and 403 from auth_request: the redirect comes from its error_page.
    BOOST_TEST(r.status == 401, accept);
    BOOST_TEST(r.header("Location").empty(), accept);
    BOOST_TEST(r.header("WWW-Authenticate") == "Bearer", accept);
    BOOST_TEST(json::parse(r.body)["detail"] == "Not authenticated", accept);
    BOOST_TEST(kinde_headers(r).empty(), accept);
  }
}

BOOST_AUTO_TEST_CASE(nginx_error_page_401_gets_the_sign_in_redirect_back_to_the_page) {
  // etc/nginx/snippets/kinde-fcgi.conf: `error_page 401 = @kinde_login` runs the auth location's
  // request again with REDIRECT_STATUS=401, as Apache's ErrorDocument does.
  TestApp t;
  t.config.callback_url = "https://app.example/kinde/callback";
  RequestSpec s = nginx_auth_request("", kHtml, {{"REDIRECT_STATUS", "401"}});
  Response r = t.handle(s);
  BOOST_TEST(r.status == 302);
  BOOST_TEST(r.header("Location") == "https://app.example/kinde/login?next=%2Fprivate%2Fa.php%3Fx%3D1%26y%3D2");
  s.accept = "application/json";
  BOOST_TEST(t.handle(s).status == 401);
  // nginx's own fastcgi_params say REDIRECT_STATUS=200: an ordinary /auth call.
  BOOST_TEST(t.handle(nginx_auth_request("", kHtml, {{"REDIRECT_STATUS", "200"}})).status == 401);
}

BOOST_AUTO_TEST_CASE(auth_route_applies_the_rules_from_the_auth_location) {
  TestApp t;
  std::string cookie = sign_in(t);
  BOOST_TEST(t.handle(nginx_auth_request(cookie, kHtml, {{"KINDE_REQUIRE_PERMISSION", "read:items,write:items"}})).status == 204);
  BOOST_TEST(t.handle(nginx_auth_request(cookie, kHtml, {{"KINDE_REQUIRE_ORG", "org_9 org_123"}})).status == 204);
  BOOST_TEST(t.handle(nginx_auth_request(cookie, kHtml, {{"KINDE_REQUIRE_FLAG", "is_dark_mode"}})).status == 204);
  for (const auto& [rule, value] : std::map<std::string, std::string>{{"KINDE_REQUIRE_PERMISSION", "delete:items"},
                                                                      {"KINDE_REQUIRE_ORG", "org_456"},
                                                                      {"KINDE_REQUIRE_FLAG", "beta"}}) {
    Response r = t.handle(nginx_auth_request(cookie, kHtml, {{rule, value}}));
    BOOST_TEST(r.status == 403, rule);
    BOOST_TEST(kinde_headers(r).empty(), rule);
    // The page (shown when nginx's error_page 403 runs the auth location again) names what is missing.
    BOOST_TEST(contains(r.header("Content-Type"), "text/html"), rule);
    BOOST_TEST(contains(r.body, value), rule);
    BOOST_TEST(contains(r.body, "href=\"" + mstch_escaped("/login") + "\""), rule);
  }
  Response api = t.handle(nginx_auth_request(cookie, "application/json", {{"KINDE_REQUIRE_PERMISSION", "delete:items"}}));
  BOOST_TEST(api.status == 403);
  BOOST_TEST(contains(json::parse(api.body)["detail"].get<std::string>(), "delete:items"));
  // A visitor's header named like a rule is HTTP_*: no rule.
  BOOST_TEST(t.handle(nginx_auth_request(cookie, kHtml, {{"HTTP_KINDE_REQUIRE_PERMISSION", "delete:items"}})).status == 204);
}

BOOST_AUTO_TEST_CASE(auth_route_values_come_from_the_session_never_from_the_visitor) {
  TestApp t;
  RequestSpec s = nginx_auth_request(sign_in(t), kHtml,
                                     {{"HTTP_X_KINDE_EMAIL", "mallory@example.com"}, {"HTTP_X_KINDE_USER_ID", "kp_admin"},
                                      {"KINDE_EMAIL", "mallory@example.com"}});
  s.query = "KINDE_EMAIL=mallory@example.com&X-Kinde-Email=mallory@example.com";
  Response r = t.handle(s);
  BOOST_TEST(r.status == 204);
  BOOST_TEST(header_values(r, "X-Kinde-Email") == std::vector<std::string>{"alice@example.com"});
  BOOST_TEST(header_values(r, "X-Kinde-User-Id") == std::vector<std::string>{"kp_alice"});
  // No session: nothing the visitor sent becomes a value.
  Response none = t.handle(nginx_auth_request("", "", {{"HTTP_X_KINDE_EMAIL", "mallory@example.com"}}));
  BOOST_TEST(none.status == 401);
  BOOST_TEST(header_values(none, "X-Kinde-Email").empty());
}

BOOST_AUTO_TEST_CASE(auth_route_header_values_cannot_inject_lines) {
  TestApp t;
  json user = kAliceUser;
  user["given_name"] = "Eve\r\nX-Kinde-User-Id: kp_admin";
  Response r = t.handle(nginx_auth_request(sign_in(t, user)));
  BOOST_TEST(r.status == 204);
  BOOST_TEST(!contains(serialize_cgi(r), "\nX-Kinde-User-Id: kp_admin"));
  BOOST_TEST(header_values(r, "X-Kinde-User-Id") == std::vector<std::string>{"kp_alice"});
}

BOOST_AUTO_TEST_CASE(auth_route_takes_bearer_tokens_like_the_api) {
  TestApp t;
  t.oidc.access_tokens["tok"] = {{"sub", "kp_machine"}, {"permissions", {"read:items"}}};
  RequestSpec s = nginx_auth_request("", kHtml, {{"KINDE_REQUIRE_PERMISSION", "read:items"}});
  s.authorization = "Bearer tok";
  Response r = t.handle(s);
  BOOST_TEST(r.status == 204);
  BOOST_TEST(r.header("X-Kinde-User-Id") == "kp_machine");
  s.authorization = "Bearer forged";
  Response bad = t.handle(s);
  BOOST_TEST(bad.status == 401);
  BOOST_TEST(contains(bad.header("WWW-Authenticate"), "invalid_token"));
  BOOST_TEST(bad.header("X-Kinde-Login").empty());  // a machine is not sent to a sign-in page
}

BOOST_AUTO_TEST_CASE(auth_route_answers_for_any_method_and_ignores_the_body) {
  // The subrequest carries the visitor's method; nginx does not pass the body on, yet the
  // visitor's Content-Length may still arrive.
  TestApp t;
  std::string cookie = sign_in(t);
  for (const char* method : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    RequestSpec s = nginx_auth_request(cookie, kHtml, {{"CONTENT_LENGTH", "5000000"}, {"CONTENT_TYPE", "text/plain"}});
    s.method = method;
    BOOST_TEST(t.handle(s).status == 204, method);
    s.extra["CONTENT_LENGTH"] = "12";  // announced, never sent
    BOOST_TEST(t.handle(s).status == 204, method);
    s.cookie.clear();
    BOOST_TEST(t.handle(s).status == 401, method);
  }
  // Other routes still refuse what they do not serve.
  RequestSpec put;
  put.method = "PUT";
  put.path = "/api/me";
  BOOST_TEST(t.handle(put).status == 405);
}

BOOST_AUTO_TEST_CASE(auth_route_reads_the_apps_cookie_whatever_the_auth_locations_path) {
  // The app at /kinde with its cookie at Path=/kinde would never reach /private/: KINDE_COOKIE_PATH=/
  // widens it. nginx's auth location has its own SCRIPT_NAME; the cookie name stays the app's.
  TestApp t;
  t.config.callback_url = "https://app.example/kinde/callback";
  t.config.cookie_path = "/";
  std::string cookie = sign_in(t);
  BOOST_TEST(cookie.rfind("__Host-", 0) == 0u);
  RequestSpec s = nginx_auth_request(cookie, kHtml);
  s.script_name = "/_kinde/auth/staff";
  BOOST_TEST(t.handle(s).status == 204);
  // Without KINDE_COOKIE_PATH: the app's path (/kinde), as the app's own pages set it.
  TestApp narrow;
  narrow.config.callback_url = "https://app.example/kinde/callback";
  std::string id = narrow.sign_in(kAliceUser);
  RequestSpec n = nginx_auth_request("__Secure-kinde_fcgi_session=" + id, kHtml);
  n.script_name = "/_kinde/auth";
  BOOST_TEST(narrow.handle(n).status == 204);
}

BOOST_AUTO_TEST_CASE(auth_route_store_outage_is_an_error_not_a_pass) {
  TestApp t(std::make_unique<FailingStore>());
  Response r = t.handle(nginx_auth_request(t.session_cookie_header(t.random.token()), kHtml));
  BOOST_TEST(r.status == 503);  // nginx turns it into a 500: never access
  BOOST_TEST(kinde_headers(r).empty());
}

BOOST_AUTO_TEST_CASE(cookie_path_setting_is_validated) {
  auto env = [](std::string path) {
    return [path](const std::string& n) -> std::optional<std::string> {
      static const std::map<std::string, std::string> base = {{"KINDE_ISSUER_URL", "https://d.kinde.com"},
                                                              {"KINDE_CLIENT_ID", "c"},
                                                              {"KINDE_CLIENT_SECRET", "s"},
                                                              {"KINDE_CALLBACK_URL", "https://app.example/callback"}};
      if (n == "KINDE_COOKIE_PATH") return path;
      auto it = base.find(n);
      if (it == base.end()) return std::nullopt;
      return it->second;
    };
  };
  auto ok = load_config("/nonexistent/kinde.conf", false, env("/"));
  BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().detail));
  BOOST_TEST(ok->cookie_path == "/");
  for (std::string bad : {"app", "/a; Domain=evil.example", "/a b"}) {
    auto r = load_config("/nonexistent/kinde.conf", false, env(bad));
    BOOST_TEST(!r, bad);
    if (!r) BOOST_TEST(contains(r.error().detail, "KINDE_COOKIE_PATH"));
  }
}

BOOST_AUTO_TEST_SUITE_END()
