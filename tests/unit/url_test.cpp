// URL helpers: strict percent-decoding, query and cookie parsing, encoding, UTF-8 checks, and the
// `next` filter against open-redirect tricks.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "util/text.hpp"
#include "util/url.hpp"

using namespace kinde;

BOOST_AUTO_TEST_SUITE(url)

BOOST_AUTO_TEST_CASE(percent_decode_decodes_escapes_and_plus_only_when_asked) {
  BOOST_TEST(*percent_decode("a%20b%2Fc", false) == "a b/c");
  BOOST_TEST(*percent_decode("a+b", true) == "a b");
  BOOST_TEST(*percent_decode("a+b", false) == "a+b");
  BOOST_TEST(*percent_decode("%e2%82%ac", false) == "\xe2\x82\xac");
  BOOST_TEST(*percent_decode("", false) == "");
}

BOOST_AUTO_TEST_CASE(percent_decode_refuses_bad_escapes) {
  for (const char* bad : {"%", "%4", "a%zz", "%g1", "abc%", "%%41", "%4 "}) {
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!percent_decode(bad, true).has_value()); }
  }
}

BOOST_AUTO_TEST_CASE(parse_query_keeps_duplicates_in_order_and_decodes) {
  auto q = parse_query("a=1&b=x+y&a=2&&c&d=%26%3D");
  BOOST_REQUIRE(q);
  Params expected = {{"a", "1"}, {"b", "x y"}, {"a", "2"}, {"c", ""}, {"d", "&="}};
  BOOST_TEST(q->size() == expected.size());
  for (std::size_t i = 0; i < expected.size() && i < q->size(); ++i) {
    BOOST_TEST((*q)[i].first == expected[i].first);
    BOOST_TEST((*q)[i].second == expected[i].second);
  }
  BOOST_TEST(count_param(*q, "a") == 2u);
  BOOST_TEST(*find_param(*q, "a") == "1");
  BOOST_TEST(!find_param(*q, "zz").has_value());
}

BOOST_AUTO_TEST_CASE(parse_query_refuses_bad_escapes_and_nul_bytes) {
  BOOST_TEST(!parse_query("a=%zz").has_value());
  BOOST_TEST(!parse_query("a%=1").has_value());
  BOOST_TEST(!parse_query("a=%00").has_value());
  BOOST_TEST(!parse_query("x%00y=1").has_value());
  BOOST_TEST(!parse_query(std::string("a=b\0c", 5)).has_value());
}

BOOST_AUTO_TEST_CASE(url_encode_and_build_query_round_trip) {
  BOOST_TEST(url_encode("a b/c?d=e&f~-._") == "a%20b%2Fc%3Fd%3De%26f~-._");
  Params p = {{"redirect_uri", "https://app.example/cb?x=1"}, {"scope", "openid profile"}, {"k", "ä"}};
  std::string q = build_query(p);
  BOOST_TEST(q == "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1&scope=openid%20profile&k=%C3%A4");
  auto back = parse_query(q);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->size() == 3u);
  BOOST_TEST((*back)[0].second == "https://app.example/cb?x=1");
  BOOST_TEST((*back)[2].second == "ä");
}

BOOST_AUTO_TEST_CASE(cookie_header_parses_pairs_in_order_trimming_and_unquoting) {
  auto c = parse_cookie_header(" a=1; b = \"two\" ;;c=; =nameless; flag; d=x=y");
  BOOST_REQUIRE(c.size() == 4u);
  BOOST_TEST(c[0].first == "a");
  BOOST_TEST(c[0].second == "1");
  BOOST_TEST(c[1].first == "b");
  BOOST_TEST(c[1].second == "two");
  BOOST_TEST(c[2].first == "c");
  BOOST_TEST(c[2].second == "");
  BOOST_TEST(c[3].first == "d");
  BOOST_TEST(c[3].second == "x=y");
}

BOOST_AUTO_TEST_CASE(cookie_header_empty_gives_nothing_and_many_are_capped) {
  BOOST_TEST(parse_cookie_header("").empty());
  BOOST_TEST(parse_cookie_header(";;  ; ").empty());
  std::string many;
  for (int i = 0; i < 10000; ++i) many += "c" + std::to_string(i) + "=v; ";
  auto c = parse_cookie_header(many);
  BOOST_TEST(c.size() == 200u);
  BOOST_TEST(c.front().first == "c0");
  BOOST_TEST(c.back().first == "c199");
  BOOST_TEST(parse_cookie_header(many, 5).size() == 5u);
}

