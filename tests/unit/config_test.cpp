// Configuration: dotenv parsing (quotes, comments, export), load_config with aliases, environment
// overriding the file, and the validation messages (missing keys named, http issuers, bad numbers).
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <string>

#include "app/runtime.hpp"
#include "config/config.hpp"
#include "fakes.hpp"

using namespace kinde;
using namespace kinde::testing;

namespace {

EnvGetter env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Result<Config> load(const std::string& name, std::map<std::string, std::string> env = {}) {
  return load_config(project_path("tests/data/config/" + name + ".conf"), true, env_of(std::move(env)));
}


}  // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(dotenv_handles_quotes_comments_export_and_spaces) {
  auto r = parse_dotenv(
      "# comment\n"
      "\n"
      "A=plain\n"
      "B = spaced value  \n"
      "export C=exported\n"
      "D=\"double # not comment\"  # comment\n"
      "E='single \\n literal'\n"
      "F=\"esc \\\"q\\\" \\\\ \\n end\"\n"
      "G=value # comment\n"
      "H=val#ue\n"
      "I=\n"
      "J=windows\r\n"
      "   # indented comment\n");
  BOOST_REQUIRE(r);
  const auto& m = *r;
  BOOST_TEST(m.at("A") == "plain");
  BOOST_TEST(m.at("B") == "spaced value");
  BOOST_TEST(m.at("C") == "exported");
  BOOST_TEST(m.at("D") == "double # not comment");
  BOOST_TEST(m.at("E") == "single \\n literal");
  BOOST_TEST(m.at("F") == "esc \"q\" \\ \n end");
  BOOST_TEST(m.at("G") == "value");
  BOOST_TEST(m.at("H") == "val#ue");
  BOOST_TEST(m.at("I") == "");
  BOOST_TEST(m.at("J") == "windows");
  BOOST_TEST(m.size() == 10u);
}

BOOST_AUTO_TEST_CASE(dotenv_errors_name_the_line) {
  auto unterminated = parse_dotenv("A=1\nB=\"open\n");
  BOOST_REQUIRE(!unterminated);
  BOOST_TEST(unterminated.error().code == kConfigSyntax);
  BOOST_TEST(contains(unterminated.error().detail, "line 2"));

  auto no_equals = parse_dotenv("A=1\n\nJUSTAWORD\n");
  BOOST_REQUIRE(!no_equals);
  BOOST_TEST(contains(no_equals.error().detail, "line 3"));

  auto bad_key = parse_dotenv("1ABC=x\n");
  BOOST_REQUIRE(!bad_key);
  BOOST_TEST(contains(bad_key.error().detail, "line 1"));

  auto trailing = parse_dotenv("A=\"x\" y\n");
  BOOST_REQUIRE(!trailing);
  BOOST_TEST(contains(trailing.error().detail, "line 1"));
}

BOOST_AUTO_TEST_CASE(full_file_loads_every_key) {
  auto r = load("full");
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().detail));
  const Config& c = *r;
  BOOST_TEST(c.issuer == "https://example.kinde.com/");  // kept exactly (Discovery 4.3)
  BOOST_TEST(issuer_base(c.issuer) == "https://example.kinde.com");
  BOOST_TEST(c.client_id == "client-123");
  BOOST_TEST(c.client_secret == "s3cr#t with spaces");
  BOOST_TEST(c.callback_url == "https://app.example/app/callback");
  BOOST_TEST(c.logout_url == "https://app.example/app/");
  BOOST_TEST(c.audience == "https://api.example");
  BOOST_TEST(c.org_code == "org_abc#not-a-comment");
  BOOST_TEST(c.scopes == "openid profile email offline");
  BOOST_TEST(c.idle_timeout == 600);
  BOOST_TEST(c.max_age == 7200);
  BOOST_TEST(c.log_level == "debug");
  BOOST_TEST(c.cookie_secure);
  BOOST_TEST(c.session_dir == project_path("tests/data/config") + "/sessions");  // relative to the file
  BOOST_TEST(contains(c.config_path, "full.conf"));
}

