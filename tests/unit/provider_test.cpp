// ProviderClient against a scripted HttpTransport: the discovery document's endpoint policy (https, the issuer's
// host or KINDE_TRUSTED_HOSTS), token responses (token_type in any case, exp when expires_in is missing), RFC 7009
// revocation with the token endpoint's client authentication, and the JWKS re-fetch for an unknown kid limited
// across processes through the shared provider cache.
#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/transport.hpp"
#include "util/encoding.hpp"
#include "oidc/provider.hpp"
#include "test_keys.hpp"
#include "util/clock.hpp"
#include "util/url.hpp"

using namespace kinde;
using namespace kinde::testing;
using nlohmann::json;

namespace {

const std::string kIssuer = "https://idp.example";
const std::string kClient = "client-123";
const std::string kSecret = "secret-456";
constexpr std::int64_t kNow = 1'800'000'000;

json discovery_doc(const std::string& issuer = kIssuer) {
  return {{"issuer", issuer},
          {"authorization_endpoint", issuer + "/oauth2/auth"},
          {"token_endpoint", issuer + "/oauth2/token"},
          {"jwks_uri", issuer + "/.well-known/jwks"},
          {"userinfo_endpoint", issuer + "/oauth2/v2/user_profile"},
          {"end_session_endpoint", issuer + "/logout"},
          {"revocation_endpoint", issuer + "/oauth2/revoke"},
          {"introspection_endpoint", issuer + "/oauth2/introspect"}};
}

std::string code_of(const Result<ProviderMetadata>& r) { return r ? "ok" : r.error().code; }

std::string discovery_code(const json& doc, const std::string& issuer = kIssuer,
                           const std::vector<std::string>& trusted = {}) {
  return code_of(ProviderClient::parse_discovery(doc.dump(), issuer, trusted));
}

// Answers every URL from a table; records every request.
class ScriptedHttp : public HttpTransport {
 public:
  std::map<std::string, HttpResponse> answers;  // by URL
  std::optional<Error> fail;                    // every request fails with it
  std::vector<HttpRequest> requests;
  Result<HttpResponse> perform(const HttpRequest& request) override {
    requests.push_back(request);
    if (fail) return *fail;
    auto it = answers.find(request.url);
    if (it == answers.end()) {
      HttpResponse r;
      r.status = 404;
      return r;
    }
    return it->second;
  }
  void serve(const std::string& url, const std::string& body, long status = 200) {
    HttpResponse r;
    r.status = status;
    r.body = body;
    answers[url] = r;
  }
  int count(const std::string& url) const {
    int n = 0;
    for (const auto& r : requests) n += r.url == url ? 1 : 0;
    return n;
  }
};

Config provider_config() {
  Config c;
  c.issuer = kIssuer;
  c.client_id = kClient;
  c.client_secret = kSecret;
  return c;
}

Params form_of(const HttpRequest& r) {
  auto q = parse_query(r.body);
  BOOST_REQUIRE(q.has_value());
  return *q;
}

std::string header_of(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = "/tmp/kinde-provider-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(provider)

// ---- discovery: every endpoint https, the ones the app calls on the issuer's host ---------------------------

BOOST_AUTO_TEST_CASE(a_discovery_document_on_the_issuers_host_is_accepted_with_every_endpoint) {
  auto m = ProviderClient::parse_discovery(discovery_doc().dump(), kIssuer);
  BOOST_REQUIRE(m);
  BOOST_TEST(m->revocation_endpoint == kIssuer + "/oauth2/revoke");
  BOOST_TEST(m->introspection_endpoint == kIssuer + "/oauth2/introspect");
  BOOST_TEST(m->userinfo_endpoint == kIssuer + "/oauth2/v2/user_profile");
  // Another port on the same host, and a host written in capitals, are the issuer's host.
  json doc = discovery_doc();
  doc["token_endpoint"] = "https://IDP.example:8443/oauth2/token";
  BOOST_TEST(discovery_code(doc) == "ok");
}

BOOST_AUTO_TEST_CASE(an_endpoint_on_another_host_is_refused_unless_trusted) {
  for (const char* name : {"authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                           "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"}) {
    json doc = discovery_doc();
    doc[name] = "https://collector.evil.example/x";
    BOOST_TEST_CONTEXT(name) {
      auto r = ProviderClient::parse_discovery(doc.dump(), kIssuer);
      BOOST_REQUIRE(!r);
      BOOST_TEST(r.error().code == kDiscoveryForeignEndpoint);
      // The message names the field, both hosts and the way out.
      BOOST_TEST(r.error().detail.find(name) != std::string::npos);
      BOOST_TEST(r.error().detail.find("collector.evil.example") != std::string::npos);
      BOOST_TEST(r.error().detail.find("idp.example") != std::string::npos);
      BOOST_TEST(r.error().detail.find("KINDE_TRUSTED_HOSTS") != std::string::npos);
      BOOST_TEST(discovery_code(doc, kIssuer, {"collector.evil.example"}) == "ok");
      BOOST_TEST(discovery_code(doc, kIssuer, {"other.example"}) == "discovery_foreign_endpoint");
    }
  }
  // A sibling domain is another host: no suffix matching.
  json doc = discovery_doc();
  doc["token_endpoint"] = "https://evil-idp.example/token";
  BOOST_TEST(discovery_code(doc, kIssuer, {"idp.example"}) == "discovery_foreign_endpoint");
  doc["token_endpoint"] = "https://x.idp.example/token";
  BOOST_TEST(discovery_code(doc) == "discovery_foreign_endpoint");
  // Endpoints the app never calls may live elsewhere, but still over https.
  doc = discovery_doc();
  doc["registration_endpoint"] = "https://register.example/reg";
  BOOST_TEST(discovery_code(doc) == "ok");
}

BOOST_AUTO_TEST_CASE(every_endpoint_must_be_https_unless_issuer_and_endpoint_are_loopback_http) {
  for (const char* name : {"token_endpoint", "jwks_uri", "registration_endpoint", "check_session_iframe",
                           "device_authorization_endpoint"}) {
    json doc = discovery_doc();
    doc[name] = "http://idp.example/x";
    BOOST_TEST_CONTEXT(name) { BOOST_TEST(discovery_code(doc, kIssuer, {"idp.example"}) == "discovery_insecure_endpoint"); }
  }
  json doc = discovery_doc();
  doc["mtls_endpoint_aliases"] = {{"token_endpoint", "http://mtls.idp.example/token"}};
  BOOST_TEST(discovery_code(doc) == "discovery_insecure_endpoint");
  // A loopback http issuer (test providers) may use http on loopback, and only there.
  const std::string local = "http://127.0.0.1:5556";
  BOOST_TEST(discovery_code(discovery_doc(local), local) == "ok");
  json l = discovery_doc(local);
  l["token_endpoint"] = "http://localhost:5556/token";  // loopback, but another host name
  BOOST_TEST(discovery_code(l, local) == "discovery_foreign_endpoint");
  BOOST_TEST(discovery_code(l, local, {"localhost"}) == "ok");
  l["token_endpoint"] = "http://collector.example/token";
  BOOST_TEST(discovery_code(l, local, {"collector.example"}) == "discovery_insecure_endpoint");
}

BOOST_AUTO_TEST_CASE(an_endpoint_that_is_not_a_plain_url_is_refused) {
  for (const json& bad : {json("https://idp.example@evil.example/token"), json("/oauth2/token"), json(42),
                          json("https://idp.example /token"), json::array({"https://idp.example/token"})}) {
    json doc = discovery_doc();
    doc["revocation_endpoint"] = bad;
    BOOST_TEST_CONTEXT(bad.dump()) { BOOST_TEST(discovery_code(doc) == "discovery_bad_endpoint"); }
  }
  json doc = discovery_doc();
  doc["revocation_endpoint"] = nullptr;  // null: absent
  auto m = ProviderClient::parse_discovery(doc.dump(), kIssuer);
  BOOST_REQUIRE(m);
  BOOST_TEST(m->revocation_endpoint.empty());
}

BOOST_AUTO_TEST_CASE(a_foreign_token_endpoint_never_receives_the_code_or_the_secret) {
  Config config = provider_config();
  ScriptedHttp http;
  json doc = discovery_doc();
  doc["token_endpoint"] = "https://collector.evil.example/token";
  http.serve(kIssuer + "/.well-known/openid-configuration", doc.dump());
  FixedClock clock{kNow};
  ProviderClient client(config, http, clock, "");
  auto tokens = client.exchange_code("the-code", "the-verifier", "https://app.example/callback");
  BOOST_REQUIRE(!tokens);
  BOOST_TEST(tokens.error().code == kDiscoveryForeignEndpoint);
  BOOST_TEST(http.count("https://collector.evil.example/token") == 0);
  for (const auto& r : http.requests) {
    BOOST_TEST(r.body.find("the-code") == std::string::npos);
    BOOST_TEST(header_of(r, "Authorization").empty());
  }
  BOOST_TEST(client.revoke_refresh_token("rt").error().code == kDiscoveryForeignEndpoint);
  BOOST_TEST(client.verify_access_token("a.b.c", kNow).error().code == kDiscoveryForeignEndpoint);
}

BOOST_AUTO_TEST_CASE(a_cached_discovery_document_is_checked_again_on_load) {
  TempDir dir;
  const std::string cache = dir.path + "/.provider-cache.json";
  Config config = provider_config();
  config.trusted_hosts = {"collector.example"};
  ScriptedHttp http;
  json doc = discovery_doc();
  doc["token_endpoint"] = "https://collector.example/token";
  http.serve(kIssuer + "/.well-known/openid-configuration", doc.dump());
  FixedClock clock{kNow};
  {
    ProviderClient trusting(config, http, clock, cache);
    BOOST_REQUIRE(trusting.metadata());
  }
  // KINDE_TRUSTED_HOSTS no longer names the host: the cached copy is refused, the fresh one too.
  config.trusted_hosts.clear();
  ProviderClient strict(config, http, clock, cache);
  const int fetches = http.count(kIssuer + "/.well-known/openid-configuration");
  auto m = strict.metadata();
  BOOST_REQUIRE(!m);
  BOOST_TEST(m.error().code == kDiscoveryForeignEndpoint);
  BOOST_TEST(http.count(kIssuer + "/.well-known/openid-configuration") == fetches + 1);
}

// ---- token responses ----------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(token_type_is_compared_case_insensitively) {
  for (const char* type : {"Bearer", "bearer", "BEARER", "bEaReR"}) {
    json body = {{"access_token", "at"}, {"token_type", type}, {"expires_in", 60}};
    BOOST_TEST_CONTEXT(type) { BOOST_TEST(bool(ProviderClient::parse_token_response(200, body.dump(), kNow))); }
  }
  for (const char* type : {"DPoP", "mac", "Bearer ", "Bearerx"}) {
    json body = {{"access_token", "at"}, {"token_type", type}};
    auto r = ProviderClient::parse_token_response(200, body.dump(), kNow);
    BOOST_TEST_CONTEXT(type) {
      BOOST_REQUIRE(!r);
      BOOST_TEST(r.error().code == kTokenResponseInvalid);
    }
  }
}

BOOST_AUTO_TEST_CASE(without_expires_in_the_access_tokens_exp_sets_the_expiry) {
  auto with_exp = [](const json& exp) {
    json payload = {{"iss", kIssuer}, {"exp", exp}};
    return sign_jwt({{"kid", "k1"}}, payload, rsa_key(), "RS256");
  };
  auto expires_at = [](const std::string& access_token, const json& extra = json::object()) {
    json body = {{"access_token", access_token}, {"token_type", "bearer"}};
    body.update(extra);
    auto r = ProviderClient::parse_token_response(200, body.dump(), kNow);
    BOOST_REQUIRE(r);
    return r->expires_at;
  };
  BOOST_TEST(expires_at(with_exp(kNow + 7200)) == kNow + 7200);
  BOOST_TEST(expires_at(with_exp(kNow + 7200), {{"expires_in", 60}}) == kNow + 60);  // expires_in wins
  BOOST_TEST(expires_at(with_exp(kNow - 100)) == kNow);                               // already expired: now
  BOOST_TEST(expires_at(with_exp(1e300)) == kNow + 10LL * 365 * 24 * 3600);            // clamped like expires_in
  BOOST_TEST(expires_at(with_exp(json(kNow + 10.9))) == kNow + 10);
  BOOST_TEST(expires_at(with_exp("soon")) == 0);                                       // not a number: unknown
  BOOST_TEST(expires_at("opaque-access-token") == 0);                                  // not a JWT: unknown
}

// ---- the issuer is compared exactly (OpenID Connect Discovery 4.3) -------------------------------------------

BOOST_AUTO_TEST_CASE(discovery_url_drops_only_trailing_slashes) {
  BOOST_TEST(ProviderClient::discovery_url("https://idp.example/") == "https://idp.example/.well-known/openid-configuration");
  BOOST_TEST(ProviderClient::discovery_url("https://idp.example") == "https://idp.example/.well-known/openid-configuration");
  BOOST_TEST(ProviderClient::discovery_url("https://idp.example/api/oidc/") ==
             "https://idp.example/api/oidc/.well-known/openid-configuration");
}

BOOST_AUTO_TEST_CASE(a_discovery_issuer_differing_by_a_trailing_slash_is_refused_with_a_hint) {
  auto r = ProviderClient::parse_discovery(discovery_doc("https://idp.example/").dump(), kIssuer);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kDiscoveryIssuerMismatch);
  BOOST_TEST(r.error().detail.find("exactly 'https://idp.example/'") != std::string::npos);
  BOOST_TEST(discovery_code(discovery_doc(kIssuer), "https://idp.example/") == "discovery_issuer_mismatch");
  BOOST_TEST(discovery_code(discovery_doc("https://idp.example/"), "https://idp.example/") == "ok");
}

BOOST_AUTO_TEST_CASE(a_trailing_slash_issuer_signs_in_and_its_tokens_must_carry_it_exactly) {
  const std::string slashed = "https://idp.example/";
  Config config = provider_config();
  config.issuer = slashed;
  ScriptedHttp http;
  FixedClock clock{kNow};
  json doc = discovery_doc(kIssuer);
  doc["issuer"] = slashed;
  http.serve(kIssuer + "/.well-known/openid-configuration", doc.dump());
  http.serve(kIssuer + "/.well-known/jwks", jwks_json({jwk_json(rsa_key(), "k1")}));
  ProviderClient client(config, http, clock, "");
  BOOST_REQUIRE(client.metadata());
  BOOST_TEST(client.metadata()->issuer == slashed);
  auto good = client.verify_id_token(sign_jwt({{"kid", "k1"}}, id_token_payload(slashed, kClient, "n", kNow), rsa_key(), "RS256"),
                                     "n", kNow);
  BOOST_TEST(bool(good), (good ? "" : good.error().detail));
  auto bad = client.verify_id_token(sign_jwt({{"kid", "k1"}}, id_token_payload(kIssuer, kClient, "n", kNow), rsa_key(), "RS256"),
                                    "n", kNow);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().code == kTokenBadIss);
  auto bearer = client.verify_access_token(
      sign_jwt({{"kid", "k1"}}, access_token_payload(slashed, kClient, "", kNow), rsa_key(), "RS256"), kNow);
  BOOST_TEST(bool(bearer), (bearer ? "" : bearer.error().detail));
}

