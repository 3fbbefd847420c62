// Building a Request from CGI environments: canned files under tests/data/requests/ and hostile input
// built in code (oversize bodies, bad escapes, NUL bytes, invalid UTF-8, huge and numerous cookies).
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "cgi/request.hpp"
#include "cgi/response.hpp"
#include "fakes.hpp"

using namespace kinde;
using namespace kinde::testing;

BOOST_AUTO_TEST_SUITE(request)

BOOST_AUTO_TEST_CASE(get_of_home_reads_method_paths_host_and_https) {
  Request r = load_request_file("get_home");
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.method == "GET");
  BOOST_TEST(r.script_name == "");
  BOOST_TEST(r.path_info == "/");
  BOOST_TEST(r.host == "app.example");
  BOOST_TEST(r.remote_addr == "192.0.2.7");
  BOOST_TEST(r.https);
  BOOST_TEST(r.header("accept") == "text/html,application/xhtml+xml");
  BOOST_TEST(r.header("user-agent") == "Mozilla/5.0");
  BOOST_TEST(r.header("authorization") == "");
  BOOST_TEST(r.query.empty());
  BOOST_TEST(!r.wants_json());
}

BOOST_AUTO_TEST_CASE(get_with_query_decodes_parameters_and_upper_cases_method) {
  Request r = load_request_file("get_query");
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.method == "GET");
  BOOST_TEST(r.script_name == "/app");
  BOOST_TEST(r.path_info == "/login");
  BOOST_TEST(r.query_string == "next=%2Fitems%2F42%3Fq%3Dhi&lang=en+GB");
  BOOST_REQUIRE(r.query.size() == 2u);
  BOOST_TEST(r.query[0].first == "next");
  BOOST_TEST(r.query[0].second == "/items/42?q=hi");
  BOOST_TEST(r.query[1].second == "en GB");
  BOOST_TEST(!r.https);
}

BOOST_AUTO_TEST_CASE(post_form_is_parsed_with_charset_in_content_type) {
  Request r = load_request_file("post_form");
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.method == "POST");
  BOOST_TEST(r.body == "csrf=t0k%2Ben&name=J%C3%B6rg+M&empty=");
  BOOST_REQUIRE(r.form.size() == 3u);
  BOOST_TEST(r.form[0].second == "t0k+en");
  BOOST_TEST(r.form[1].second == "Jörg M");
  BOOST_TEST(r.form[2].first == "empty");
  BOOST_TEST(r.form[2].second == "");
  BOOST_TEST(*r.cookie("theme") == "dark");
}

BOOST_AUTO_TEST_CASE(cookies_keep_order_and_first_value_wins) {
  Request r = load_request_file("cookies");
  BOOST_TEST(!r.bad.has_value());
  BOOST_REQUIRE(r.cookies.size() == 4u);
  BOOST_TEST(*r.cookie("a") == "1");
  BOOST_TEST(*r.cookie("b") == "two");
  BOOST_TEST(*r.cookie("kinde_fcgi_session") == "S1");
  BOOST_TEST(r.cookies[3].second == "S2");
  BOOST_TEST(!r.cookie("missing").has_value());
}

BOOST_AUTO_TEST_CASE(oversize_body_is_refused_with_413_without_reading_it) {
  Request r = load_request_file("oversize_body");
  BOOST_REQUIRE(r.bad.has_value());
  BOOST_TEST(r.bad->first == 413);
  BOOST_TEST(r.body.empty());
  BOOST_TEST(r.form.empty());
}

