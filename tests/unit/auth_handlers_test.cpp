// Handlers with a FakeOidcClient, the memory store and a FixedClock: the authorize URL (PKCE), /login,
// /register, /create-org, /callback, /logout, token refresh on session load, a failing session store,
// and the API routes (/items/{id}, /api/me, bearer tokens).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "fakes.hpp"
#include "oidc/authorize.hpp"
#include "util/log.hpp"

using namespace kinde;
using namespace kinde::testing;
using nlohmann::json;

namespace {


std::string param(const Params& p, const std::string& name) { return find_param(p, name).value_or("<absent>"); }

// One started sign-in: what the browser holds after GET /login.
struct Started {
  Response response;
  Params authorize;      // the authorize URL's parameters
  std::string state, nonce;
  std::string set_line;  // the sign-in cookie's Set-Cookie line
  std::string cookie;    // "name=value", as the browser sends it back
};

Started start_login(TestApp& t, const std::string& query = "", const std::string& cookie = "",
                    const std::string& path = "/login") {
  Started s;
  s.response = t.handle(get_request(path, query, cookie));
  BOOST_REQUIRE_MESSAGE(s.response.status == 302, "login answered " << s.response.status << ": " << s.response.body);
  s.authorize = query_of(s.response.header("Location"));
  s.state = param(s.authorize, "state");
  s.nonce = param(s.authorize, "nonce");
  auto set = signin_cookies_set(s.response);
  BOOST_REQUIRE_MESSAGE(set.size() == 1u, "one sign-in cookie per login, got " << set.size());
  s.set_line = set[0];
  s.cookie = cookie_name_of(s.set_line) + "=" + cookie_value(s.set_line);
  return s;
}

// The Cookie header of a browser holding every sign-in cookie in `started`.
std::string cookies_of(const std::vector<Started>& started) {
  std::string out;
  for (const auto& s : started) out += (out.empty() ? "" : "; ") + s.cookie;
  return out;
}

// Scripts the provider to answer the code exchange with tokens whose ID token carries `nonce`.
void script_tokens(TestApp& t, const std::string& nonce, const std::string& sub = "kp_user1") {
  t.oidc.exchange_result.access_token = "at.1.jwt";
  t.oidc.exchange_result.id_token = "idt-1";
  t.oidc.exchange_result.refresh_token = "rt-1";
  t.oidc.exchange_result.expires_at = kNow + 3600;
  t.oidc.id_tokens["idt-1"] = {{"iss", "https://idp.example"}, {"sub", sub},           {"nonce", nonce},
                               {"given_name", "Ada"},          {"family_name", "Lovelace"}, {"email", "ada@example.com"}};
  t.oidc.access_tokens["at.1.jwt"] = {{"sub", sub}, {"permissions", {"read:items"}}, {"org_code", "org_1"}};
}

Response callback(TestApp& t, const Started& s, const std::string& extra_cookie = "",
                  const std::string& code = "code-1") {
  std::string cookie = s.cookie;
  if (!extra_cookie.empty()) cookie += "; " + extra_cookie;
  return t.handle(get_request("/callback", "code=" + code + "&state=" + s.state, cookie));
}

// Sessions in the recorder that hold a signed-in user.
int user_sessions_saved(const TestApp& t) {
  int n = 0;
  for (const auto& s : t.recorder->saved) n += signed_in_from(s.data) ? 1 : 0;
  return n;
}

Tokens tokens_expiring_at(std::int64_t exp, const std::string& refresh = "rt-old") {
  return {"at-old", "idt-old", refresh, exp};
}

TokenSet fresh_tokens(const std::string& refresh, const std::string& id_token = "") {
  TokenSet ts;
  ts.access_token = "at.new.jwt";
  ts.refresh_token = refresh;
  ts.id_token = id_token;
  ts.expires_at = kNow + 3600;
  return ts;
}

const json kAda = {{"id", "kp_user1"}, {"given_name", "Ada"}, {"family_name", "Lovelace"}, {"email", "ada@example.com"}};
const json kAdaIdClaims = {{"iss", "https://idp.example"}, {"sub", "kp_user1"}};

}  // namespace

BOOST_AUTO_TEST_SUITE(auth_handlers)

// ---------------------------------------------------------------------------------------------
// The authorize URL.