// ---- UserInfo and RFC 7662 introspection of opaque access tokens ---------------------------------------------

struct IntrospectionFixture {
  Config config = provider_config();
  ScriptedHttp http;
  FixedClock clock{kNow};
  std::string introspect_url = kIssuer + "/oauth2/introspect";
  IntrospectionFixture() {
    http.serve(kIssuer + "/.well-known/openid-configuration", discovery_doc().dump());
    answer({{"active", true}, {"client_id", kClient}, {"sub", "u1"}, {"scope", "openid"}, {"exp", kNow + 600}});
  }
  void answer(const json& j, long status = 200) { http.serve(introspect_url, j.dump(), status); }
};

BOOST_FIXTURE_TEST_CASE(an_opaque_token_is_introspected_with_client_authentication_and_cached, IntrospectionFixture) {
  ProviderClient client(config, http, clock, "");
  auto r = client.verify_access_token("opaque-token-1", kNow);
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.error().detail));
  BOOST_TEST((*r)["sub"] == "u1");
  BOOST_TEST((*r)["iss"] == kIssuer);  // absent from the answer: the issuer's own endpoint vouches for it
  BOOST_REQUIRE(http.count(introspect_url) == 1);
  const HttpRequest& req = http.requests.back();
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(header_of(req, "Authorization") == "Basic " + base64_encode(kClient + ":" + kSecret));
  Params form = form_of(req);
  BOOST_TEST(*find_param(form, "token") == "opaque-token-1");
  BOOST_TEST(*find_param(form, "token_type_hint") == "access_token");
  // Within a minute: the cached answer; after it, asked again.
  BOOST_TEST(bool(client.verify_access_token("opaque-token-1", kNow + 59)));
  BOOST_TEST(http.count(introspect_url) == 1);
  BOOST_TEST(bool(client.verify_access_token("opaque-token-1", kNow + 61)));
  BOOST_TEST(http.count(introspect_url) == 2);
}