BOOST_AUTO_TEST_CASE(body_just_over_the_limit_is_413_and_at_the_limit_is_accepted) {
  RequestSpec s;
  s.method = "POST";
  s.path = "/logout";
  s.content_type = "application/x-www-form-urlencoded";
  s.body = "a=" + std::string(kMaxBodyBytes - 2, 'x');
  Request ok = s.build();
  BOOST_TEST(!ok.bad.has_value());
  BOOST_TEST(ok.body.size() == kMaxBodyBytes);
  BOOST_REQUIRE(ok.form.size() == 1u);
  BOOST_TEST(ok.form[0].second.size() == kMaxBodyBytes - 2);

  s.body += "x";
  Request big = s.build();
  BOOST_REQUIRE(big.bad.has_value());
  BOOST_TEST(big.bad->first == 413);
}

BOOST_AUTO_TEST_CASE(bad_percent_encoding_in_query_or_form_is_400) {
  Request q = load_request_file("bad_percent");
  BOOST_REQUIRE(q.bad.has_value());
  BOOST_TEST(q.bad->first == 400);
  Request f = load_request_file("bad_percent_form");
  BOOST_REQUIRE(f.bad.has_value());
  BOOST_TEST(f.bad->first == 400);
}

BOOST_AUTO_TEST_CASE(duplicate_parameters_are_kept_in_order) {
  Request r = load_request_file("duplicate_params");
  BOOST_TEST(!r.bad.has_value());
  BOOST_REQUIRE(r.query.size() == 4u);
  BOOST_TEST(r.query[0].second == "first");
  BOOST_TEST(r.query[1].first == "x");
  BOOST_TEST(r.query[2].second == "second");
  BOOST_TEST(r.query[3].first == "q");
  BOOST_TEST(r.query[3].second == "");
  BOOST_TEST(count_param(r.query, "q") == 3u);
}

BOOST_AUTO_TEST_CASE(empty_cookie_header_gives_no_cookies) {
  Request r = load_request_file("empty_cookie");
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.cookies.empty());
  RequestSpec s;
  s.cookie = "kinde_fcgi_session=";
  Request e = s.build();
  BOOST_REQUIRE(e.cookie("kinde_fcgi_session").has_value());
  BOOST_TEST(e.cookie("kinde_fcgi_session")->empty());
}

BOOST_AUTO_TEST_CASE(huge_cookie_header_is_ignored_but_request_still_served) {
  RequestSpec s;
  s.cookie = "kinde_fcgi_session=" + std::string(kMaxCookieHeader + 10, 'A');
  Request r = s.build();
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.cookies.empty());

  // Just under the limit: kept.
  s.cookie = "big=" + std::string(kMaxCookieHeader - 4, 'B');
  Request k = s.build();
  BOOST_REQUIRE(k.cookies.size() == 1u);
  BOOST_TEST(k.cookies[0].second.size() == kMaxCookieHeader - 4);
}

BOOST_AUTO_TEST_CASE(ten_thousand_cookies_are_handled_quickly_without_error) {
  // 10,000 pairs make a header far over kMaxCookieHeader: the request is served with no cookies
  // (so no session), quickly, and cgicc's own cookie parsing does not choke either.
  std::string many;
  for (int i = 0; i < 10000; ++i) many += "n" + std::to_string(i) + "=v; ";
  RequestSpec s;
  s.cookie = many + "kinde_fcgi_session=abc";
  auto t0 = std::chrono::steady_clock::now();
  Request m = s.build();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST(!m.bad.has_value());
  BOOST_TEST(m.cookies.empty());
  BOOST_TEST(!m.cookie("kinde_fcgi_session").has_value());
  BOOST_TEST(ms < 2000);
}

BOOST_AUTO_TEST_CASE(post_without_content_type_keeps_body_and_parses_no_form) {
  Request r = load_request_file("post_no_content_type");
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.body == "a=1&b=2");
  BOOST_TEST(r.form.empty());
}