BOOST_AUTO_TEST_CASE(pkce_challenge_matches_rfc7636_appendix_b) {
  BOOST_TEST(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") ==
             "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

BOOST_AUTO_TEST_CASE(authorize_url_carries_every_parameter_encoded) {
  AuthorizeRequest ar;
  ar.client_id = "client 1";
  ar.redirect_uri = "https://app.example/app/callback?x=1&y=2";
  ar.scope = "openid profile email offline";
  ar.state = "st";
  ar.nonce = "nn";
  ar.code_verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  ar.extra = {{"prompt", "create"}, {"org_name", "Acme & Co"}};
  std::string url = build_authorize_url("https://idp.example/oauth2/auth", ar);
  BOOST_TEST(url.rfind("https://idp.example/oauth2/auth?response_type=code&", 0) == 0u);
  BOOST_TEST(contains(url, "redirect_uri=https%3A%2F%2Fapp.example%2Fapp%2Fcallback%3Fx%3D1%26y%3D2"));
  BOOST_TEST(contains(url, "scope=openid%20profile%20email%20offline"));
  BOOST_TEST(contains(url, "client_id=client%201"));
  Params q = query_of(url);
  BOOST_TEST(q.size() == 10u);
  BOOST_TEST(param(q, "response_type") == "code");
  BOOST_TEST(param(q, "client_id") == "client 1");
  BOOST_TEST(param(q, "redirect_uri") == ar.redirect_uri);
  BOOST_TEST(param(q, "scope") == ar.scope);
  BOOST_TEST(param(q, "state") == "st");
  BOOST_TEST(param(q, "nonce") == "nn");
  BOOST_TEST(param(q, "code_challenge") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  BOOST_TEST(param(q, "code_challenge_method") == "S256");
  BOOST_TEST(param(q, "prompt") == "create");
  BOOST_TEST(param(q, "org_name") == "Acme & Co");
  BOOST_TEST(!contains(url, "code_verifier"));
  BOOST_TEST(!contains(url, ar.code_verifier));

  // An endpoint that already has a query keeps it.
  BOOST_TEST(build_authorize_url("https://idp.example/auth?tenant=a", ar).rfind("https://idp.example/auth?tenant=a&", 0) ==
             0u);
}

BOOST_AUTO_TEST_CASE(logout_url_encodes_return_url_state_and_hint) {
  std::string u = build_logout_url("https://idp.example/logout", "c1", "https://app.example/app/?a=1&b=2", "tok", "st8");
  BOOST_TEST(u.rfind("https://idp.example/logout?", 0) == 0u);
  Params q = query_of(u);
  BOOST_TEST(param(q, "redirect") == "https://app.example/app/?a=1&b=2");
  BOOST_TEST(param(q, "post_logout_redirect_uri") == "https://app.example/app/?a=1&b=2");
  BOOST_TEST(param(q, "client_id") == "c1");
  BOOST_TEST(param(q, "id_token_hint") == "tok");
  BOOST_TEST(param(q, "state") == "st8");
  BOOST_TEST(!contains(build_logout_url("https://idp.example/session/end", "c1", "https://a/", "", ""), "id_token_hint"));
  BOOST_TEST(!contains(build_logout_url("https://idp.example/session/end", "c1", "https://a/", "", ""), "state="));
  BOOST_TEST(build_logout_url("https://idp.example/end?x=1", "c1", "https://a/", "", "").rfind("https://idp.example/end?x=1&", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(the_kinde_logout_fallback_is_only_for_kinde_domains_or_when_configured) {
  ProviderMetadata m;
  BOOST_TEST(provider_logout_endpoint(m, "https://acme.kinde.com", "") == "https://acme.kinde.com/logout");
  BOOST_TEST(provider_logout_endpoint(m, "https://acme.kinde.com/", "") == "https://acme.kinde.com/logout");
  BOOST_TEST(provider_logout_endpoint(m, "https://kinde.com", "") == "https://kinde.com/logout");
  BOOST_TEST(provider_logout_endpoint(m, "https://idp.example", "") == "");
  BOOST_TEST(provider_logout_endpoint(m, "https://evilkinde.com", "") == "");
  BOOST_TEST(provider_logout_endpoint(m, "https://acme.kinde.com.evil.example", "") == "");
  BOOST_TEST(provider_logout_endpoint(m, "https://idp.example", "https://idp.example/bye") == "https://idp.example/bye");
  m.end_session_endpoint = "https://idp.example/session/end";
  BOOST_TEST(provider_logout_endpoint(m, "https://acme.kinde.com", "https://idp.example/bye") ==
             "https://idp.example/session/end");
}

// ---------------------------------------------------------------------------------------------
// /login, /register, /create-org.

BOOST_AUTO_TEST_CASE(login_seals_the_sign_in_into_its_own_cookie_and_stores_nothing) {
  TestApp t;
  Started s = start_login(t, "next=%2Fitems%2F42%3Fq%3Dhi");
  const Params& q = s.authorize;
  BOOST_TEST(s.response.header("Location").rfind("https://idp.example/oauth2/auth?", 0) == 0u);
  BOOST_TEST(param(q, "response_type") == "code");
  BOOST_TEST(param(q, "client_id") == "client-123");
  BOOST_TEST(param(q, "redirect_uri") == "https://app.example/callback");
  BOOST_TEST(param(q, "scope") == "openid profile email offline");
  BOOST_TEST(param(q, "code_challenge_method") == "S256");
  BOOST_TEST(is_valid_session_id(s.state));
  BOOST_TEST(is_valid_session_id(s.nonce));
  BOOST_TEST(s.state != s.nonce);

  // Nothing on the server: the store saw no call at all.
  BOOST_TEST(t.recorder->saved.empty());
  BOOST_TEST(t.recorder->updates == 0);
  BOOST_TEST(t.recorder->removed.empty());

  // Secure at "/": the __Host- prefix, named after the state, sealed (no value in clear).
  const std::string name = cookie_name_of(s.set_line);
  BOOST_TEST(name == "__Host-kinde_fcgi_auth_" + session_id_hash(s.state).substr(0, 16));
  const std::string value = cookie_value(s.set_line);
  for (const std::string& secret : {s.state, s.nonce, std::string("/items/42")}) BOOST_TEST(!contains(value, secret));
  json pd = t.pending_of(s.set_line);
  BOOST_TEST(pd.at("s") == s.state);
  BOOST_TEST(pd.at("n") == s.nonce);
  BOOST_TEST(pd.at("x") == "/items/42?q=hi");
  BOOST_TEST(pd.at("r") == "https://app.example/callback");
  BOOST_TEST(pd.at("t") == kNow);
  std::string verifier = pd.at("v");
  BOOST_TEST(param(q, "code_challenge") == pkce_challenge(verifier));
  BOOST_TEST(!contains(s.response.header("Location"), verifier));

  BOOST_TEST(contains(s.set_line, "; Path=/;"));
  BOOST_TEST(contains(s.set_line, "; HttpOnly"));
  BOOST_TEST(contains(s.set_line, "; SameSite=Lax"));
  BOOST_TEST(contains(s.set_line, "; Secure"));
  BOOST_TEST(contains(s.set_line, "Max-Age=900"));
  BOOST_TEST(!contains(s.set_line, "Domain="));
  BOOST_TEST(s.response.header("Cache-Control") == "no-store");
}

BOOST_AUTO_TEST_CASE(login_works_with_a_store_that_fails_every_call) {
  auto owned = std::make_unique<FailingStore>();  // reads and writes fail
  TestApp t(std::move(owned));
  for (int i = 0; i < 3; ++i) {
    Started s = start_login(t);
    BOOST_TEST(is_valid_session_id(s.state));
  }
  // Even with a session cookie in the request: /login does not look at the store.
  Started s = start_login(t, "", t.session_cookie_header(SequenceRandom::token_of_call(777)));
  BOOST_TEST(s.response.status == 302);
}

BOOST_AUTO_TEST_CASE(each_login_gets_its_own_cookie_and_at_most_five_live_at_once) {
  TestApp t;
  std::vector<Started> tabs;
  for (int i = 0; i < 5; ++i) {
    t.clock.advance(10);
    tabs.push_back(start_login(t, "", cookies_of(tabs)));
    // Up to five at once: nothing is dropped yet.
    BOOST_TEST(signin_cookies_cleared(tabs.back().response).empty());
  }
  for (std::size_t i = 1; i < tabs.size(); ++i) BOOST_TEST(cookie_name_of(tabs[i].set_line) != cookie_name_of(tabs[0].set_line));

  // A sixth: the oldest goes, and only it.
  t.clock.advance(10);
  Started sixth = start_login(t, "", cookies_of(tabs));
  auto cleared = signin_cookies_cleared(sixth.response);
  BOOST_REQUIRE(cleared.size() == 1u);
  BOOST_TEST(cleared[0] == cookie_name_of(tabs[0].set_line));

  // Cookie order in the header does not decide "oldest": their sealed times do.
  std::vector<Started> reversed(tabs.rbegin(), tabs.rend());
  Started again = start_login(t, "", cookies_of(reversed));
  BOOST_TEST(signin_cookies_cleared(again.response) == std::vector<std::string>{cookie_name_of(tabs[0].set_line)});

  // Stale ones (past 15 minutes) are cleared whatever their number; foreign or damaged ones are left.
  t.clock.advance(901);
  std::string foreign = std::string("__Host-") + kSignInFamily + "0123456789abcdef=not-ours";
  Started late = start_login(t, "", cookies_of({tabs[1], tabs[2]}) + "; " + foreign);
  auto stale = signin_cookies_cleared(late.response);
  BOOST_TEST(stale.size() == 2u);
  bool foreign_cleared =
      std::find(stale.begin(), stale.end(), std::string("__Host-") + kSignInFamily + "0123456789abcdef") != stale.end();
  BOOST_TEST(!foreign_cleared);
}

BOOST_AUTO_TEST_CASE(login_filters_next_to_a_local_path_and_caps_its_length) {
  TestApp t;
  BOOST_TEST(t.pending_of(start_login(t, "next=%2F%2Fevil.example").set_line)["x"] == "/");
  BOOST_TEST(t.pending_of(start_login(t, "next=https%3A%2F%2Fevil.example").set_line)["x"] == "/");
  BOOST_TEST(t.pending_of(start_login(t, "next=%2F%5Cevil.example").set_line)["x"] == "/");
  BOOST_TEST(t.pending_of(start_login(t, "next=%2Fdashboard").set_line)["x"] == "/dashboard");
  // A next so long the cookie could not hold it lands on the home page instead.
  Started huge = start_login(t, "next=%2F" + std::string(3000, 'a'));
  BOOST_TEST(t.pending_of(huge.set_line)["x"] == "/");
  BOOST_TEST(huge.set_line.size() < 4000u);
  Started big = start_login(t, "next=%2F" + std::string(1900, 'a'));
  BOOST_TEST(t.pending_of(big.set_line)["x"] == "/" + std::string(1900, 'a'));
  BOOST_TEST(big.set_line.size() < 4000u);
}

BOOST_AUTO_TEST_CASE(register_adds_prompt_create) {
  TestApp t;
  Started s = start_login(t, "", "", "/register");
  BOOST_TEST(param(s.authorize, "prompt") == "create");
  Started plain = start_login(t);
  BOOST_TEST(param(plain.authorize, "prompt") == "<absent>");
}

BOOST_AUTO_TEST_CASE(create_org_adds_is_create_org_and_org_name) {
  TestApp t;
  Started s = start_login(t, "org_name=Acme+%26+Co", "", "/create-org");
  BOOST_TEST(param(s.authorize, "is_create_org") == "true");
  BOOST_TEST(param(s.authorize, "org_name") == "Acme & Co");
  BOOST_TEST(contains(s.response.header("Location"), "org_name=Acme%20%26%20Co"));

  Response bad = t.handle(get_request("/create-org", "org_name=a%0Ab"));
  BOOST_TEST(bad.status == 400);
}

BOOST_AUTO_TEST_CASE(only_allow_listed_parameters_pass_through_to_the_provider) {
  TestApp t;
  Started s = start_login(t,
                          "org_code=org_9&lang=pl&login_hint=ada%40example.com&connection_id=conn_1&invitation_code=inv"
                          "&audience=https%3A%2F%2Fapi.example&prompt=none&redirect_uri=https%3A%2F%2Fevil.example"
                          "&scope=admin&client_id=other&response_type=token&foo=bar");
  const Params& q = s.authorize;
  BOOST_TEST(param(q, "org_code") == "org_9");
  BOOST_TEST(param(q, "lang") == "pl");
  BOOST_TEST(param(q, "login_hint") == "ada@example.com");
  BOOST_TEST(param(q, "connection_id") == "conn_1");
  BOOST_TEST(param(q, "invitation_code") == "inv");
  BOOST_TEST(param(q, "audience") == "https://api.example");
  BOOST_TEST(param(q, "prompt") == "<absent>");
  BOOST_TEST(param(q, "foo") == "<absent>");
  BOOST_TEST(count_param(q, "redirect_uri") == 1u);
  BOOST_TEST(param(q, "redirect_uri") == "https://app.example/callback");
  BOOST_TEST(count_param(q, "scope") == 1u);
  BOOST_TEST(param(q, "scope") == "openid profile email offline");
  BOOST_TEST(count_param(q, "client_id") == 1u);
  BOOST_TEST(param(q, "client_id") == "client-123");
  BOOST_TEST(count_param(q, "response_type") == 1u);
  BOOST_TEST(param(q, "response_type") == "code");
}

BOOST_AUTO_TEST_CASE(configured_org_code_and_audience_are_sent_unless_overridden) {
  TestApp t;
  t.config.org_code = "org_default";
  t.config.audience = "https://api.default";
  Started s = start_login(t);
  BOOST_TEST(param(s.authorize, "org_code") == "org_default");
  BOOST_TEST(param(s.authorize, "audience") == "https://api.default");
  Started o = start_login(t, "org_code=org_other");
  BOOST_TEST(param(o.authorize, "org_code") == "org_other");
  BOOST_TEST(count_param(o.authorize, "org_code") == 1u);
}

BOOST_AUTO_TEST_CASE(repeated_parameters_on_login_are_400) {
  TestApp t;
  for (const char* q : {"org_code=a&org_code=b", "lang=en&lang=pl", "next=%2Fa&next=%2Fb"}) {
    BOOST_TEST_CONTEXT(q) {
      Response r = t.handle(get_request("/login", q));
      BOOST_TEST(r.status == 400);
    }
  }
  BOOST_TEST(t.recorder->saved.empty());
}

BOOST_AUTO_TEST_CASE(login_with_the_provider_down_is_503_and_saves_nothing) {
  TestApp t;
  t.oidc.metadata_error = make_error(kDiscoveryFailed, "connection refused");
  Response r = t.handle(get_request("/login"));
  BOOST_TEST(r.status == 503);
  BOOST_TEST(t.recorder->saved.empty());
  BOOST_TEST(!contains(r.body, "connection refused"));
}

// ---------------------------------------------------------------------------------------------
// /callback.

BOOST_AUTO_TEST_CASE(callback_success_creates_a_new_session_and_redirects_to_next) {
  TestApp t;
  std::string old_id = t.sign_in({{"id", "kp_someone"}});
  Started s = start_login(t, "next=%2Fitems%2F42", t.session_cookie_header(old_id));
  script_tokens(t, s.nonce);
  std::string verifier = t.pending_of(s.set_line)["v"];

  Response r = callback(t, s, t.session_cookie_header(old_id));
  BOOST_TEST(r.status == 303);
  BOOST_TEST(r.header("Location") == "/items/42");

  BOOST_REQUIRE(t.oidc.exchanges.size() == 1u);
  BOOST_TEST(t.oidc.exchanges[0].code == "code-1");
  BOOST_TEST(t.oidc.exchanges[0].verifier == verifier);
  BOOST_TEST(t.oidc.exchanges[0].redirect_uri == "https://app.example/callback");
  BOOST_REQUIRE(!t.oidc.id_checks.empty());
  BOOST_TEST(t.oidc.id_checks[0].second == s.nonce);

  BOOST_TEST(t.session_cookie_name() == "__Host-kinde_fcgi_session");
  std::string sc = set_cookie(r, t.session_cookie_name());
  std::string new_id = cookie_value(sc);
  BOOST_TEST(is_valid_session_id(new_id));
  BOOST_TEST(new_id != old_id);
  BOOST_TEST(new_id != s.state);
  BOOST_TEST(contains(sc, "; Path=/;"));
  BOOST_TEST(contains(sc, "; HttpOnly"));
  BOOST_TEST(contains(sc, "; SameSite=Lax"));
  BOOST_TEST(contains(sc, "; Secure"));
  BOOST_TEST(!contains(sc, "Max-Age=0"));
  // The sign-in cookie has done its job.
  BOOST_TEST(signin_cookies_cleared(r) == std::vector<std::string>{cookie_name_of(s.set_line)});
  // The first write of the sign-in is the session itself.
  BOOST_REQUIRE(!t.recorder->saved.empty());
  BOOST_TEST(t.recorder->saved.size() == 2u);  // the old session (sign_in above) and the new one
  BOOST_TEST(t.recorder->saved.back().id == new_id);

  auto stored = t.stored(new_id);
  BOOST_REQUIRE(stored.has_value());
  BOOST_TEST(record_of(stored).user["id"] == "kp_user1");
  BOOST_TEST(record_of(stored).user["given_name"] == "Ada");
  BOOST_TEST(record_of(stored).tokens.refresh_token == "rt-1");
  BOOST_TEST(record_of(stored).access_claims["org_code"] == "org_1");
  BOOST_TEST(!t.stored(old_id).has_value());   // the old session is gone
  // No token is put in a cookie or the redirect.
  for (const auto& c : r.cookies) {
    BOOST_TEST(!contains(c, "at.1.jwt"));
    BOOST_TEST(!contains(c, "idt-1"));
    BOOST_TEST(!contains(c, "rt-1"));
  }

  // The new cookie signs the browser in.
  Response home = t.handle(get_request("/", "", t.session_cookie_header(new_id)));
  BOOST_TEST(contains(home.body, "Ada Lovelace"));
}

BOOST_AUTO_TEST_CASE(callback_ignores_an_attacker_chosen_session_cookie) {
  TestApp t;
  std::string planted = SequenceRandom::token_of_call(9999);  // valid shape, not in the store
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  Response r = callback(t, s, t.session_cookie_header(planted));
  BOOST_TEST(r.status == 303);
  BOOST_TEST(cookie_value(set_cookie(r, t.session_cookie_name())) != planted);
}

BOOST_AUTO_TEST_CASE(callback_cookie_is_not_secure_when_configured_off_and_scoped_to_prefix) {
  TestApp t;
  t.config.cookie_secure = false;
  RequestSpec login;
  login.path = "/login";
  login.script_name = "/app";
  Response lr = t.handle(login);
  BOOST_REQUIRE(lr.status == 302);
  Params q = query_of(lr.header("Location"));
  auto set = signin_cookies_set(lr);
  BOOST_REQUIRE(set.size() == 1u);
  // Not Secure: plain names (http on loopback, the tests).
  BOOST_TEST(cookie_name_of(set[0]).rfind(kSignInFamily, 0) == 0u);
  BOOST_TEST(!contains(set[0], "Secure"));
  BOOST_TEST(contains(set[0], "; Path=/app;"));
  script_tokens(t, param(q, "nonce"));

  RequestSpec cb;
  cb.path = "/callback";
  cb.script_name = "/app";
  cb.query = "code=c&state=" + param(q, "state");
  cb.cookie = cookie_name_of(set[0]) + "=" + cookie_value(set[0]);
  Response r = t.handle(cb);
  BOOST_TEST(r.status == 303);
  BOOST_TEST(r.header("Location") == "/app/");
  std::string sc = set_cookie(r, "kinde_fcgi_session");
  BOOST_TEST(!contains(sc, "Secure"));
  BOOST_TEST(contains(sc, "; Path=/app;"));
  BOOST_TEST(contains(sc, "HttpOnly"));
}

BOOST_AUTO_TEST_CASE(several_tabs_sign_in_at_once_each_with_its_own_cookie) {
  TestApp t;
  Started a = start_login(t, "next=%2Fa");
  Started b = start_login(t, "next=%2Fb", a.cookie);
  Started c = start_login(t, "next=%2Fc", cookies_of({a, b}));
  const std::string jar = cookies_of({a, b, c});
  // Finished in another order than started; each lands on its own next and spends only its cookie.
  for (const Started* s : {&b, &c, &a}) {
    script_tokens(t, s->nonce);
    Response r = t.handle(get_request("/callback", "code=code-1&state=" + s->state, jar));
    BOOST_TEST(r.status == 303);
    BOOST_TEST(r.header("Location") == t.pending_of(s->set_line)["x"].get<std::string>());
    BOOST_TEST(signin_cookies_cleared(r) == std::vector<std::string>{cookie_name_of(s->set_line)});
  }
  BOOST_TEST(t.oidc.exchanges.size() == 3u);
}

BOOST_AUTO_TEST_CASE(state_is_used_once) {
  TestApp t;
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  Response first = callback(t, s);
  BOOST_TEST(first.status == 303);
  BOOST_TEST(signin_cookies_cleared(first) == std::vector<std::string>{cookie_name_of(s.set_line)});

  // The browser dropped the cookie as told: the same callback again is refused before the provider.
  Response again = t.handle(get_request("/callback", "code=code-1&state=" + s.state));
  BOOST_TEST(again.status == 400);
  BOOST_TEST(contains(again.body, "already used, has expired"));
  BOOST_TEST(t.oidc.exchanges.size() == 1u);
  BOOST_TEST(set_cookie(again, t.session_cookie_name()).empty());

  // Someone who copied the cookie before it was spent: the code is presented again, and the
  // provider, for which a code is single-use (RFC 6749 4.1.2), refuses it. No session follows.
  t.oidc.exchange_error = make_error(kTokenError, "invalid_grant: code already used");
  Response copied = callback(t, s);
  BOOST_TEST(copied.status == 400);
  BOOST_TEST(t.oidc.exchanges.size() == 2u);
  BOOST_TEST(set_cookie(copied, t.session_cookie_name()).empty());
  BOOST_TEST(user_sessions_saved(t) == 1);
}

BOOST_AUTO_TEST_CASE(callback_without_its_cookie_or_with_a_wrong_one_is_refused) {
  TestApp t;
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  const std::string name = cookie_name_of(s.set_line);
  const std::string value = cookie_value(s.set_line);
  Started other = start_login(t);

  // Another browser (no cookie), another attempt's cookie, a tampered one, one copied under this
  // state's name from another attempt, one sealed under another key.
  std::string flipped = value;
  flipped[flipped.size() / 2] = flipped[flipped.size() / 2] == 'A' ? 'B' : 'A';
  TestApp foreign;  // another app, or a server with another KINDE_SESSION_SECRET
  foreign.sealer = make_sealer(std::string(40, 'z'), foreign.seal_random);
  Started foreign_login = start_login(foreign);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no cookie", ""},
      {"another attempt's cookie", other.cookie},
      {"tampered", name + "=" + flipped},
      {"another attempt's value under this name", name + "=" + cookie_value(other.set_line)},
      {"garbage", name + "=x"},
  };
  for (const auto& [what, cookie] : cases) {
    BOOST_TEST_CONTEXT(what) {
      Response r = t.handle(get_request("/callback", "code=c&state=" + s.state, cookie));
      BOOST_TEST(r.status == 400);
      BOOST_TEST(contains(r.body, "started in another browser"));
      BOOST_TEST(set_cookie(r, t.session_cookie_name()).empty());
    }
  }
  // Sealed by an app with another key (its own state, cookie and name).
  Response k = t.handle(get_request("/callback", "code=c&state=" + foreign_login.state, foreign_login.cookie));
  BOOST_TEST(k.status == 400);
  BOOST_TEST(t.oidc.exchanges.empty());
  BOOST_TEST(user_sessions_saved(t) == 0);
  BOOST_TEST(t.recorder->saved.empty());
  // The real one still works afterwards: a refused stranger does not spend it.
  BOOST_TEST(callback(t, s).status == 303);
}

BOOST_AUTO_TEST_CASE(provider_error_codes_show_fixed_words_and_spend_the_cookie) {
  TestApp t;
  Started s = start_login(t);
  Response denied = t.handle(get_request("/callback", "error=access_denied&state=" + s.state, s.cookie));
  BOOST_TEST(denied.status == 400);
  BOOST_TEST(contains(denied.body, "Sign-in was cancelled."));
  BOOST_TEST(contains(denied.body, "href=\"" + mstch_escaped("/login") + "\""));  // a way to try again
  BOOST_TEST(signin_cookies_cleared(denied) == std::vector<std::string>{cookie_name_of(s.set_line)});

  // An unknown code and its description: fixed words on the page, the raw values in the log only.
  Response other = t.handle(get_request(
      "/callback", "error=call_555_0100_now&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=x"));
  BOOST_TEST(other.status == 400);
  BOOST_TEST(contains(other.body, "The sign-in provider could not complete the sign-in."));
  BOOST_TEST(!contains(other.body, "call_555"));
  BOOST_TEST(!contains(other.body, "script"));
  Response known = t.handle(get_request("/callback", "error=server_error&error_description=Ring%20us&state=x"));
  BOOST_TEST(contains(known.body, "had a problem"));
  BOOST_TEST(!contains(known.body, "Ring us"));
  BOOST_TEST(t.oidc.exchanges.empty());
}

BOOST_AUTO_TEST_CASE(callback_iss_must_be_the_issuer_rfc9207) {
  TestApp t;
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  for (const char* iss : {"https%3A%2F%2Fattacker.example", "https%3A%2F%2Fidp.example%2F", "https%3A%2F%2FIDP.example",
                          "", "https%3A%2F%2Fidp.example.attacker"}) {
    BOOST_TEST_CONTEXT(iss) {
      Response r = t.handle(get_request("/callback", std::string("code=c&iss=") + iss + "&state=" + s.state, s.cookie));
      BOOST_TEST(r.status == 400);
      BOOST_TEST(contains(r.body, "another provider"));
    }
  }
  // Also on error responses (RFC 9207 2.4): a foreign provider's "error" is not believed either.
  Response err = t.handle(get_request("/callback", "error=access_denied&iss=https%3A%2F%2Fattacker.example&state=" + s.state, s.cookie));
  BOOST_TEST(err.status == 400);
  BOOST_TEST(contains(err.body, "another provider"));
  BOOST_TEST(t.oidc.exchanges.empty());
  // Repeated: refused as any repeated parameter.
  BOOST_TEST(t.handle(get_request("/callback", "code=c&iss=a&iss=b&state=" + s.state, s.cookie)).status == 400);
  // Exactly the issuer: the sign-in goes on.
  Response ok = t.handle(get_request("/callback", "code=c&iss=https%3A%2F%2Fidp.example&state=" + s.state, s.cookie));
  BOOST_TEST(ok.status == 303);
}

BOOST_AUTO_TEST_CASE(expired_sign_in_link_restarts_the_login_with_reauth_values) {
  TestApp t;
  // base64 of {"org_code":"org_7","lang":"en","evil":"x"}
  std::string reauth = base64url_encode(R"({"org_code":"org_7","lang":"en","evil":"x"})");
  Response r = t.handle(get_request("/callback", "error=login_link_expired&reauth_state=" + reauth));
  BOOST_TEST(r.status == 302);
  std::string loc = r.header("Location");
  BOOST_TEST(loc.rfind("/login?", 0) == 0u);
  Params q = query_of(loc);
  BOOST_TEST(param(q, "org_code") == "org_7");
  BOOST_TEST(param(q, "lang") == "en");
  BOOST_TEST(param(q, "evil") == "<absent>");
}

BOOST_AUTO_TEST_CASE(id_token_verification_failure_is_401_and_creates_no_session) {
  TestApp t;
  Started s = start_login(t);
  script_tokens(t, "a-different-nonce");  // the fake refuses: nonce mismatch
  Response r = callback(t, s);
  BOOST_TEST(r.status == 401);
  BOOST_TEST(contains(r.body, kTokenBadNonce));
  BOOST_TEST(set_cookie(r, t.session_cookie_name()).empty());
  BOOST_TEST(user_sessions_saved(t) == 0);

  Started s2 = start_login(t);
  script_tokens(t, s2.nonce);
  t.oidc.exchange_result.id_token = "forged";  // unknown to the fake: bad signature
  Response f = callback(t, s2);
  BOOST_TEST(f.status == 401);
  BOOST_TEST(user_sessions_saved(t) == 0);
}

BOOST_AUTO_TEST_CASE(token_error_is_400_and_provider_unavailable_is_503) {
  TestApp t;
  Started s = start_login(t);
  t.oidc.exchange_error = make_error(kTokenError, "invalid_grant");
  Response refused = callback(t, s);
  BOOST_TEST(refused.status == 400);
  BOOST_TEST(contains(refused.body, "refused the sign-in code"));
  BOOST_TEST(user_sessions_saved(t) == 0);

  Started s2 = start_login(t);
  t.oidc.exchange_error = make_error(kTokenEndpointFailed, "timeout after 10000 ms");
  Response down = callback(t, s2);
  BOOST_TEST(down.status == 503);
  BOOST_TEST(user_sessions_saved(t) == 0);
}

BOOST_AUTO_TEST_CASE(repeated_state_or_code_on_callback_is_400) {
  TestApp t;
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  std::string cookie = s.cookie;
  for (std::string q : {"code=a&code=b&state=" + s.state, "code=a&state=" + s.state + "&state=" + s.state}) {
    BOOST_TEST_CONTEXT(q) {
      Response r = t.handle(get_request("/callback", q, cookie));
      BOOST_TEST(r.status == 400);
      BOOST_TEST(contains(r.body, "repeated parameter"));
    }
  }
  BOOST_TEST(t.oidc.exchanges.empty());
  // Refusing the repeated parameters did not use up the state.
  BOOST_TEST(callback(t, s).status == 303);
}

BOOST_AUTO_TEST_CASE(callback_without_state_or_code_is_400) {
  TestApp t;
  BOOST_TEST(t.handle(get_request("/callback", "code=abc")).status == 400);
  Started s = start_login(t);
  Response r = t.handle(get_request("/callback", "state=" + s.state, s.cookie));
  BOOST_TEST(r.status == 400);
  BOOST_TEST(t.oidc.exchanges.empty());
}

BOOST_AUTO_TEST_CASE(sign_in_older_than_fifteen_minutes_is_refused) {
  TestApp t;
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  t.clock.advance(901);
  Response r = callback(t, s);
  BOOST_TEST(r.status == 400);
  BOOST_TEST(t.oidc.exchanges.empty());
}

// ---------------------------------------------------------------------------------------------
// Providers that name the user only in UserInfo, opaque access tokens, no refresh token.

// A sign-in whose ID token carries only sub (LemonLDAP's default, oauth2-mock-server's): returns the stored session.
std::optional<Session> nameless_sign_in(TestApp& t, const json& userinfo, const std::string& access = "at.1.jwt") {
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  t.oidc.exchange_result.access_token = access;
  t.oidc.id_tokens["idt-1"] = {{"iss", "https://idp.example"}, {"sub", "kp_user1"}, {"nonce", s.nonce}};
  if (!userinfo.is_null()) t.oidc.userinfos[access] = userinfo;
  Response r = callback(t, s);
  BOOST_REQUIRE_EQUAL(r.status, 303);
  return t.stored(cookie_value(set_cookie(r, t.session_cookie_name())));
}

BOOST_AUTO_TEST_CASE(userinfo_names_a_user_the_id_token_does_not) {
  TestApp t;
  t.oidc.meta.userinfo_endpoint = "https://idp.example/userinfo";
  auto s = nameless_sign_in(t, {{"sub", "kp_user1"}, {"name", "Ada Lovelace"}, {"email", "ada@example.com"}});
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(t.oidc.userinfo_calls == std::vector<std::string>{"at.1.jwt"});
  BOOST_TEST(record_of(s).user["name"] == "Ada Lovelace");
  BOOST_TEST(record_of(s).user["email"] == "ada@example.com");
  BOOST_TEST(record_of(s).user["id"] == "kp_user1");
  Response home = t.handle(get_request("/", "", t.session_cookie_header(s->id)));
  BOOST_TEST(contains(home.body, "Ada Lovelace"));
}

BOOST_AUTO_TEST_CASE(a_userinfo_answer_about_another_subject_is_not_used) {
  TestApp t;
  t.oidc.meta.userinfo_endpoint = "https://idp.example/userinfo";
  auto s = nameless_sign_in(t, {{"sub", "someone_else"}, {"name", "Mallory"}});
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).user["name"] == "");
  Response home = t.handle(get_request("/", "", t.session_cookie_header(s->id)));
  BOOST_TEST(!contains(home.body, "Mallory"));
  BOOST_TEST(contains(home.body, "kp_user1"));  // nothing names the user: the subject, never a blank
}

BOOST_AUTO_TEST_CASE(userinfo_is_not_called_when_the_id_token_names_the_user_or_no_endpoint_is_listed) {
  TestApp t;
  t.oidc.meta.userinfo_endpoint = "https://idp.example/userinfo";
  Started st = start_login(t);
  script_tokens(t, st.nonce);
  BOOST_TEST(callback(t, st).status == 303);
  BOOST_TEST(t.oidc.userinfo_calls.empty());
  TestApp none;  // the fake lists no userinfo_endpoint
  auto s = nameless_sign_in(none, {{"sub", "kp_user1"}, {"name", "Ada"}});
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(none.oidc.userinfo_calls.empty());
  BOOST_TEST(record_of(s).user["name"] == "");
  // A failing UserInfo endpoint leaves the sign-in as it was.
  TestApp failing;
  failing.oidc.meta.userinfo_endpoint = "https://idp.example/userinfo";
  BOOST_TEST(nameless_sign_in(failing, nullptr).has_value());
}

BOOST_AUTO_TEST_CASE(an_opaque_session_access_token_is_not_verified_and_its_claims_come_from_the_id_token) {
  TestApp t;
  t.oidc.meta.userinfo_endpoint = "https://idp.example/userinfo";
  t.oidc.access_tokens["opaque-at"] = {{"sub", "kp_user1"}, {"permissions", {"must:not:appear"}}};
  auto s = nameless_sign_in(t, {{"sub", "kp_user1"}, {"given_name", "Ada"}}, "opaque-at");
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).access_claims == json::object());
  BOOST_TEST(record_of(s).user["given_name"] == "Ada");
}

BOOST_AUTO_TEST_CASE(without_a_refresh_token_the_session_lives_on_but_the_expired_access_tokens_claims_do_not) {
  TestApp t;
  Started st = start_login(t);
  script_tokens(t, st.nonce);
  t.oidc.exchange_result.refresh_token = "";
  t.oidc.exchange_result.access_token = "a.b.c";
  t.oidc.exchange_result.expires_at = kNow + 600;
  t.oidc.access_tokens["a.b.c"] = {{"sub", "kp_user1"}, {"permissions", {"read:items"}}};
  Response r = callback(t, st);
  BOOST_REQUIRE_EQUAL(r.status, 303);
  const std::string cookie = t.session_cookie_header(cookie_value(set_cookie(r, t.session_cookie_name())));
  json before = json::parse(t.handle(get_request("/api/me", "", cookie)).body);
  BOOST_TEST(before["permissions"] == json::array({"read:items"}));
  t.clock.advance(601);  // the access token (expires_at now + 600) has expired; nothing can refresh it
  Response after = t.handle(get_request("/api/me", "", cookie));
  BOOST_TEST(after.status == 200);
  json me = json::parse(after.body);
  BOOST_TEST(me["user"]["given_name"] == "Ada");
  BOOST_TEST(me["permissions"] == json::array());
  BOOST_TEST(t.oidc.refreshes.empty());
  BOOST_TEST(contains(t.handle(get_request("/", "", cookie)).body, "Ada Lovelace"));
}

// ---------------------------------------------------------------------------------------------
// /logout.

BOOST_AUTO_TEST_CASE(logout_removes_the_session_and_expires_the_cookie) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_of("idt-xyz"));
  RequestSpec s;
  s.method = "POST";
  s.path = "/logout";
  s.cookie = t.session_cookie_header(id);
  Response r = t.handle(s);
  BOOST_TEST(r.status == 303);
  BOOST_TEST(!t.stored(id).has_value());
  std::string sc = set_cookie(r, t.session_cookie_name());
  BOOST_TEST(contains(sc, "Max-Age=0"));
  BOOST_TEST(cookie_value(sc) == "");
  std::string loc = r.header("Location");
  BOOST_TEST(loc.rfind("https://idp.example/logout?", 0) == 0u);
  Params q = query_of(loc);
  BOOST_TEST(param(q, "redirect") == "https://app.example/");
  BOOST_TEST(param(q, "id_token_hint") == "idt-xyz");
  BOOST_TEST(param(q, "client_id") == "client-123");

  // The old cookie no longer signs anyone in.
  Response home = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(!contains(home.body, "Lovelace"));
}