BOOST_FIXTURE_TEST_CASE(the_cache_never_outlives_the_tokens_exp, IntrospectionFixture) {
  answer({{"active", true}, {"client_id", kClient}, {"exp", kNow + 10}});
  ProviderClient client(config, http, clock, "");
  BOOST_REQUIRE(client.verify_access_token("short", kNow));
  BOOST_TEST(bool(client.verify_access_token("short", kNow + 5)));
  BOOST_TEST(http.count(introspect_url) == 1);
  answer({{"active", false}});
  auto late = client.verify_access_token("short", kNow + 11);
  BOOST_REQUIRE(!late);
  BOOST_TEST(late.error().code == kTokenInactive);
  BOOST_TEST(http.count(introspect_url) == 2);
}

BOOST_FIXTURE_TEST_CASE(an_introspected_token_passes_only_if_active_and_issued_to_this_app, IntrospectionFixture) {
  auto code = [&](const json& a, const std::string& audience = "") {
    answer(a);
    Config c = config;
    c.audience = audience;
    ProviderClient client(c, http, clock, "");
    auto r = client.verify_access_token("tok", kNow);
    return r ? std::string("ok") : r.error().code;
  };
  BOOST_TEST(code({{"active", false}}) == "token_inactive");
  BOOST_TEST(code({{"active", "true"}, {"client_id", kClient}}) == "token_inactive");
  BOOST_TEST(code({{"active", true}, {"client_id", "another-app"}}) == "token_bad_azp");
  BOOST_TEST(code({{"active", true}, {"sub", "u1"}}) == "token_no_azp");
  BOOST_TEST(code({{"active", true}, {"client_id", kClient}, {"iss", "https://other.example"}}) == "token_bad_iss");
  BOOST_TEST(code({{"active", true}, {"client_id", kClient}, {"exp", kNow - 3600}}) == "token_expired");
  BOOST_TEST(code({{"active", true}, {"client_id", kClient}, {"token_type", "refresh_token"}}) == "token_inactive");
  BOOST_TEST(code({{"active", true}, {"client_id", "m2m"}, {"aud", "https://api.example"}}, "https://api.example") == "ok");
  BOOST_TEST(code({{"active", true}, {"client_id", kClient}, {"aud", "https://other"}}, "https://api.example") ==
             "token_bad_aud");
  BOOST_TEST(code({{"active", true}, {"client_id", kClient}}) == "ok");
}