BOOST_AUTO_TEST_CASE(tutorial_aliases_are_accepted_and_loopback_http_turns_secure_off) {
  auto r = load("aliases");
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().detail));
  BOOST_TEST(r->issuer == "https://tutorial.kinde.com");
  BOOST_TEST(r->callback_url == "http://localhost:8000/api/auth/kinde_callback");
  BOOST_TEST(r->logout_url == "http://localhost:8000/");
  BOOST_TEST(!r->cookie_secure);
  BOOST_TEST(r->scopes == "openid profile email offline");  // the default
  BOOST_TEST(r->idle_timeout == 3600);
  BOOST_TEST(r->max_age == 86400);
}

BOOST_AUTO_TEST_CASE(environment_overrides_the_file_including_across_aliases) {
  auto r = load("full", {{"KINDE_CLIENT_ID", "from-env"},
                         {"KINDE_HOST", "https://env.kinde.com"},
                         {"KINDE_SESSION_IDLE_TIMEOUT", "42"},
                         {"SESSION_COOKIE_SECURE", "false"},
                         {"KINDE_CLIENT_SECRET", ""}});  // empty counts as unset: the file's value stays
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().detail));
  BOOST_TEST(r->client_id == "from-env");
  BOOST_TEST(r->issuer == "https://env.kinde.com");
  BOOST_TEST(r->idle_timeout == 42);
  BOOST_TEST(!r->cookie_secure);
  BOOST_TEST(r->client_secret == "s3cr#t with spaces");
}

BOOST_AUTO_TEST_CASE(environment_alone_is_enough_without_a_file) {
  auto r = load_config("/nonexistent/kinde.conf", false,
                       env_of({{"KINDE_DOMAIN", "https://d.kinde.com"},
                               {"KINDE_CLIENT_ID", "c"},
                               {"KINDE_CLIENT_SECRET", "s"},
                               {"KINDE_REDIRECT_URI", "https://app.example/callback"}}));
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().detail));
  BOOST_TEST(r->issuer == "https://d.kinde.com");
  BOOST_TEST(r->config_path == "");
}

BOOST_AUTO_TEST_CASE(an_explicit_missing_file_is_an_error) {
  auto r = load_config("/nonexistent/kinde.conf", true, env_of({}));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kConfigMissing);
  BOOST_TEST(contains(r.error().detail, "/nonexistent/kinde.conf"));
}

BOOST_AUTO_TEST_CASE(every_missing_key_is_named) {
  auto r = load("missing");
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kConfigInvalid);
  const std::string& d = r.error().detail;
  BOOST_TEST(contains(d, "KINDE_CLIENT_ID is missing"));
  BOOST_TEST(contains(d, "KINDE_CLIENT_SECRET is missing"));
  BOOST_TEST(contains(d, "KINDE_CALLBACK_URL is missing"));
  BOOST_TEST(!contains(d, "KINDE_ISSUER_URL"));
}

BOOST_AUTO_TEST_CASE(http_issuer_is_refused_unless_loopback) {
  auto r = load("http_issuer");
  BOOST_REQUIRE(!r);
  BOOST_TEST(contains(r.error().detail, "KINDE_ISSUER_URL must start with https://"));

  for (const char* ok : {"http://127.0.0.1:3000", "http://localhost", "http://localhost:8080/", "http://[::1]:9000"}) {
    BOOST_TEST_CONTEXT(ok) {
      auto l = load("http_issuer", {{"KINDE_ISSUER_URL", ok}});
      BOOST_TEST(l.ok());
    }
  }
  for (const char* bad : {"http://localhost.evil.example", "http://127.0.0.1.nip.io", "http://localhost@evil.example",
                          "http://localhost:80@evil.example", "http://127.0.0.1:x@evil.example",
                          "ftp://example.kinde.com", "example.kinde.com"}) {
    BOOST_TEST_CONTEXT(bad) {
      auto l = load("http_issuer", {{"KINDE_ISSUER_URL", bad}});
      BOOST_TEST(!l.ok());
    }
  }
}