BOOST_AUTO_TEST_CASE(logout_from_another_site_asks_first_and_ends_nothing) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_of("idt-xyz"));
  for (const char* method : {"GET", "POST"}) {
    for (const char* site : {"cross-site", "same-site"}) {
      for (const char* path : {"/logout", "/api/auth/logout"}) {
        BOOST_TEST_CONTEXT(method << " " << path << " Sec-Fetch-Site: " << site) {
          RequestSpec s;
          s.method = method;
          s.path = path;
          s.cookie = t.session_cookie_header(id);
          s.extra["HTTP_SEC_FETCH_SITE"] = site;
          Response r = t.handle(s);
          BOOST_TEST(r.status == (std::string(method) == "POST" ? 403 : 200));
          BOOST_TEST(r.header("Location").empty());
          BOOST_TEST(set_cookie(r, t.session_cookie_name()).empty());
          // A button that posts to the same URL, from our own page (CSP form-action 'self').
          BOOST_TEST(contains(r.body, "<form method=\"post\" action=\"" + mstch_escaped(path) + "\""));
          BOOST_TEST(contains(r.body, ">Sign out</button>"));
          BOOST_TEST(contains(r.header("Content-Security-Policy"), "form-action 'self'"));
          BOOST_TEST(t.stored(id).has_value());
        }
      }
    }
  }
  // Under a prefix the form posts to the prefixed URL.
  RequestSpec pre;
  pre.path = "/logout";
  pre.script_name = "/app";
  pre.extra["HTTP_SEC_FETCH_SITE"] = "cross-site";
  BOOST_TEST(contains(t.handle(pre).body, "action=\"" + mstch_escaped("/app/logout") + "\""));

  // The same request from our own pages, typed in, or from a client without Fetch Metadata signs out.
  for (const char* site : {"same-origin", "none", ""}) {
    BOOST_TEST_CONTEXT("Sec-Fetch-Site: " << site) {
      std::string sid = t.sign_in(kAda, tokens_of("idt-xyz"));
      RequestSpec s;
      s.path = "/logout";
      s.cookie = t.session_cookie_header(sid);
      if (*site) s.extra["HTTP_SEC_FETCH_SITE"] = site;
      Response r = t.handle(s);
      BOOST_TEST(r.status == 303);
      BOOST_TEST(!t.stored(sid).has_value());
      BOOST_TEST(clears(set_cookie(r, t.session_cookie_name())));
    }
  }
}