BOOST_FIXTURE_TEST_CASE(an_opaque_token_without_an_introspection_endpoint_or_reachable_one_is_refused,
                        IntrospectionFixture) {
  answer({{"error", "invalid_client"}}, 401);
  ProviderClient client(config, http, clock, "");
  auto r = client.verify_access_token("tok", kNow);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kIntrospectionFailed);
  BOOST_TEST(r.error().detail.find("tok") == std::string::npos);
  json doc = discovery_doc();
  doc.erase("introspection_endpoint");
  http.serve(kIssuer + "/.well-known/openid-configuration", doc.dump());
  ProviderClient bare(config, http, clock, "");
  auto none = bare.verify_access_token("tok", kNow);
  BOOST_REQUIRE(!none);
  BOOST_TEST(none.error().code == kTokenOpaque);
  // A JWT-shaped token never goes to introspection.
  const int before = http.count(introspect_url);
  BOOST_TEST(!client.verify_access_token("a.b.c", kNow));
  BOOST_TEST(http.count(introspect_url) == before);
}

BOOST_FIXTURE_TEST_CASE(userinfo_is_asked_with_the_access_token_and_must_name_a_subject, IntrospectionFixture) {
  const std::string url = kIssuer + "/oauth2/v2/user_profile";
  http.serve(url, R"({"sub":"u1","name":"Ada"})");
  ProviderClient client(config, http, clock, "");
  auto r = client.userinfo("at-123");
  BOOST_REQUIRE(r);
  BOOST_TEST((*r)["name"] == "Ada");
  BOOST_TEST(header_of(http.requests.back(), "Authorization") == "Bearer at-123");
  http.serve(url, R"({"name":"Ada"})");
  BOOST_TEST(client.userinfo("at-123").error().code == kUserinfoFailed);
  http.serve(url, "eyJ.signed.jwt");
  BOOST_TEST(client.userinfo("at-123").error().code == kUserinfoFailed);
  http.serve(url, "{}", 401);
  BOOST_TEST(client.userinfo("at-123").error().code == kUserinfoFailed);
}