BOOST_AUTO_TEST_CASE(utf8_validation_rejects_overlongs_surrogates_and_truncation) {
  BOOST_TEST(is_valid_utf8("plain ascii"));
  BOOST_TEST(is_valid_utf8("Łukasz Żółć €😀"));
  BOOST_TEST(!is_valid_utf8("\xc0\xaf"));          // overlong '/'
  BOOST_TEST(!is_valid_utf8("\xe0\x80\xaf"));      // overlong '/'
  BOOST_TEST(!is_valid_utf8("\xed\xa0\x80"));      // surrogate
  BOOST_TEST(!is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  BOOST_TEST(!is_valid_utf8("\xe2\x82"));          // truncated
  BOOST_TEST(!is_valid_utf8("\x80"));              // lone continuation
  BOOST_TEST(!is_valid_utf8("\xff"));
}

BOOST_AUTO_TEST_CASE(html_escape_escapes_the_five_characters) {
  BOOST_TEST(html_escape("<a href=\"x\" title='y'>&</a>") ==
             "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
}

// Each of these must fall back to "/": a browser would leave the site (or run script) for them.
// The values are what safe_next_path receives: the query parameter after one decoding.
BOOST_AUTO_TEST_CASE(next_filter_refuses_open_redirect_tricks) {
  const std::vector<std::string> tricks = {
      "//evil.example",
      "//evil.example/path",
      "///evil.example",
      "/\\evil.example",
      "\\\\evil.example",
      "\\/evil.example",
      "/%2Fevil.example",
      "/%2fevil.example",
      "/%5Cevil.example",
      "/%5cevil.example",
      "%2F%2Fevil.example",
      "%2f%2fevil.example",
      "/%252Fevil.example",             // double-encoded slash
      "%252F%252Fevil.example",         // double-encoded //
      "/%25252Fevil.example",           // triple-encoded: refused rather than guessed
      "/\t/evil.example",
      "/%09/evil.example",
      "/\n/evil.example",
      "/%0a/evil.example",
      "/\r/evil.example",
      "/%0D/evil.example",
      "/\x0b/evil.example",
      "/foo\r\nSet-Cookie: x=1",
      "/foo%0d%0aLocation:%20https://evil.example",
      "/%00/evil.example",
      "/a\\b",
      "https:evil.example",
      "https://evil.example",
      "http://evil.example/",
      "HTTPS://evil.example",
      "javascript:alert(1)",
      "JavaScript:alert(1)",
      " javascript:alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "",
      "evil.example",
      "relative/path",
      "./relative",
      "?next=/x",
      "#frag",
      " /leading-space",
      std::string("/") + std::string(5000, 'a'),
      "/caf\xe9",                        // Latin-1, not UTF-8
      "/%C0%AF",                         // overlong '/'
      "/\xc0\xaf",
      "/%ZZ",                            // bad escape
      "/\x7f",
  };
  for (const auto& t : tricks) {
    BOOST_TEST_CONTEXT("next=" << t) { BOOST_TEST(safe_next_path(t) == "/"); }
  }
}

BOOST_AUTO_TEST_CASE(next_filter_keeps_legitimate_paths_unchanged) {
  const std::vector<std::string> good = {
      "/",
      "/dashboard",
      "/app/settings?tab=profile&x=1",
      "/items/42?q=hi",
      "/a/b/c/",
      "/search?q=a%20b",
      "/path#section",
      "/Łódź/żółć",
      "/a.b-c_d~e",
      "/a:b",
      "/a//b",          // a double slash later in the path stays on this site
      std::string("/") + std::string(1000, 'a'),
  };
  for (const auto& t : good) {
    BOOST_TEST_CONTEXT("next=" << t) { BOOST_TEST(safe_next_path(t) == t); }
  }
}

BOOST_AUTO_TEST_CASE(url_origin_reads_scheme_host_and_port_strictly) {
  struct Case {
    const char* url;
    const char* scheme;  // nullptr: refused
    const char* host;
    const char* port;
  };
  const Case cases[] = {
      {"https://ex.kinde.com/oauth2/token", "https", "ex.kinde.com", ""},
      {"HTTPS://Ex.Kinde.COM", "https", "ex.kinde.com", ""},
      {"http://127.0.0.1:8080/x?y#z", "http", "127.0.0.1", "8080"},
      {"https://idp.example?x=1", "https", "idp.example", ""},
      {"http://[::1]:9000/", "http", "[::1]", "9000"},
      {"https://ex.kinde.com@evil.example/", nullptr, "", ""},  // userinfo: which host?
      {"https://evil.example\\@ex.kinde.com/", nullptr, "", ""},
      {"https://ex.kinde.com%2eevil.example/", nullptr, "", ""},
      {"https://ex.kinde.com:/", nullptr, "", ""},
      {"https://ex.kinde.com:80x/", nullptr, "", ""},
      {"https://ex.kinde.com:1234567/", nullptr, "", ""},
      {"https:///path", nullptr, "", ""},
      {"https://ex kinde.com/", nullptr, "", ""},
      {"https://ex.kinde.com/\x01", nullptr, "", ""},
      {"ftp://ex.kinde.com/", nullptr, "", ""},
      {"//ex.kinde.com/", nullptr, "", ""},
      {"/oauth2/token", nullptr, "", ""},
      {"http://[::1/", nullptr, "", ""},
      {"http://[evil.example]/", nullptr, "", ""},
  };
  for (const auto& c : cases) {
    auto o = parse_url_origin(c.url);
    BOOST_TEST_CONTEXT(c.url) {
      BOOST_TEST(o.has_value() == (c.scheme != nullptr));
      if (o && c.scheme) {
        BOOST_TEST(o->scheme == c.scheme);
        BOOST_TEST(o->host == c.host);
        BOOST_TEST(o->port == c.port);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(cookie_names_carry_host_or_secure_prefixes_only_when_secure) {
  BOOST_TEST(prefixed_cookie_name("kinde_fcgi_session", false, "/") == "kinde_fcgi_session");
  BOOST_TEST(prefixed_cookie_name("kinde_fcgi_session", false, "/app") == "kinde_fcgi_session");
  BOOST_TEST(prefixed_cookie_name("kinde_fcgi_session", true, "/") == "__Host-kinde_fcgi_session");
  BOOST_TEST(prefixed_cookie_name("kinde_fcgi_session", true, "/app") == "__Secure-kinde_fcgi_session");
  BOOST_TEST(prefixed_cookie_name("kinde_fcgi_auth_0a1b", true, "/app/") == "__Secure-kinde_fcgi_auth_0a1b");
}

BOOST_AUTO_TEST_SUITE_END()