BOOST_AUTO_TEST_CASE(logout_without_a_session_still_expires_the_cookie_and_uses_logout_url) {
  TestApp t;
  t.config.logout_url = "https://app.example/bye";
  Response r = t.handle(get_request("/logout"));
  BOOST_TEST(r.status == 303);
  BOOST_TEST(contains(set_cookie(r, t.session_cookie_name()), "Max-Age=0"));
  BOOST_TEST(param(query_of(r.header("Location")), "redirect") == "https://app.example/bye");
}

BOOST_AUTO_TEST_CASE(logout_sends_a_fresh_state_to_the_providers_end_session_endpoint) {
  TestApp t;
  std::string a = param(query_of(t.handle(get_request("/logout")).header("Location")), "state");
  std::string b = param(query_of(t.handle(get_request("/logout")).header("Location")), "state");
  BOOST_TEST(a.size() >= 43u);
  BOOST_TEST(a != b);
}

BOOST_AUTO_TEST_CASE(logout_without_an_end_session_endpoint_ends_the_local_session_and_returns_home) {
  std::vector<std::string> lines;
  set_log_sink([&](std::string_view l) { lines.emplace_back(l); });
  TestApp t;
  t.oidc.meta.end_session_endpoint.clear();  // issuer https://idp.example: not a Kinde domain
  t.config.logout_url = "https://app.example/bye";
  std::string id = t.sign_in(kAda, tokens_of("idt-1"));
  Response r = t.handle(get_request("/logout", "", t.session_cookie_header(id)));
  std::string id2 = t.sign_in(kAda, tokens_of("idt-2"));
  Response r2 = t.handle(get_request("/logout", "", t.session_cookie_header(id2)));
  set_log_sink(nullptr);
  for (const Response* x : {&r, &r2}) {
    BOOST_TEST(x->status == 303);
    BOOST_TEST(x->header("Location") == "https://app.example/bye");
    BOOST_TEST(clears(set_cookie(*x, t.session_cookie_name())));
  }
  BOOST_TEST(!t.stored(id).has_value());
  BOOST_TEST(!t.stored(id2).has_value());
  int said = 0;
  for (const auto& l : lines) said += contains(l, "lists no end_session_endpoint") ? 1 : 0;
  BOOST_TEST(said <= 1);  // once per process (another test may have said it already)
  // Configured, or a Kinde domain: the provider's sign-out.
  TestApp k;
  k.oidc.meta.end_session_endpoint.clear();
  k.config.end_session_endpoint = "https://idp.example/bye";
  BOOST_TEST(k.handle(get_request("/logout")).header("Location").rfind("https://idp.example/bye?", 0) == 0u);
  TestApp kinde;
  kinde.oidc.meta.end_session_endpoint.clear();
  kinde.config.issuer = "https://acme.kinde.com";
  BOOST_TEST(kinde.handle(get_request("/logout")).header("Location").rfind("https://acme.kinde.com/logout?", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(logout_revokes_the_refresh_token_when_the_provider_lists_a_revocation_endpoint) {
  TestApp t;
  t.oidc.meta.revocation_endpoint = "https://idp.example/oauth2/revoke";
  std::string id = t.sign_in(kAda, tokens_of("idt-1", "rt-to-revoke"));
  Response r = t.handle(get_request("/logout", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 303);
  BOOST_REQUIRE(t.oidc.revoked.size() == 1u);
  BOOST_TEST(t.oidc.revoked[0] == "rt-to-revoke");
  BOOST_TEST(!t.stored(id).has_value());
}

BOOST_AUTO_TEST_CASE(a_failed_revocation_still_signs_out) {
  TestApp t;
  t.oidc.meta.revocation_endpoint = "https://idp.example/oauth2/revoke";
  t.oidc.revoke_error = make_error(kRevocationFailed, "http_timeout: timed out");
  std::string id = t.sign_in(kAda, tokens_of("idt-1", "rt-2"));
  Response r = t.handle(get_request("/logout", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 303);
  BOOST_TEST(t.oidc.revoked.size() == 1u);
  BOOST_TEST(!t.stored(id).has_value());
  BOOST_TEST(contains(set_cookie(r, t.session_cookie_name()), "Max-Age=0"));
  BOOST_TEST(r.header("Location").rfind("https://idp.example/logout?", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(no_revocation_without_an_endpoint_a_refresh_token_or_discovery) {
  TestApp t;  // the fake's discovery lists no revocation_endpoint
  std::string id = t.sign_in(kAda, tokens_of("", "rt-3"));
  BOOST_TEST(t.handle(get_request("/logout", "", t.session_cookie_header(id))).status == 303);
  t.oidc.meta.revocation_endpoint = "https://idp.example/oauth2/revoke";
  std::string no_rt = t.sign_in(kAda, tokens_of("idt"));
  BOOST_TEST(t.handle(get_request("/logout", "", t.session_cookie_header(no_rt))).status == 303);
  t.oidc.metadata_error = make_error(kDiscoveryFailed, "down");
  std::string down = t.sign_in(kAda, tokens_of("", "rt-4"));
  BOOST_TEST(t.handle(get_request("/logout", "", t.session_cookie_header(down))).status == 303);
  BOOST_TEST(t.oidc.revoked.empty());
}

// ---------------------------------------------------------------------------------------------
// Token refresh when a session is loaded.

BOOST_AUTO_TEST_CASE(near_expiry_refreshes_once_and_stores_the_rotated_refresh_token) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 30, "rt-old"), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new"));
  t.oidc.access_tokens["at.new.jwt"] = {{"sub", "kp_user1"}, {"permissions", {"p:new"}}};

  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "Ada Lovelace"));
  BOOST_REQUIRE(t.oidc.refreshes.size() == 1u);
  BOOST_TEST(t.oidc.refreshes[0] == "rt-old");
  auto s = t.stored(id);
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).tokens.refresh_token == "rt-new");
  BOOST_TEST(record_of(s).tokens.access_token == "at.new.jwt");
  BOOST_TEST(record_of(s).tokens.expires_at == kNow + 3600);
  BOOST_TEST(record_of(s).access_claims["permissions"][0] == "p:new");
  BOOST_TEST(contains(r.body, "p:new"));

  // Fresh tokens now: the next requests do not refresh again.
  t.clock.advance(120);
  t.handle(get_request("/", "", t.session_cookie_header(id)));
  t.handle(get_request("/api/me", "", t.session_cookie_header(id)));
  BOOST_TEST(t.oidc.refreshes.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_refresh_warms_the_provider_cache_first_and_calls_under_the_lock_end_before_it) {
  TestApp t;
  t.config.http_connect_timeout_ms = 1000;
  t.config.http_timeout_ms = 4000;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 30, "rt-old"), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new"));
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(t.oidc.warm_ups == 1);
  BOOST_REQUIRE(t.oidc.refresh_deadlines.size() == 1u);
  BOOST_TEST(t.oidc.refresh_deadlines[0] == t.clock.monotonic_ms() + 3 * (1000 + 4000));
  BOOST_TEST(t.oidc.refresh_deadlines[0] < t.clock.monotonic_ms() + session_lock_ttl_ms(t.config));
  BOOST_TEST(t.oidc.deadline == 0);  // lifted once the lock is released
}

BOOST_AUTO_TEST_CASE(a_refresh_keeps_its_result_under_the_spent_token_for_late_requests) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 30, "rt-old"), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new"));
  t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_REQUIRE(t.recorder->kept.size() == 1u);
  BOOST_TEST(t.recorder->kept[0] == "rt-old");
  auto kept = t.store->refresh_result(id, "rt-old", kNow);
  BOOST_REQUIRE(kept.ok() && kept->has_value());
  BOOST_TEST(record_of(**kept).tokens.refresh_token == "rt-new");
  BOOST_TEST(record_of(**kept).tokens.access_token == "at.new.jwt");  // fresh_tokens() gives at.new.jwt
  BOOST_TEST(record_of(**kept).user["given_name"] == "Ada");
}