// ---- revocation (RFC 7009) -----------------------------------------------------------------------------------

struct RevocationFixture {
  Config config = provider_config();
  ScriptedHttp http;
  FixedClock clock{kNow};
  RevocationFixture() {
    config.http_timeout_ms = 10000;
    config.http_connect_timeout_ms = 3000;
    http.serve(kIssuer + "/.well-known/openid-configuration", discovery_doc().dump());
    http.serve(kIssuer + "/oauth2/revoke", "");
  }
  const HttpRequest& last() const { return http.requests.back(); }
};

BOOST_FIXTURE_TEST_CASE(revocation_posts_the_refresh_token_with_basic_client_authentication, RevocationFixture) {
  ProviderClient client(config, http, clock, "");
  BOOST_REQUIRE(client.revoke_refresh_token("rt-secret-1"));
  const HttpRequest& r = last();
  BOOST_TEST(r.method == "POST");
  BOOST_TEST(r.url == kIssuer + "/oauth2/revoke");
  BOOST_TEST(header_of(r, "Content-Type") == "application/x-www-form-urlencoded");
  BOOST_TEST(header_of(r, "Authorization") == "Basic " + base64_encode(kClient + ":" + kSecret));
  Params form = form_of(r);
  BOOST_TEST(find_param(form, "token").value_or("") == "rt-secret-1");
  BOOST_TEST(find_param(form, "token_type_hint").value_or("") == "refresh_token");
  BOOST_TEST(find_param(form, "client_id").value_or("") == kClient);
  BOOST_TEST(!find_param(form, "client_secret").has_value());
  // A slow provider cannot hold the sign-out for the full HTTP timeout.
  BOOST_TEST(r.total_timeout_ms == ProviderClient::kRevocationTimeoutMs);
  BOOST_TEST(r.connect_timeout_ms == ProviderClient::kRevocationTimeoutMs);
}

