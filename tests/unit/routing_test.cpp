// Routing: dispatch on PATH_INFO under any prefix (links and cookie Path follow SCRIPT_NAME), 404 and
// 405 as HTML for browsers and JSON for API paths, /healthz, and the security headers on every answer.
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

#include "fakes.hpp"

using namespace kinde;
using namespace kinde::testing;
using nlohmann::json;

namespace {


RequestSpec spec(const std::string& method, const std::string& path, const std::string& script_name = "") {
  RequestSpec s;
  s.method = method;
  s.path = path;
  s.script_name = script_name;
  return s;
}

void check_security_headers(const Response& r) {
  BOOST_TEST(contains(r.header("Content-Security-Policy"), "default-src 'self'"));
  BOOST_TEST(contains(r.header("Content-Security-Policy"), "frame-ancestors 'none'"));
  BOOST_TEST(contains(r.header("Content-Security-Policy"), "form-action 'self' https://idp.example"));
  BOOST_TEST(r.header("X-Content-Type-Options") == "nosniff");
  BOOST_TEST(r.header("X-Frame-Options") == "DENY");
  BOOST_TEST(r.header("Referrer-Policy") == "no-referrer");
  BOOST_TEST(!r.header("Cache-Control").empty());
  BOOST_TEST(!r.header("Content-Type").empty());
}

// A clock that breaks: App::handle must still answer (500) with every header.
class BrokenClock : public Clock {
 public:
  std::int64_t now() const override { throw std::runtime_error("clock broke"); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(routing)

BOOST_AUTO_TEST_CASE(links_and_cookie_path_follow_the_prefix) {
  struct Case {
    const char* script_name;
    const char* uri_prefix;   // what the browser asked for, before PATH_INFO
    const char* link_prefix;
    const char* cookie_path;
  };
  const Case cases[] = {
      {"", "", "", "/"},
      {"/app", "/app", "/app", "/app"},
      // The binary asked for by name: links keep the name, the cookie is scoped to it.
      {"/app/kinde.fcgi", "/app/kinde.fcgi", "/app/kinde.fcgi", "/app/kinde.fcgi"},
      // Shared-hosting rewrite (".htaccess: ^(.*)$ kinde.fcgi/$1"): the browser sees the folder.
      {"/app/kinde.fcgi", "/app", "/app", "/app"},
      {"/kinde.fcgi", "", "", "/"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("SCRIPT_NAME=" << c.script_name << " REQUEST_URI prefix=" << c.uri_prefix) {
      TestApp t;
      std::string p = c.link_prefix;
      auto at = [&](const std::string& method, const std::string& path) {
        RequestSpec s = spec(method, path, c.script_name);
        s.request_uri = std::string(c.uri_prefix) + path;
        return s;
      };
      Response home = t.handle(at("GET", "/"));
      BOOST_TEST(home.status == 200);
      BOOST_TEST(contains(home.body, "href=\"" + mstch_escaped(p + "/login") + "\""));
      BOOST_TEST(contains(home.body, "href=\"" + mstch_escaped(p + "/register") + "\""));

      Response login = t.handle(at("GET", "/login"));
      BOOST_TEST(login.status == 302);
      auto signin = signin_cookies_set(login);
      BOOST_REQUIRE(signin.size() == 1u);
      BOOST_TEST(contains(signin[0], std::string("; Path=") + c.cookie_path + ";"));
      // Secure: __Host- at "/", __Secure- under a narrower path.
      const std::string prefix = std::string(c.cookie_path) == "/" ? "__Host-" : "__Secure-";
      BOOST_TEST(cookie_name_of(signin[0]).rfind(prefix + kSignInFamily, 0) == 0u);
      // The default landing place after sign-in is the app's home under the prefix.
      BOOST_TEST(t.pending_of(signin[0])["x"] == p + "/");

      Response out = t.handle(at("GET", "/logout"));
      std::string expired = set_cookie(out, prefix + t.config.cookie_name);
      BOOST_TEST(contains(expired, std::string("Path=") + c.cookie_path + ";"));
      BOOST_TEST(contains(expired, "Max-Age=0"));
    }
  }
}

BOOST_AUTO_TEST_CASE(unknown_path_is_an_html_404_for_browsers) {
  TestApp t;
  Response r = t.handle(get_request("/nope"));
  BOOST_TEST(r.status == 404);
  BOOST_TEST(contains(r.header("Content-Type"), "text/html"));
  BOOST_TEST(contains(r.body, "Not Found"));
  BOOST_TEST(contains(r.body, "<html"));
}

BOOST_AUTO_TEST_CASE(unknown_api_path_is_json_404) {
  TestApp t;
  for (const char* path : {"/api/nope", "/items", "/items/", "/items/1/2"}) {
    BOOST_TEST_CONTEXT(path) {
      Response r = t.handle(get_request(path));
      BOOST_TEST(r.status == 404);
      BOOST_TEST(r.header("Content-Type") == "application/json");
      BOOST_TEST(json::parse(r.body) == json({{"detail", "Not Found"}}));
    }
  }
  RequestSpec s = spec("GET", "/nope");
  s.accept = "application/json";
  Response r = t.handle(s);
  BOOST_TEST(r.status == 404);
  BOOST_TEST(json::parse(r.body) == json({{"detail", "Not Found"}}));
}

BOOST_AUTO_TEST_CASE(wrong_method_is_405_html_with_allow) {
  TestApp t;
  Response r = t.handle(spec("POST", "/"));
  BOOST_TEST(r.status == 405);
  BOOST_TEST(contains(r.header("Content-Type"), "text/html"));
  BOOST_TEST(contains(r.body, "Method Not Allowed"));
  BOOST_TEST(r.header("Allow") == "GET, HEAD");

  Response d = t.handle(spec("DELETE", "/logout"));
  BOOST_TEST(d.status == 405);
  BOOST_TEST(d.header("Allow") == "GET, POST");
}

BOOST_AUTO_TEST_CASE(wrong_method_on_api_path_is_json_405) {
  TestApp t;
  for (const char* m : {"POST", "PUT", "DELETE"}) {
    BOOST_TEST_CONTEXT(m) {
      Response r = t.handle(spec(m, "/items/5"));
      BOOST_TEST(r.status == 405);
      BOOST_TEST(json::parse(r.body) == json({{"detail", "Method Not Allowed"}}));
      BOOST_TEST(r.header("Allow") == "GET");
    }
  }
  Response me = t.handle(spec("POST", "/api/me"));
  BOOST_TEST(me.status == 405);
  BOOST_TEST(json::parse(me.body) == json({{"detail", "Method Not Allowed"}}));
}

BOOST_AUTO_TEST_CASE(healthz_answers_ok_without_session_or_provider) {
  TestApp t;
  std::string id = t.sign_in({{"id", "kp_1"}});
  int updates_before = t.recorder->updates;
  Response r = t.handle(get_request("/healthz", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == "ok");
  BOOST_TEST(t.oidc.metadata_calls == 0);
  BOOST_TEST(t.recorder->updates == updates_before);
  BOOST_TEST(r.cookies.empty());
}

BOOST_AUTO_TEST_CASE(healthz_answers_ok_even_when_the_session_store_is_down) {
  TestApp t(std::make_unique<FailingStore>());
  Response r = t.handle(get_request("/healthz", "", "kinde_fcgi_session=" + std::string(43, 'A')));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == "ok");
}

BOOST_AUTO_TEST_CASE(malformed_requests_get_400_and_413_pages) {
  TestApp t;
  Response bad = t.handle(load_request_file("bad_percent"));
  BOOST_TEST(bad.status == 400);
  BOOST_TEST(contains(bad.header("Content-Type"), "text/html"));
  Response big = t.handle(load_request_file("oversize_body"));
  BOOST_TEST(big.status == 413);
  Response nul = t.handle(load_request_file("nul_query"));
  BOOST_TEST(nul.status == 400);
}

BOOST_AUTO_TEST_CASE(security_headers_are_on_every_response) {
  TestApp t;
  std::string id = t.sign_in({{"id", "kp_1"}, {"given_name", "Ada"}});
  const RequestSpec specs[] = {
      spec("GET", "/"),           spec("GET", "/nope"),          spec("POST", "/"),
      spec("GET", "/healthz"),    spec("GET", "/login"),         spec("GET", "/items/1"),
      spec("GET", "/api/me"),     spec("GET", "/api/nope"),      spec("GET", "/callback"),
      spec("POST", "/logout"),    spec("HEAD", "/"),             spec("PUT", "/items/1"),
  };
  for (const auto& s : specs) {
    BOOST_TEST_CONTEXT(s.method << " " << s.path) { check_security_headers(t.handle(s)); }
  }
  RequestSpec signed_in = spec("GET", "/");
  signed_in.cookie = t.session_cookie_header(id);
  check_security_headers(t.handle(signed_in));
  check_security_headers(t.handle(load_request_file("oversize_body")));
  check_security_headers(t.handle(load_request_file("bad_percent")));
}

BOOST_AUTO_TEST_CASE(unexpected_exception_becomes_a_500_page_with_headers) {
  TestApp t;
  BrokenClock broken;
  t.app().parts().clock = &broken;
  Response r = t.handle(get_request("/"));
  BOOST_TEST(r.status == 500);
  BOOST_TEST(!contains(r.body, "clock broke"));  // no internals to the visitor
  check_security_headers(r);
  Response api = t.handle(get_request("/api/me"));
  BOOST_TEST(api.status == 500);
  BOOST_TEST(json::parse(api.body).contains("detail"));
}

BOOST_AUTO_TEST_CASE(api_aliases_route_to_the_auth_handlers) {
  TestApp t;
  Response login = t.handle(get_request("/api/auth/login"));
  BOOST_TEST(login.status == 302);
  BOOST_TEST(contains(login.header("Location"), "https://idp.example/oauth2/auth?"));
  Response reg = t.handle(get_request("/api/auth/register"));
  BOOST_TEST(find_param(query_of(reg.header("Location")), "prompt").value_or("") == "create");
  Response cb = t.handle(get_request("/api/auth/kinde_callback"));
  BOOST_TEST(cb.status == 400);
  BOOST_TEST(json::parse(cb.body).contains("detail"));  // an /api/ path answers JSON
  Response out = t.handle(get_request("/api/auth/logout"));
  BOOST_TEST(out.status == 303);
}

BOOST_AUTO_TEST_SUITE_END()