BOOST_AUTO_TEST_CASE(loopback_detection_checks_the_whole_host) {
  BOOST_TEST(is_loopback_http("http://127.0.0.1"));
  BOOST_TEST(is_loopback_http("http://127.0.0.1:8000/cb"));
  BOOST_TEST(is_loopback_http("http://localhost/"));
  BOOST_TEST(is_loopback_http("http://[::1]/"));
  BOOST_TEST(!is_loopback_http("https://localhost/"));
  BOOST_TEST(!is_loopback_http("http://localhostx/"));
  BOOST_TEST(!is_loopback_http("http://localhost:8000@evil.example/"));
  BOOST_TEST(!is_loopback_http("http://localhost:/x"));
  BOOST_TEST(!is_loopback_http("http://localhost:8000x/"));
}

BOOST_AUTO_TEST_CASE(bad_numbers_and_booleans_are_each_reported) {
  auto r = load("bad_numbers");
  BOOST_REQUIRE(!r);
  const std::string& d = r.error().detail;
  BOOST_TEST(contains(d, "KINDE_SESSION_IDLE_TIMEOUT must be a whole number of seconds greater than 0, got '1h'"));
  BOOST_TEST(contains(d, "KINDE_SESSION_MAX_AGE must be a whole number of seconds greater than 0, got '-5'"));
  BOOST_TEST(contains(d, "KINDE_HTTP_TIMEOUT_MS must be a positive number"));
  BOOST_TEST(contains(d, "SESSION_COOKIE_SECURE must be true or false, got 'maybe'"));
  // One message per line, none missing.
  std::size_t lines = 1;
  for (char c : d) lines += c == '\n' ? 1 : 0;
  BOOST_TEST(lines == 4u);
}

BOOST_AUTO_TEST_CASE(oversized_numbers_and_other_bad_values_are_refused) {
  auto huge = load("http_issuer", {{"KINDE_ISSUER_URL", "https://x.kinde.com"},
                                   {"KINDE_SESSION_MAX_AGE", "99999999999999999999"},
                                   {"KINDE_LOG_LEVEL", "verbose"},
                                   {"KINDE_SESSION_STORE", "memcached://x"},
                                   {"KINDE_SESSION_SECRET", "short"},
                                   {"KINDE_TOKEN_AUTH", "private_key_jwt"}});
  BOOST_REQUIRE(!huge);
  const std::string& d = huge.error().detail;
  BOOST_TEST(contains(d, "KINDE_SESSION_MAX_AGE"));
  BOOST_TEST(contains(d, "KINDE_LOG_LEVEL"));
  BOOST_TEST(contains(d, "KINDE_SESSION_STORE"));
  BOOST_TEST(contains(d, "KINDE_SESSION_SECRET"));
  BOOST_TEST(contains(d, "KINDE_TOKEN_AUTH"));
}

BOOST_AUTO_TEST_CASE(trusted_hosts_are_host_names_separated_by_spaces_or_commas) {
  auto none = load("http_issuer", {{"KINDE_ISSUER_URL", "https://x.kinde.com"}});
  BOOST_REQUIRE(none);
  BOOST_TEST(none->trusted_hosts.empty());
  auto some = load("http_issuer", {{"KINDE_ISSUER_URL", "https://x.kinde.com"},
                                   {"KINDE_TRUSTED_HOSTS", " Auth.Example.com, login.example.net  [::1]"}});
  BOOST_REQUIRE(some);
  BOOST_TEST(some->trusted_hosts == (std::vector<std::string>{"auth.example.com", "login.example.net", "[::1]"}));
  for (const char* bad : {"https://auth.example.com", "auth.example.com:443", "auth.example.com/x", "*.example.com",
                          "a@b.example"}) {
    auto r = load("http_issuer", {{"KINDE_ISSUER_URL", "https://x.kinde.com"}, {"KINDE_TRUSTED_HOSTS", bad}});
    BOOST_TEST_CONTEXT(bad) {
      BOOST_REQUIRE(!r);
      BOOST_TEST(contains(r.error().detail, "KINDE_TRUSTED_HOSTS"));
    }
  }
}