BOOST_AUTO_TEST_CASE(a_request_still_holding_a_spent_refresh_token_adopts_the_kept_result_without_calling_the_provider) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 30, "rt-spent"), kAdaIdClaims);
  // Another request spent rt-spent and kept what it got, but its write of the session was lost.
  SignedIn result;
  result.tokens = {"at-kept", "", "rt-kept", kNow + 3600};
  result.user = kAda;
  result.id_claims = kAdaIdClaims;
  result.access_claims = {{"permissions", {"p:kept"}}};
  BOOST_REQUIRE(t.store->keep_refresh_result(id, "rt-spent", record_to_json(result), kNow - 5).ok());
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "Ada Lovelace"));
  BOOST_TEST(t.oidc.refreshes.empty());
  auto s = t.stored(id);
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).tokens.refresh_token == "rt-kept");
  BOOST_TEST(record_of(s).access_claims["permissions"][0] == "p:kept");
  // Past the grace period the token is presented to the provider again (its answer decides).
  BOOST_REQUIRE(t.store->save([&] { Session old = *s; SignedIn rec = record_of(s); rec.tokens = tokens_expiring_at(kNow + 30, "rt-spent"); old.data = record_to_json(rec); return old; }()).ok());
  t.clock.advance(kRefreshGraceSeconds);
  t.oidc.refresh_results.push_back(make_error(kTokenError, "invalid_grant"));
  t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(t.oidc.refreshes.size() == 1u);
}

