// Views: mustache rendering escapes by default, the home page escapes user data, initials and the
// user view model (names, pictures) behave for the odd profiles providers send.
#include <boost/test/unit_test.hpp>

#include <string>

#include "app/app.hpp"
#include "fakes.hpp"
#include "view/view.hpp"

using namespace kinde;
using namespace kinde::testing;
using nlohmann::json;

namespace {


}  // namespace

BOOST_AUTO_TEST_SUITE(view)

BOOST_AUTO_TEST_CASE(render_escapes_double_braces_and_resolves_partials) {
  auto v = View::from_templates({{"page", "<p>{{name}}</p>{{> part}}"}, {"part", "[{{#items}}{{.}},{{/items}}]"}});
  auto out = v->render("page", {{"name", "<b>\"x\" & 'y'</b>"}, {"items", {1, "two"}}});
  BOOST_REQUIRE(out);
  BOOST_TEST(!contains(*out, "<b>"));
  BOOST_TEST(contains(*out, "&lt;b&gt;"));
  BOOST_TEST(contains(*out, "&amp;"));
  BOOST_TEST(contains(*out, "&quot;x&quot;"));
  BOOST_TEST(contains(*out, "[1,two,]"));
}

BOOST_AUTO_TEST_CASE(render_of_unknown_template_is_an_error) {
  auto v = View::from_templates({{"a", "x"}});
  auto out = v->render("b", json::object());
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code == kTemplateMissing);
  BOOST_TEST(v->has("a"));
  BOOST_TEST(!v->has("b"));
}

BOOST_AUTO_TEST_CASE(load_reads_the_project_templates_and_refuses_a_missing_dir) {
  auto v = View::load(project_path("templates"));
  BOOST_REQUIRE(v);
  BOOST_TEST((*v)->has("index"));
  BOOST_TEST((*v)->has("error"));
  auto missing = View::load("/nonexistent-template-dir");
  BOOST_TEST(!missing.ok());
}

BOOST_AUTO_TEST_CASE(home_page_escapes_a_hostile_user_name_and_email) {
  TestApp t;
  std::string id = t.sign_in({{"id", "kp_1"},
                              {"given_name", "<script>alert(1)</script>"},
                              {"family_name", "O'Brien & \"Co\""},
                              {"email", "<img src=x onerror=alert(2)>@example.com"}});
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(!contains(r.body, "<script>alert(1)"));
  BOOST_TEST(!contains(r.body, "<img src=x"));
  BOOST_TEST(contains(r.body, mstch_escaped("<script>alert(1)</script>")));
  BOOST_TEST(contains(r.body, "&lt;img src=x onerror=alert(2)&gt;@example.com"));
  BOOST_TEST(contains(r.body, "&amp;"));
  BOOST_TEST(!contains(r.body, "O'Brien & \"Co\""));
}

BOOST_AUTO_TEST_CASE(home_page_signed_in_shows_name_email_initials_and_sign_out) {
  TestApp t;
  std::string id = t.sign_in({{"id", "kp_1"}, {"given_name", "Ada"}, {"family_name", "Lovelace"},
                              {"email", "ada@example.com"}});
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "Ada Lovelace"));
  BOOST_TEST(contains(r.body, "ada@example.com"));
  BOOST_TEST(contains(r.body, ">AL<"));
  BOOST_TEST(contains(r.body, "action=\"" + mstch_escaped("/logout") + "\""));
  BOOST_TEST(r.header("Cache-Control") == "no-store");
}

BOOST_AUTO_TEST_CASE(home_page_signed_out_offers_sign_in_and_sign_up) {
  TestApp t;
  Response r = t.handle(get_request("/"));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "href=\"" + mstch_escaped("/login") + "\""));
  BOOST_TEST(contains(r.body, "href=\"" + mstch_escaped("/register") + "\""));
  BOOST_TEST(!contains(r.body, "action=\"" + mstch_escaped("/logout") + "\""));
}