BOOST_AUTO_TEST_CASE(timeouts_of_zero_or_less_are_refused) {
  for (const char* key : {"KINDE_SESSION_IDLE_TIMEOUT", "KINDE_SESSION_MAX_AGE"}) {
    for (const char* value : {"0", "-1", "00"}) {
      BOOST_TEST_CONTEXT(key << "=" << value) {
        auto r = load("full", {{key, value}});
        BOOST_REQUIRE(!r);
        BOOST_TEST(contains(r.error().detail, std::string(key) + " must be a whole number of seconds greater than 0, got '" +
                                                  value + "'"));
      }
    }
  }
  auto one = load("full", {{"KINDE_SESSION_IDLE_TIMEOUT", "1"}, {"KINDE_SESSION_MAX_AGE", "1"}});
  BOOST_REQUIRE_MESSAGE(one, (one ? "" : one.error().detail));
  BOOST_TEST(one->idle_timeout == 1);
}

BOOST_AUTO_TEST_CASE(session_key_file_defaults_beside_the_config_file_and_is_unset_without_one) {
  auto r = load("full");
  BOOST_REQUIRE(r);
  BOOST_TEST(r->session_key_file == project_path("tests/data/config") + "/session.key");
  auto relative = load("full", {{"KINDE_SESSION_KEY_FILE", "keys/k"}});
  BOOST_REQUIRE(relative);
  BOOST_TEST(relative->session_key_file == project_path("tests/data/config") + "/keys/k");
  auto absolute = load("full", {{"KINDE_SESSION_KEY_FILE", "/etc/kinde-fcgi/session.key"}});
  BOOST_REQUIRE(absolute);
  BOOST_TEST(absolute->session_key_file == "/etc/kinde-fcgi/session.key");
  // Environment only: no default place (the runtime then asks for the key file or the secret).
  auto env_only = load_config("/nonexistent/kinde.conf", false,
                              env_of({{"KINDE_DOMAIN", "https://d.kinde.com"}, {"KINDE_CLIENT_ID", "c"},
                                      {"KINDE_CLIENT_SECRET", "s"}, {"KINDE_REDIRECT_URI", "https://app.example/callback"}}));
  BOOST_REQUIRE(env_only);
  BOOST_TEST(env_only->session_key_file == "");
}

BOOST_AUTO_TEST_CASE(cookie_name_must_be_a_token_without_prefixes_or_the_sign_in_family) {
  auto ok = load("full", {{"KINDE_COOKIE_NAME", "my_app.sid"}});
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->cookie_name == "my_app.sid");
  const std::pair<const char*, const char*> bad[] = {
      {"a b", "must be a cookie name"},           {"a;b", "must be a cookie name"},
      {"a=b", "must be a cookie name"},           {"__Host-sid", "must not carry a __Host- or __Secure- prefix"},
      {"__secure-sid", "must not carry"},         {"kinde_fcgi_auth_x", "must not start with kinde_fcgi_auth_"},
  };
  for (const auto& [value, words] : bad) {
    BOOST_TEST_CONTEXT(value) {
      auto r = load("full", {{"KINDE_COOKIE_NAME", value}});
      BOOST_REQUIRE(!r);
      BOOST_TEST(contains(r.error().detail, words));
    }
  }
}

BOOST_AUTO_TEST_CASE(callback_url_must_be_absolute) {
  auto r = load("http_issuer", {{"KINDE_ISSUER_URL", "https://x.kinde.com"}, {"KINDE_CALLBACK_URL", "/callback"}});
  BOOST_REQUIRE(!r);
  BOOST_TEST(contains(r.error().detail, "KINDE_CALLBACK_URL must be an absolute"));
}