BOOST_FIXTURE_TEST_CASE(revocation_uses_client_secret_post_like_the_token_endpoint, RevocationFixture) {
  config.token_auth = "client_secret_post";
  ProviderClient client(config, http, clock, "");
  BOOST_REQUIRE(client.revoke_refresh_token("rt-2"));
  Params form = form_of(last());
  BOOST_TEST(find_param(form, "client_secret").value_or("") == kSecret);
  BOOST_TEST(header_of(last(), "Authorization").empty());
  // The token endpoint authenticates the same way (one implementation).
  http.serve(kIssuer + "/oauth2/token", json({{"access_token", "at"}, {"token_type", "Bearer"}}).dump());
  BOOST_REQUIRE(client.refresh("rt-3"));
  BOOST_TEST(find_param(form_of(last()), "client_secret").value_or("") == kSecret);
}

BOOST_FIXTURE_TEST_CASE(revocation_failures_are_errors_that_never_show_the_token, RevocationFixture) {
  ProviderClient client(config, http, clock, "");
  http.serve(kIssuer + "/oauth2/revoke", R"({"error":"invalid_client"})", 401);
  auto refused = client.revoke_refresh_token("rt-secret-9");
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().code == kRevocationFailed);
  BOOST_TEST(refused.error().detail.find("401 invalid_client") != std::string::npos);
  BOOST_TEST(refused.error().detail.find("rt-secret-9") == std::string::npos);
  http.serve(kIssuer + "/oauth2/revoke", "oops", 503);
  BOOST_TEST(client.revoke_refresh_token("rt").error().code == kRevocationFailed);
  BOOST_REQUIRE(client.metadata());  // discovery cached in the process
  http.fail = make_error(kHttpTimeout, "timed out after 2000 ms");
  auto slow = client.revoke_refresh_token("rt");
  BOOST_TEST(slow.error().code == kRevocationFailed);
  BOOST_TEST(slow.error().detail.find("http_timeout") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(without_a_revocation_endpoint_nothing_is_sent, RevocationFixture) {
  json doc = discovery_doc();
  doc.erase("revocation_endpoint");
  http.serve(kIssuer + "/.well-known/openid-configuration", doc.dump());
  ProviderClient client(config, http, clock, "");
  auto r = client.revoke_refresh_token("rt");
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kRevocationUnsupported);
  BOOST_TEST(http.count(kIssuer + "/oauth2/revoke") == 0);
}

// ---- refresh: which failures end a session (a refusal) and which keep it for a retry (an outage) -------------

BOOST_FIXTURE_TEST_CASE(a_failed_refresh_is_an_outage_or_a_refusal_by_status_and_error_code, RevocationFixture) {
  // RFC 6749 5.2: a 5xx, server_error or temporarily_unavailable says nothing about the grant (outage:
  // token_endpoint_failed keeps the session); any other error is the provider's verdict (token_error).
  struct Case { long status; const char* body; const char* code; };
  const Case cases[] = {
      {400, R"({"error":"invalid_grant"})", "token_error"},
      {400, R"({"error":"invalid_grant","error_description":"rotated"})", "token_error"},
      {401, R"({"error":"invalid_client"})", "token_error"},
      {400, R"({"error":"unauthorized_client"})", "token_error"},
      {400, R"({"error":"temporarily_unavailable"})", "token_endpoint_failed"},
      {400, R"({"error":"server_error"})", "token_endpoint_failed"},
      {500, R"({"error":"invalid_grant"})", "token_endpoint_failed"},
      {502, "<html>Bad Gateway</html>", "token_endpoint_failed"},
      {503, "", "token_endpoint_failed"},
      {400, "not json", "token_response_invalid"},  // not a verdict either: the session is kept
      {200, R"({"token_type":"Bearer"})", "token_response_invalid"},
      {200, R"({"access_token":"at","token_type":"MAC"})", "token_response_invalid"},
      {200, R"({"access_token":"at","token_type":"bearer"})", "ok"},
  };
  ProviderClient client(config, http, clock, "");
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.status << " " << c.body) {
      http.serve(kIssuer + "/oauth2/token", c.body, c.status);
      auto r = client.refresh("rt-secret-7");
      BOOST_TEST((r ? std::string("ok") : r.error().code) == c.code);
      if (!r) BOOST_TEST(r.error().detail.find("rt-secret-7") == std::string::npos);
    }
  }
  // A network failure is an outage too, whatever transport code it carries.
  for (const char* code : {"http_connect", "http_timeout", "http_tls", "http_failed"}) {
    BOOST_TEST_CONTEXT(code) {
      http.fail = make_error(code, "down");
      BOOST_TEST(client.refresh("rt").error().code == kTokenEndpointFailed);
      http.fail.reset();
    }
  }
}