// A store whose first update() runs the change and then loses the write, as a Redis commit whose
// lock lapsed does; later calls go through.
class LosesFirstWrite : public RecordingStore {
 public:
  using RecordingStore::RecordingStore;
  Result<std::optional<Session>> update(const std::string& id, std::int64_t now,
                                        const std::function<bool(std::optional<Session>&)>& fn) override {
    if (lost_++ == 0) {
      auto cur = load(id, now);
      if (!cur) return cur.error();
      std::optional<Session> copy = *cur;
      (void)fn(copy);
      return make_error(kSessionStoreUnavailable, "session lock lapsed before the update was written (test)");
    }
    return RecordingStore::update(id, now, fn);
  }

 private:
  int lost_ = 0;
};

BOOST_AUTO_TEST_CASE(a_refresh_whose_write_is_lost_is_written_from_the_grace_cache_without_a_second_spend) {
  TestApp t(std::make_unique<LosesFirstWrite>(make_memory_session_store(SessionLimits{})));
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 30, "rt-old"), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new"));
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "Ada Lovelace"));
  BOOST_TEST(t.oidc.refreshes.size() == 1u);
  auto s = t.stored(id);
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).tokens.refresh_token == "rt-new");
}

BOOST_AUTO_TEST_CASE(tokens_far_from_expiry_are_not_refreshed) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 600), kAdaIdClaims);
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(t.oidc.refreshes.empty());
}