BOOST_AUTO_TEST_CASE(syntax_error_in_file_names_file_and_line) {
  auto r = load("syntax_error");
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kConfigSyntax);
  BOOST_TEST(contains(r.error().detail, "syntax_error.conf"));
  BOOST_TEST(contains(r.error().detail, "line 2"));
}

BOOST_AUTO_TEST_CASE(refresh_scope_report_names_the_listed_scope_and_whether_it_is_asked_for) {
  auto has = [](const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; };
  BOOST_TEST(has(refresh_scope_report({"openid", "offline_access"}, "openid profile email offline"),
                 "lists offline_access but KINDE_SCOPES"));
  BOOST_TEST(has(refresh_scope_report({"openid", "offline_access"}, "openid offline_access"), "asks for it"));
  BOOST_TEST(has(refresh_scope_report({"openid", "offline", "offline_access"}, "openid offline"),
                 "lists offline and offline_access, and KINDE_SCOPES asks for it"));
  BOOST_TEST(has(refresh_scope_report({"openid"}, "openid offline"), "neither offline nor offline_access"));
  BOOST_TEST(has(refresh_scope_report({}, "openid offline"), "does not list scopes_supported"));
  // A scope inside another name does not count.
  BOOST_TEST(has(refresh_scope_report({"offline_access"}, "openid offline_accessx"), "does not ask"));
}

BOOST_AUTO_TEST_CASE(end_session_endpoint_must_be_https_or_loopback) {
  std::map<std::string, std::string> env = {{"KINDE_ISSUER_URL", "https://idp.example/"}, {"KINDE_CLIENT_ID", "c"},
                                            {"KINDE_CLIENT_SECRET", "s"}, {"KINDE_CALLBACK_URL", "https://a/callback"},
                                            {"KINDE_SESSION_SECRET", std::string(40, 'x')},
                                            {"KINDE_END_SESSION_ENDPOINT", "https://idp.example/bye"}};
  auto getter = [&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  auto ok = load_config("", false, getter);
  BOOST_REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().detail));
  BOOST_TEST(ok->end_session_endpoint == "https://idp.example/bye");
  BOOST_TEST(ok->issuer == "https://idp.example/");
  env["KINDE_END_SESSION_ENDPOINT"] = "http://idp.example/bye";
  auto bad = load_config("", false, getter);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().detail.find("KINDE_END_SESSION_ENDPOINT must start with https://") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_session_lock_outlasts_three_provider_calls_of_the_configured_timeouts) {
  auto d = load("full", {{"KINDE_HTTP_CONNECT_TIMEOUT_MS", "3000"}, {"KINDE_HTTP_TIMEOUT_MS", "10000"}});
  BOOST_REQUIRE_MESSAGE(d, (d ? "" : d.error().detail));
  BOOST_TEST(provider_calls_budget_ms(*d) == 3 * (3000 + 10000));
  BOOST_TEST(session_lock_ttl_ms(*d) == 3 * (3000 + 10000) + kSessionLockMarginMs);
  BOOST_TEST(session_lock_ttl_ms(*d) > provider_calls_budget_ms(*d));
  // Longer timeouts make a longer lock.
  auto longer = load("full", {{"KINDE_HTTP_CONNECT_TIMEOUT_MS", "5000"}, {"KINDE_HTTP_TIMEOUT_MS", "20000"}});
  BOOST_REQUIRE(longer);
  BOOST_TEST(session_lock_ttl_ms(*longer) == 3 * 25000 + kSessionLockMarginMs);
}