BOOST_FIXTURE_TEST_CASE(client_authentication_form_encodes_id_and_secret_before_basic, RevocationFixture) {
  // RFC 6749 2.3.1: "application/x-www-form-urlencoded" first, then Base64 of id:secret.
  config.client_id = "app id:1";
  config.client_secret = "s3cr%t+/=";
  ProviderClient client(config, http, clock, "");
  http.serve(kIssuer + "/oauth2/token", json({{"access_token", "at"}, {"token_type", "Bearer"}}).dump());
  BOOST_REQUIRE(client.refresh("rt-1"));
  BOOST_TEST(header_of(last(), "Authorization") == "Basic " + base64_encode("app%20id%3A1:s3cr%25t%2B%2F%3D"));
  Params form = form_of(last());
  BOOST_TEST(find_param(form, "grant_type").value_or("") == "refresh_token");
  BOOST_TEST(find_param(form, "refresh_token").value_or("") == "rt-1");
  BOOST_TEST(!find_param(form, "client_secret").has_value());
}

// ---- JWKS: an unknown kid re-fetches at most once a minute across processes ---------------------------------

struct JwksFixture {
  TempDir dir;
  Config config = provider_config();
  ScriptedHttp http;
  FixedClock clock{kNow};
  std::string cache;
  std::string jwks_url = kIssuer + "/.well-known/jwks";
  JwksFixture() : cache(dir.path + "/.provider-cache.json") {
    config.audience = "https://api.example";
    http.serve(kIssuer + "/.well-known/openid-configuration", discovery_doc().dump());
    http.serve(jwks_url, jwks_json({jwk_json(rsa_key(), "k1")}));
  }
  std::string token(const PKey& key, const std::string& kid) const {
    return sign_jwt({{"kid", kid}}, access_token_payload(kIssuer, "m2m", config.audience, kNow), key, "RS256");
  }
  // A new process: a fresh ProviderClient over the same cache file.
  std::unique_ptr<ProviderClient> process() { return std::make_unique<ProviderClient>(config, http, clock, cache); }
};

BOOST_FIXTURE_TEST_CASE(an_unknown_kid_fetches_the_jwks_once_a_minute_across_processes, JwksFixture) {
  BOOST_REQUIRE(process()->verify_access_token(token(rsa_key(), "k1"), kNow));  // primes the shared cache
  BOOST_TEST(http.count(jwks_url) == 1);
  const std::string stray = token(rsa_key2(), "stray");
  for (int i = 0; i < 5; ++i) {
    auto r = process()->verify_access_token(stray, kNow + i);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().code == kJwtUnknownKid);
  }
  BOOST_TEST(http.count(jwks_url) == 2);  // one forced fetch for five processes
  // A long-lived (FastCGI) process that read the cache before the forced fetch respects it too.
  clock.set(kNow + 30);
  BOOST_TEST(!process()->verify_access_token(stray, kNow + 30));
  BOOST_TEST(http.count(jwks_url) == 2);
  // A minute later, one more.
  clock.set(kNow + 61);
  BOOST_TEST(!process()->verify_access_token(stray, kNow + 61));
  BOOST_TEST(!process()->verify_access_token(stray, kNow + 61));
  BOOST_TEST(http.count(jwks_url) == 3);
}

BOOST_FIXTURE_TEST_CASE(a_process_adopts_keys_another_one_fetched_for_a_rotation, JwksFixture) {
  auto old_process = process();
  BOOST_REQUIRE(old_process->verify_access_token(token(rsa_key(), "k1"), kNow));
  // The provider rotates to k2; another process meets a k2 token first and fetches the new set.
  http.serve(jwks_url, jwks_json({jwk_json(rsa_key(), "k1"), jwk_json(rsa_key2(), "k2")}));
  const std::string rotated = token(rsa_key2(), "k2");
  clock.set(kNow + 5);
  BOOST_REQUIRE(process()->verify_access_token(rotated, kNow + 5));
  BOOST_TEST(http.count(jwks_url) == 2);
  // The older process finds the new keys in the shared cache: it verifies without a fetch of its own.
  BOOST_REQUIRE(old_process->verify_access_token(rotated, kNow + 6));
  BOOST_TEST(http.count(jwks_url) == 2);
}