BOOST_AUTO_TEST_CASE(refresh_without_a_new_refresh_token_keeps_the_old_one) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 10, "rt-keep"), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens(""));
  t.handle(get_request("/", "", t.session_cookie_header(id)));
  auto s = t.stored(id);
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).tokens.refresh_token == "rt-keep");
  BOOST_TEST(record_of(s).tokens.access_token == "at.new.jwt");
  // Not spent, so not kept for the grace period: the next refresh presents it to the provider again.
  BOOST_TEST(t.recorder->kept.empty());
}

BOOST_AUTO_TEST_CASE(refresh_token_error_ends_the_session) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow - 5), kAdaIdClaims);
  t.oidc.refresh_results.push_back(make_error(kTokenError, "invalid_grant"));
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(!contains(r.body, "Lovelace"));  // signed-out view
  BOOST_TEST(!t.stored(id).has_value());
  BOOST_TEST(contains(set_cookie(r, t.session_cookie_name()), "Max-Age=0"));

  Response api = t.handle(get_request("/api/me", "", t.session_cookie_header(id)));
  BOOST_TEST(api.status == 401);
}

BOOST_AUTO_TEST_CASE(refresh_network_failure_keeps_the_session_for_a_retry) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 5, "rt-old"), kAdaIdClaims);
  t.oidc.refresh_results.push_back(make_error(kTokenEndpointFailed, "connection timed out"));
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "Ada Lovelace"));
  BOOST_TEST(set_cookie(r, t.session_cookie_name()).empty());
  auto s = t.stored(id);
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).tokens.refresh_token == "rt-old");

  // Right away the provider is left alone (back-off); after the retry interval it is asked again.
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new"));
  Response soon = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(contains(soon.body, "Ada Lovelace"));
  BOOST_TEST(t.oidc.refreshes.size() == 1u);
  t.clock.advance(t.config.refresh_retry_seconds);
  t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(t.oidc.refreshes.size() == 2u);
  BOOST_TEST(record_of(t.stored(id)).tokens.refresh_token == "rt-new");
}