BOOST_AUTO_TEST_CASE(timeouts_whose_calls_cannot_fit_in_the_longest_lock_are_refused) {
  // 3 x (10000 + 30000) + 2000 = 122000 > 120000.
  auto r = load("full", {{"KINDE_HTTP_CONNECT_TIMEOUT_MS", "10000"}, {"KINDE_HTTP_TIMEOUT_MS", "30000"}});
  BOOST_REQUIRE(!r);
  BOOST_TEST(contains(r.error().detail, "KINDE_HTTP_CONNECT_TIMEOUT_MS (10000) and KINDE_HTTP_TIMEOUT_MS (30000) are too long"));
  BOOST_TEST(contains(r.error().detail, "122000 ms"));
  // Just fits: 3 x (9000 + 30000) + 2000 = 119000.
  auto fits = load("full", {{"KINDE_HTTP_CONNECT_TIMEOUT_MS", "9000"}, {"KINDE_HTTP_TIMEOUT_MS", "30000"}});
  BOOST_REQUIRE_MESSAGE(fits, (fits ? "" : fits.error().detail));
  BOOST_TEST(session_lock_ttl_ms(*fits) == 119000);
}

BOOST_AUTO_TEST_CASE(redis_prefix_defaults_to_kinde_and_refuses_spaces_and_glob_characters) {
  auto d = load("full");
  BOOST_REQUIRE(d);
  BOOST_TEST(d->redis_prefix == "kinde:");
  auto set = load("full", {{"KINDE_REDIS_PREFIX", "site-b:"}});
  BOOST_REQUIRE(set);
  BOOST_TEST(set->redis_prefix == "site-b:");
  for (const char* bad : {"a b", "k*", "k?", "[k]", "k\\"}) {
    BOOST_TEST_CONTEXT(bad) {
      auto r = load("full", {{"KINDE_REDIS_PREFIX", bad}});
      BOOST_REQUIRE(!r);
      BOOST_TEST(contains(r.error().detail, "KINDE_REDIS_PREFIX must be"));
    }
  }
  BOOST_TEST(!load("full", {{"KINDE_REDIS_PREFIX", std::string(65, 'k')}}));
}

BOOST_AUTO_TEST_SUITE_END()

// The loader's key table is the one list of keys: the README's table and etc/kinde.conf.example must
// name every key (and the README every alias), and the README's table must name no key it lacks.
BOOST_AUTO_TEST_SUITE(config_key_table)

std::string read_project_file(const std::string& rel) {
  std::ifstream in(project_path(rel));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

BOOST_AUTO_TEST_CASE(readme_and_example_name_every_key_of_the_loader) {
  const std::string readme = read_project_file("README.md");
  const std::string example = read_project_file("etc/kinde.conf.example");
  BOOST_TEST(config_keys().size() >= 20u);
  for (const ConfigKey& k : config_keys()) {
    BOOST_TEST_CONTEXT(k.name) {
      BOOST_TEST(contains(readme, "`" + k.name + "`"));
      BOOST_TEST(contains(example, k.name + "="));
      for (const std::string& alias : k.aliases) BOOST_TEST(contains(readme, "`" + alias + "`"), alias);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_readme_table_names_no_key_the_loader_does_not_read) {
  std::set<std::string> known;
  for (const ConfigKey& k : config_keys()) {
    known.insert(k.name);
    known.insert(k.aliases.begin(), k.aliases.end());
  }
  const std::string readme = read_project_file("README.md");
  const auto start = readme.find("\n## Configuration");
  BOOST_REQUIRE(start != std::string::npos);
  const auto end = readme.find("\n## ", start + 1);
  std::istringstream table(readme.substr(start, end - start));
  std::size_t rows = 0;
  for (std::string line; std::getline(table, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    ++rows;
    const std::string first_cell = line.substr(0, line.find(" | "));
    for (std::size_t at = first_cell.find('`'); at != std::string::npos; at = first_cell.find('`', at)) {
      const auto close = first_cell.find('`', at + 1);
      const std::string name = first_cell.substr(at + 1, close - at - 1);
      BOOST_TEST(known.count(name) == 1u, name << " is in the README's table but not read by load_config");
      at = close + 1;
    }
  }
  BOOST_TEST(rows >= 15u);
}

BOOST_AUTO_TEST_SUITE_END()