BOOST_FIXTURE_TEST_CASE(a_forced_fetch_with_a_stale_discovery_document_refreshes_it_without_deadlock, JwksFixture) {
  auto p = process();
  BOOST_REQUIRE(p->verify_access_token(token(rsa_key(), "k1"), kNow));  // discovery and keys at kNow
  clock.set(kNow + 23 * 3600 + 1800);
  BOOST_REQUIRE(p->verify_access_token(token(rsa_key(), "k1"), kNow + 23 * 3600 + 1800));  // keys re-read (TTL)
  // A day after discovery, keys still fresh: the unknown kid re-fetches discovery (which writes the cache)
  // and then the keys, both under one process.
  clock.set(kNow + 24 * 3600 + 60);
  const int discovery_fetches = http.count(kIssuer + "/.well-known/openid-configuration");
  const int jwks_fetches = http.count(jwks_url);
  auto r = p->verify_access_token(token(rsa_key2(), "stray"), kNow + 24 * 3600 + 60);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kJwtUnknownKid);
  BOOST_TEST(http.count(kIssuer + "/.well-known/openid-configuration") == discovery_fetches + 1);
  BOOST_TEST(http.count(jwks_url) == jwks_fetches + 1);
}

BOOST_FIXTURE_TEST_CASE(the_forced_fetch_time_survives_other_writes_to_the_cache, JwksFixture) {
  auto early = process();
  BOOST_REQUIRE(early->metadata());  // a long-lived process that read the cache before anything below
  BOOST_REQUIRE(process()->verify_access_token(token(rsa_key(), "k1"), kNow));
  const std::string stray = token(rsa_key2(), "stray");
  clock.set(kNow + 1);
  BOOST_TEST(!process()->verify_access_token(stray, kNow + 1));  // the forced fetch
  BOOST_TEST(http.count(jwks_url) == 2);
  // The early process loads keys of its own and rewrites the cache: the forced-fetch time is kept, and it
  // respects it for the same token.
  clock.set(kNow + 2);
  BOOST_TEST(!early->verify_access_token(stray, kNow + 2));
  BOOST_TEST(http.count(jwks_url) == 3);  // its first key load (TTL path), no forced fetch
  std::ifstream in(cache);
  std::stringstream ss;
  ss << in.rdbuf();
  BOOST_TEST(json::parse(ss.str()).value("jwks_forced_at", std::int64_t{0}) == kNow + 1);
}

// ---- deadline: provider calls under a session lock end before the lock ---------------------------------------

// A clock whose monotonic milliseconds the test moves.
class SteppingClock : public Clock {
 public:
  std::int64_t ms = 5'000'000;
  std::int64_t now() const override { return kNow; }
  std::int64_t monotonic_ms() const override { return ms; }
};

BOOST_AUTO_TEST_CASE(a_deadline_cuts_every_call_timeout_to_the_time_left) {
  Config config = provider_config();
  config.http_connect_timeout_ms = 3000;
  config.http_timeout_ms = 10000;
  ScriptedHttp http;
  http.serve(kIssuer + "/.well-known/openid-configuration", discovery_doc().dump());
  SteppingClock clock;
  ProviderClient client(config, http, clock, "");
  {
    ProviderDeadline deadline(client, clock.ms + 2500);
    (void)client.refresh("rt-1");  // discovery, then the token call
    BOOST_REQUIRE_EQUAL(http.requests.size(), 2u);
    for (const auto& r : http.requests) {
      BOOST_TEST(r.connect_timeout_ms == 2500);
      BOOST_TEST(r.total_timeout_ms == 2500);
    }
    clock.ms += 2000;
    (void)client.refresh("rt-2");
    BOOST_TEST(http.requests.back().total_timeout_ms == 500);
  }
  // Lifted with the scope: the configured timeouts again.
  (void)client.refresh("rt-3");
  BOOST_TEST(http.requests.back().connect_timeout_ms == 3000);
  BOOST_TEST(http.requests.back().total_timeout_ms == 10000);
}

BOOST_AUTO_TEST_CASE(no_call_starts_once_the_deadline_has_passed) {
  Config config = provider_config();
  ScriptedHttp http;
  http.serve(kIssuer + "/.well-known/openid-configuration", discovery_doc().dump());
  SteppingClock clock;
  ProviderClient client(config, http, clock, "");
  BOOST_REQUIRE(client.metadata());
  const auto before = http.requests.size();
  ProviderDeadline deadline(client, clock.ms);
  auto r = client.refresh("rt-1");
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kTokenEndpointFailed);  // a network failure: the session is kept for a retry
  BOOST_TEST(r.error().detail.find("session lock") != std::string::npos);
  BOOST_TEST(http.requests.size() == before);
}

BOOST_AUTO_TEST_SUITE_END()
