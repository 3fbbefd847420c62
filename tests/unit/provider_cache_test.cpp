// ProviderClient's verified-token cache (a bearer token's signature is checked once per key set)
// and CurlTransport's lazy libcurl loading (a missing library is an Error, not a crash).
#include <boost/test/unit_test.hpp>

#include <string>

#include "config/config.hpp"
#include "http/transport.hpp"
#include "oidc/provider.hpp"
#include "oidc/token_checks.hpp"
#include "test_keys.hpp"
#include "util/clock.hpp"

using namespace kinde;
using namespace kinde::testing;

namespace {

const std::string kIssuer = "https://idp.example";
const std::string kAudience = "https://api.example";
constexpr std::int64_t kNow = 1'800'000'000;

// Serves discovery and a JWKS that the test can swap; counts JWKS fetches.
class FakeProvider : public HttpTransport {
 public:
  std::string jwks;
  int jwks_fetches = 0;
  Result<HttpResponse> perform(const HttpRequest& request) override {
    HttpResponse res;
    res.status = 200;
    if (request.url == kIssuer + "/.well-known/openid-configuration") {
      res.body = nlohmann::json({{"issuer", kIssuer},
                                 {"authorization_endpoint", kIssuer + "/oauth2/auth"},
                                 {"token_endpoint", kIssuer + "/oauth2/token"},
                                 {"jwks_uri", kIssuer + "/.well-known/jwks.json"}})
                     .dump();
    } else if (request.url == kIssuer + "/.well-known/jwks.json") {
      ++jwks_fetches;
      res.body = jwks;
    } else {
      res.status = 404;
    }
    return res;
  }
};

struct Fixture {
  Config config;
  FakeProvider http;
  FixedClock clock{kNow};
  std::unique_ptr<ProviderClient> client;
  Fixture() {
    config.issuer = kIssuer;
    config.audience = kAudience;
    http.jwks = jwks_json({jwk_json(rsa_key(), "k1")});
    client = std::make_unique<ProviderClient>(config, http, clock, "");
  }
  std::string token(std::int64_t exp_in, const PKey& key = rsa_key(), const std::string& kid = "k1") const {
    auto payload = access_token_payload(kIssuer, "m2m-client", kAudience, kNow);
    payload["exp"] = kNow + exp_in;
    return sign_jwt({{"kid", kid}}, payload, key, "RS256");
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(provider_cache)

BOOST_AUTO_TEST_CASE(a_verified_bearer_token_is_cached_and_gives_the_same_claims_again) {
  Fixture f;
  std::string t = f.token(3600);
  auto first = f.client->verify_access_token(t, kNow);
  BOOST_REQUIRE(first);
  BOOST_TEST(f.client->cached_token_count() == 1u);
  auto second = f.client->verify_access_token(t, kNow + 10);
  BOOST_REQUIRE(second);
  BOOST_TEST(*second == *first);
  BOOST_TEST(f.client->cached_token_count() == 1u);
}

BOOST_AUTO_TEST_CASE(a_cached_token_is_refused_once_it_expires_and_leaves_the_cache) {
  Fixture f;
  std::string t = f.token(100);
  BOOST_REQUIRE(f.client->verify_access_token(t, kNow));
  // 60 s leeway, as for an uncached token: exp + 60 is the first refused second.
  BOOST_TEST(bool(f.client->verify_access_token(t, kNow + 159)));
  auto late = f.client->verify_access_token(t, kNow + 160);
  BOOST_REQUIRE(!late);
  BOOST_TEST(late.error().code == kTokenExpired);
  BOOST_TEST(f.client->cached_token_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_token_with_a_bad_signature_or_claims_is_never_cached) {
  Fixture f;
  std::string forged = f.token(3600, rsa_key2());  // kid k1, but signed by another key
  BOOST_TEST(!f.client->verify_access_token(forged, kNow));
  BOOST_TEST(!f.client->verify_access_token(forged, kNow));
  std::string expired = f.token(-3600);
  BOOST_TEST(!f.client->verify_access_token(expired, kNow));
  BOOST_TEST(f.client->cached_token_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_jwks_change_invalidates_cached_tokens) {
  Fixture f;
  std::string t = f.token(86400);
  BOOST_REQUIRE(f.client->verify_access_token(t, kNow));
  // The provider drops k1 and publishes only another key; after the JWKS TTL the set is re-read
  // and the cached result must not outlive the key that verified it.
  f.http.jwks = jwks_json({jwk_json(rsa_key2(), "k2")});
  f.clock.advance(3601);
  int before = f.http.jwks_fetches;
  auto after = f.client->verify_access_token(t, kNow + 3601);
  BOOST_TEST(f.http.jwks_fetches > before);
  BOOST_REQUIRE(!after);
  BOOST_TEST(after.error().code == kJwtUnknownKid);
  BOOST_TEST(f.client->cached_token_count() == 0u);
}

BOOST_AUTO_TEST_CASE(the_cache_is_bounded_and_evicts_the_oldest_token) {
  Fixture f;
  std::string first = f.token(1000);
  BOOST_REQUIRE(f.client->verify_access_token(first, kNow));
  for (std::size_t i = 1; i <= ProviderClient::kTokenCacheSize; ++i)
    BOOST_REQUIRE(f.client->verify_access_token(f.token(1000 + static_cast<std::int64_t>(i)), kNow));
  BOOST_TEST(f.client->cached_token_count() == ProviderClient::kTokenCacheSize);
  // The first token was evicted: verifying it again works (from scratch) and keeps the bound.
  BOOST_TEST(bool(f.client->verify_access_token(first, kNow)));
  BOOST_TEST(f.client->cached_token_count() == ProviderClient::kTokenCacheSize);
}

BOOST_AUTO_TEST_CASE(curl_transport_without_its_library_answers_http_failed) {
  CurlTransport http("libkinde-no-such-curl.so.0");
  HttpRequest req;
  req.url = "http://127.0.0.1:9/";
  auto res = http.perform(req);
  BOOST_REQUIRE(!res);
  BOOST_TEST(res.error().code == kHttpFailed);
  BOOST_TEST(res.error().detail.find("libkinde-no-such-curl.so.0 could not be loaded") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(curl_transport_loads_libcurl_on_first_use_and_reports_connect_errors) {
  CurlTransport http;
  HttpRequest req;
  req.url = "http://127.0.0.1:9/";  // discard port: nothing listens on loopback
  req.connect_timeout_ms = 1000;
  req.total_timeout_ms = 2000;
  auto res = http.perform(req);
  BOOST_REQUIRE(!res);
  BOOST_TEST(res.error().code == kHttpConnect);
}

BOOST_AUTO_TEST_SUITE_END()