BOOST_AUTO_TEST_CASE(refreshed_id_token_with_a_different_subject_ends_the_session) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 5), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new", "idt-other"));
  t.oidc.id_tokens["idt-other"] = {{"iss", "https://idp.example"}, {"sub", "kp_mallory"}};
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(!contains(r.body, "Lovelace"));
  BOOST_TEST(!t.stored(id).has_value());
  BOOST_TEST(contains(set_cookie(r, t.session_cookie_name()), "Max-Age=0"));
}

BOOST_AUTO_TEST_CASE(user_details_follow_a_refreshed_id_token) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 5), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new", "idt-renamed"));
  t.oidc.id_tokens["idt-renamed"] = {{"iss", "https://idp.example"}, {"sub", "kp_user1"},
                                     {"given_name", "Augusta"}, {"family_name", "King"},
                                     {"email", "augusta@example.com"}, {"picture", "https://img.example/a.png"}};
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(contains(r.body, "Augusta King"));
  BOOST_TEST(!contains(r.body, "Lovelace"));
  auto s = t.stored(id);
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).user["email"] == "augusta@example.com");
  BOOST_TEST(record_of(s).user["picture"] == "https://img.example/a.png");
  BOOST_TEST(record_of(s).user["id"] == "kp_user1");
  Response me = t.handle(get_request("/api/me", "", t.session_cookie_header(id)));
  BOOST_TEST(json::parse(me.body)["user"]["email"] == "augusta@example.com");
}

BOOST_AUTO_TEST_CASE(refreshed_id_token_with_the_same_subject_is_kept) {
  TestApp t;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 5), kAdaIdClaims);
  t.oidc.refresh_results.push_back(fresh_tokens("rt-new", "idt-same"));
  t.oidc.id_tokens["idt-same"] = {{"iss", "https://idp.example"}, {"sub", "kp_user1"}, {"auth_time", 1}};
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(contains(r.body, "Ada Lovelace"));
  auto s = t.stored(id);
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST(record_of(s).tokens.id_token == "idt-same");
  BOOST_REQUIRE(!t.oidc.id_checks.empty());
  BOOST_TEST(t.oidc.id_checks.back().second == "");  // refreshed ID tokens carry no nonce
}

BOOST_AUTO_TEST_CASE(unknown_session_cookie_is_cleared) {
  TestApp t;
  Response r = t.handle(get_request("/", "", t.session_cookie_header(SequenceRandom::token_of_call(777))));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(set_cookie(r, t.session_cookie_name()), "Max-Age=0"));
}

// ---------------------------------------------------------------------------------------------
// A failing session store.

BOOST_AUTO_TEST_CASE(failing_store_gives_a_503_page_and_keeps_existing_sessions) {
  auto owned = std::make_unique<FailingStore>();
  FailingStore* store = owned.get();
  TestApp t(std::move(owned));
  store->fail_reads = store->fail_writes = false;
  std::string id = t.sign_in(kAda, tokens_expiring_at(kNow + 3600), kAdaIdClaims);
  store->fail_reads = store->fail_writes = true;

  Response home = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(home.status == 503);
  BOOST_TEST(contains(home.header("Content-Type"), "text/html"));
  BOOST_TEST(contains(home.body, "Existing sessions are kept"));
  BOOST_TEST(set_cookie(home, t.session_cookie_name()).empty());  // the browser keeps its cookie

  Response api = t.handle(get_request("/api/me", "", t.session_cookie_header(id)));
  BOOST_TEST(api.status == 503);
  BOOST_TEST(json::parse(api.body).contains("detail"));

  // Starting a sign-in needs no store: it still answers (the callback is where the store is needed).
  Response login = t.handle(get_request("/login"));
  BOOST_TEST(login.status == 302);
  BOOST_TEST(signin_cookies_set(login).size() == 1u);

  // Writes failing while reads work: sign-out cannot complete, and says so instead of pretending.
  store->fail_reads = false;
  RequestSpec out;
  out.method = "POST";
  out.path = "/logout";
  out.cookie = t.session_cookie_header(id);
  Response lo = t.handle(out);
  BOOST_TEST(lo.status == 503);

  // The store recovers: the session is still there.
  store->fail_writes = false;
  Response back = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(back.status == 200);
  BOOST_TEST(contains(back.body, "Ada Lovelace"));
}

BOOST_AUTO_TEST_CASE(failing_store_during_callback_is_503_without_a_session_cookie) {
  auto owned = std::make_unique<FailingStore>();
  FailingStore* store = owned.get();
  TestApp t(std::move(owned));
  store->fail_reads = store->fail_writes = false;
  Started s = start_login(t);
  script_tokens(t, s.nonce);
  store->fail_writes = true;
  Response r = callback(t, s);
  BOOST_TEST(r.status == 503);
  BOOST_TEST(set_cookie(r, t.session_cookie_name()).empty());
}

BOOST_AUTO_TEST_SUITE_END()