BOOST_AUTO_TEST_CASE(initials_table) {
  struct Case { const char* given; const char* family; const char* email; const char* expected; };
  const Case cases[] = {
      {"Ada", "Lovelace", "", "AL"},
      {"ada", "lovelace", "", "AL"},                     // ASCII upper-cased
      {"Ada", "", "", "A"},                              // missing family name (the Django crash)
      {"", "Lovelace", "", "L"},
      {"A", "", "", "A"},                                // one letter
      {"Łukasz", "Żółć", "", "ŁŻ"},                      // two-byte UTF-8 kept whole
      {"Ñandú", "Ørsted", "", "ÑØ"},
      {"李", "小龍", "", "李小"},                          // three-byte characters
      {"😀 Smile", "🚀", "", "😀🚀"},                      // four-byte characters
      {"  ada  ", "\tlovelace\n", "", "AL"},              // whitespace trimmed
      {"   ", "  ", "zed@example.com", "Z"},              // only whitespace: falls back to email
      {"", "", "", "?"},                                  // nothing at all
      {"", "", "\xe9t\xe9@example.com", "?"},             // invalid UTF-8 lead byte is never output
      {"\x80x", "Lovelace", "", "L"},                     // lone continuation byte dropped
      {"\xc5", "", "", "?"},                              // truncated two-byte character
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("given=" << c.given << " family=" << c.family) {
      BOOST_TEST(initials(c.given, c.family, c.email) == c.expected);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_user_nothing_names_is_shown_by_email_or_subject_never_blank) {
  json by_name = user_view({{"id", "u1"}, {"name", "grace hopper"}});
  BOOST_TEST(by_name["full_name"] == "grace hopper");
  BOOST_TEST(by_name["initials"] == "G");
  json by_email = user_view({{"id", "u1"}, {"email", "zed@example.com"}});
  BOOST_TEST(by_email["full_name"] == "zed@example.com");
  BOOST_TEST(by_email["initials"] == "Z");
  json by_sub = user_view({{"id", "johndoe"}, {"given_name", ""}, {"name", "  "}});
  BOOST_TEST(by_sub["full_name"] == "johndoe");
  BOOST_TEST(by_sub["initials"] == "J");
}

BOOST_AUTO_TEST_CASE(user_view_builds_full_name_with_fallbacks_and_only_https_pictures) {
  json v = user_view({{"given_name", "Ada"}, {"family_name", "Lovelace"}, {"email", "a@x"},
                      {"picture", "https://img.example/a.png"}, {"id", "kp_1"}});
  BOOST_TEST(v["full_name"] == "Ada Lovelace");
  BOOST_TEST(v["picture"] == "https://img.example/a.png");
  BOOST_TEST(v["id"] == "kp_1");

  json only_given = user_view({{"given_name", "Ada"}, {"family_name", nullptr}});
  BOOST_TEST(only_given["full_name"] == "Ada");
  BOOST_TEST(only_given["initials"] == "A");

  json name_claim = user_view({{"name", "Grace Hopper"}});
  BOOST_TEST(name_claim["full_name"] == "Grace Hopper");

  json email_only = user_view({{"email", "x@example.com"}});
  BOOST_TEST(email_only["full_name"] == "x@example.com");

  for (const char* pic : {"http://img.example/a.png", "javascript:alert(1)", "data:image/png;base64,AAAA", "//img"}) {
    BOOST_TEST_CONTEXT(pic) { BOOST_TEST(!user_view({{"picture", pic}}).contains("picture")); }
  }
  json not_strings = user_view({{"given_name", 5}, {"email", json::array()}});
  BOOST_TEST(not_strings["full_name"] == "");
  BOOST_TEST(not_strings["initials"] == "?");
}

BOOST_AUTO_TEST_CASE(home_page_shows_picture_instead_of_initials_when_https) {
  TestApp t;
  std::string id = t.sign_in({{"id", "kp_1"}, {"given_name", "Ada"}, {"family_name", "Lovelace"},
                              {"picture", "https://img.example/a.png?x=1&y=2"}});
  Response r = t.handle(get_request("/", "", t.session_cookie_header(id)));
  BOOST_TEST(contains(r.body, "src=\"" + mstch_escaped("https://img.example/a.png?x=1&y=2") + "\""));
  BOOST_TEST(!contains(r.body, "avatar-initials"));
}

// The page cache: a rendered page is reused only for exactly the same template and context.
BOOST_AUTO_TEST_CASE(page_cache_gives_the_same_page_for_the_same_context) {
  auto v = View::from_templates({{"p", "<p>{{user.name}}:{{n}}</p>"}});
  json ctx = {{"user", {{"name", "Alice"}}}, {"n", 1}};
  auto first = v->render("p", ctx);
  auto second = v->render("p", json(ctx));  // an equal copy, not the same object
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(second);
  BOOST_TEST(*first == "<p>Alice:1</p>");
  BOOST_TEST(*second == *first);
}

BOOST_AUTO_TEST_CASE(page_cache_never_serves_a_page_rendered_for_another_context) {
  auto v = View::from_templates({{"p", "<p>{{user.name}}:{{n}}</p>"}, {"q", "<q>{{user.name}}</q>"}});
  BOOST_REQUIRE(v->render("p", {{"user", {{"name", "Alice"}}}, {"n", 1}}));
  BOOST_TEST(*v->render("p", {{"user", {{"name", "Bob"}}}, {"n", 1}}) == "<p>Bob:1</p>");
  BOOST_TEST(*v->render("p", {{"user", {{"name", "Alice"}}}, {"n", 2}}) == "<p>Alice:2</p>");
  // Same context, other template.
  BOOST_TEST(*v->render("q", {{"user", {{"name", "Alice"}}}, {"n", 1}}) == "<q>Alice</q>");
  // Values json calls equal but that render differently are different keys.
  BOOST_TEST(*v->render("p", {{"user", {{"name", "Alice"}}}, {"n", 1.0}}) == "<p>Alice:1.0</p>");
  BOOST_TEST(*v->render("p", {{"user", {{"name", "Alice"}}}, {"n", 1}}) == "<p>Alice:1</p>");
  // Moving text between keys is a different context.
  auto w = View::from_templates({{"p", "{{a}}|{{b}}"}});
  BOOST_TEST(*w->render("p", {{"a", "xy"}, {"b", "z"}}) == "xy|z");
  BOOST_TEST(*w->render("p", {{"a", "x"}, {"b", "yz"}}) == "x|yz");
}

BOOST_AUTO_TEST_CASE(page_cache_hits_stay_escaped) {
  auto v = View::from_templates({{"p", "<p>{{name}}</p>"}});
  json ctx = {{"name", "<script>alert(1)</script>"}};
  for (int i = 0; i < 3; ++i) {
    auto out = v->render("p", ctx);
    BOOST_REQUIRE(out);
    BOOST_TEST(!contains(*out, "<script>"));
    BOOST_TEST(contains(*out, "&lt;script&gt;"));
  }
}

BOOST_AUTO_TEST_CASE(page_cache_stays_correct_past_its_size_bound) {
  auto v = View::from_templates({{"p", "{{i}}"}});
  for (std::size_t round = 0; round < 2; ++round)
    for (std::size_t i = 0; i < 2 * View::kCachedPages + 3; ++i)
      BOOST_TEST(*v->render("p", {{"i", i}}) == std::to_string(i));
}

BOOST_AUTO_TEST_SUITE_END()