BOOST_AUTO_TEST_CASE(nul_bytes_in_query_or_form_are_400) {
  Request q = load_request_file("nul_query");
  BOOST_REQUIRE(q.bad.has_value());
  BOOST_TEST(q.bad->first == 400);
  Request f = load_request_file("nul_form");
  BOOST_REQUIRE(f.bad.has_value());
  BOOST_TEST(f.bad->first == 400);
  BOOST_TEST(f.form.empty());
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_carried_as_bytes_not_rejected_at_parse_time) {
  Request r = load_request_file("invalid_utf8");
  BOOST_TEST(!r.bad.has_value());
  BOOST_REQUIRE(r.query.size() == 2u);
  BOOST_TEST(r.query[0].second == "caf\xe9");
  BOOST_TEST(r.query[1].second == "\x80");
  BOOST_TEST(*r.cookie("n") == "caf\xe9");
}

BOOST_AUTO_TEST_CASE(non_numeric_content_length_is_400) {
  Request r = load_request_file("bad_length");
  BOOST_REQUIRE(r.bad.has_value());
  BOOST_TEST(r.bad->first == 400);
  BOOST_TEST(r.form.empty());
}

BOOST_AUTO_TEST_CASE(truncated_body_is_400) {
  Request r = load_request_file("short_body");
  BOOST_REQUIRE(r.bad.has_value());
  BOOST_TEST(r.bad->first == 400);
}

BOOST_AUTO_TEST_CASE(rewrite_prefix_bearer_and_fcgi_role_are_read) {
  Request r = load_request_file("rewrite_bearer");
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.script_name == "/app/kinde.fcgi");
  BOOST_TEST(r.path_info == "/api/me");
  BOOST_TEST(r.header("authorization") == "Bearer abc.def.ghi");
  BOOST_TEST(r.fcgi_role == "RESPONDER");
  BOOST_TEST(r.wants_json());
}

BOOST_AUTO_TEST_CASE(root_script_name_slash_and_missing_path_normalise) {
  Request r = load_request_file("root_slash");
  BOOST_TEST(!r.bad.has_value());
  BOOST_TEST(r.method == "HEAD");
  BOOST_TEST(r.script_name == "");
  BOOST_TEST(r.path_info == "/");
}

BOOST_AUTO_TEST_CASE(missing_method_defaults_to_get) {
  Request r = make_request({{"PATH_INFO", "/healthz"}});
  BOOST_TEST(r.method == "GET");
  BOOST_TEST(r.path_info == "/healthz");
}

BOOST_AUTO_TEST_CASE(wants_json_for_api_paths_bearer_or_json_accept) {
  BOOST_TEST(get_request("/api/me").wants_json());
  BOOST_TEST(get_request("/items/1").wants_json());
  BOOST_TEST(!get_request("/").wants_json());
  RequestSpec s;
  s.accept = "application/json";
  BOOST_TEST(s.build().wants_json());
  s.accept = "text/html, application/json;q=0.9";
  BOOST_TEST(!s.build().wants_json());
  s.accept = "";
  s.authorization = "Bearer x";
  BOOST_TEST(s.build().wants_json());
}

BOOST_AUTO_TEST_CASE(bearer_token_is_one_parser_with_a_case_insensitive_scheme) {
  struct Case {
    const char* header;          // Authorization ("" = none)
    std::optional<std::string> token;
  };
  const Case cases[] = {
      {"", std::nullopt},
      {"Bearer abc.def.ghi", "abc.def.ghi"},
      {"bearer abc.def.ghi", "abc.def.ghi"},            // RFC 9110 11.1: case-insensitive scheme
      {"BEARER abc.def.ghi", "abc.def.ghi"},
      {"BeArEr abc.def.ghi", "abc.def.ghi"},
      {"Bearer    abc.def.ghi  ", "abc.def.ghi"},       // extra spaces around the token are dropped
      {"Bearer\tabc.def.ghi", "abc.def.ghi"},
      {"Bearer", ""},                                   // the scheme without a token: present, empty
      {"Bearer   ", ""},
      {"Bearer a b", "a b"},                            // not a token68: the caller refuses it
      {"Bearerabc.def.ghi", std::nullopt},              // another scheme name
      {"Basic dXNlcjpwYXNz", std::nullopt},
      {"Bear abc", std::nullopt},
      {"DPoP abc.def.ghi", std::nullopt},
      {" Bearer abc", std::nullopt},                    // a server would have trimmed it; the scheme must lead
  };
  for (const auto& c : cases) {
    RequestSpec s;
    s.authorization = c.header;
    Request r = s.build();
    auto got = r.bearer_token();
    BOOST_TEST_CONTEXT("Authorization: '" << c.header << "'") {
      BOOST_TEST(got.has_value() == c.token.has_value());
      if (got && c.token) BOOST_TEST(std::string(*got) == *c.token);
      // The JSON-or-HTML decision follows the same parser: a Bearer header of any case wants JSON on any path.
      BOOST_TEST(r.wants_json() == c.token.has_value());
    }
  }
}

BOOST_AUTO_TEST_CASE(response_headers_drop_cr_lf_and_serialize_in_cgi_form) {
  Response r;
  r.status = 302;
  r.set_header("Location", "/a\r\nSet-Cookie: evil=1");
  r.set_header("location", "/b\nX: y");  // same header, case-insensitive: replaced
  r.cookies.push_back("s=1; Path=/\r\nX-Evil: 1");
  r.body = "body";
  BOOST_TEST(r.header("LOCATION") == "/bX: y");
  std::string out = serialize_cgi(r);
  BOOST_TEST(out.find("Status: 302 Found\r\n") == 0u);
  BOOST_TEST(out.find("Location: /bX: y\r\n") != std::string::npos);
  BOOST_TEST(out.find("\r\nX-Evil") == std::string::npos);
  BOOST_TEST(out.find("\r\nX: y") == std::string::npos);
  BOOST_TEST(out.substr(out.size() - 8) == "\r\n\r\nbody");
  std::string head = serialize_cgi(r, true);
  BOOST_TEST(head.substr(head.size() - 4) == "\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(requests_other_than_post_read_the_fields_cgicc_would_give) {
  // Only POST goes through cgicc (it reads a body for POST alone); the rest must read the same.
  struct Case {
    std::string method, https;
    bool secure;
  };
  for (const Case& c : {Case{"get", "on", true}, Case{"GET", "ON", true}, Case{"HEAD", "1", false},
                        Case{"DELETE", "off", false}, Case{"GET", "", false}}) {
    std::map<std::string, std::string> vars = {{"REQUEST_METHOD", c.method}, {"SCRIPT_NAME", "/app"},
                                               {"PATH_INFO", "/items/1"},   {"QUERY_STRING", "q=a"},
                                               {"REMOTE_ADDR", "192.0.2.9"}, {"HTTP_HOST", "h.example"},
                                               {"CONTENT_TYPE", "text/plain"}};
    if (!c.https.empty()) vars["HTTPS"] = c.https;
    Request r = build_request_from_vars(vars, "");
    BOOST_TEST(r.method == (c.method == "get" ? "GET" : c.method));
    BOOST_TEST(r.https == c.secure, c.method << " HTTPS=" << c.https);
    BOOST_TEST(r.script_name == "/app");
    BOOST_TEST(r.path_info == "/items/1");
    BOOST_TEST(r.query.size() == 1u);
    BOOST_TEST(r.remote_addr == "192.0.2.9");
    BOOST_TEST(r.host == "h.example");
    BOOST_TEST(r.content_type == "text/plain");
    BOOST_TEST(r.body.empty());
    BOOST_TEST(!r.bad.has_value());
  }
  // A POST still reads its body (through cgicc).
  Request post = build_request_from_vars({{"REQUEST_METHOD", "post"}, {"CONTENT_LENGTH", "3"},
                                          {"CONTENT_TYPE", "application/x-www-form-urlencoded"}}, "a=b");
  BOOST_TEST(post.method == "POST");
  BOOST_TEST(post.body == "a=b");
}

BOOST_AUTO_TEST_SUITE_END()
