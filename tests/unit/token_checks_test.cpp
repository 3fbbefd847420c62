// Claim checks on verified payloads: ID tokens (OpenID Connect Core 3.1.3.7) and bearer access tokens.
#include <boost/test/unit_test.hpp>

#include <string>

#include "oidc/token_checks.hpp"
#include "test_keys.hpp"

using nlohmann::json;
using namespace kinde;

namespace {

const std::string kIssuer = "https://example.kinde.com";
const std::string kClient = "client-123";
const std::string kNonce = "n-0S6_WzA2Mj";

// A valid ID token at now=100 with exp 100+3600; tests change one thing at a time.
json id_payload(std::int64_t now = 100) { return kinde::testing::id_token_payload(kIssuer, kClient, kNonce, now); }

IdTokenExpectations expect_at(std::int64_t now, std::int64_t leeway = 60) {
  IdTokenExpectations e;
  e.issuer = kIssuer;
  e.client_id = kClient;
  e.nonce = kNonce;
  e.now = now;
  e.leeway = leeway;
  return e;
}

AccessTokenExpectations access_at(std::int64_t now, const std::string& audience = "", std::int64_t leeway = 60) {
  AccessTokenExpectations e;
  e.issuer = kIssuer;
  e.audience = audience;
  e.client_id = kClient;
  e.now = now;
  e.leeway = leeway;
  return e;
}

std::string code_of(const Result<void>& r) { return r.ok() ? "ok" : r.error().code; }

// Kinde's access tokens have a plain JWT header; RFC 9068 ones say typ at+jwt.
const json kJwtHeader = {{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "k1"}};
const json kAtJwtHeader = {{"alg", "RS256"}, {"typ", "at+jwt"}, {"kid", "k1"}};

std::string access_code(const json& payload, const AccessTokenExpectations& e, const json& header = kJwtHeader) {
  return code_of(check_access_token_claims(header, payload, e));
}

std::string id_code(const json& payload, const IdTokenExpectations& e) {
  return code_of(check_id_token_claims(payload, e));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(token_checks)

BOOST_AUTO_TEST_CASE(a_valid_id_token_passes) {
  BOOST_TEST(id_code(id_payload(), expect_at(100)) == "ok");
  BOOST_TEST(id_code(id_payload(), expect_at(100, 0)) == "ok");
}

BOOST_AUTO_TEST_CASE(issuer_must_match_exactly) {
  json p = id_payload();
  p["iss"] = kIssuer + "/";
  auto r = check_id_token_claims(p, expect_at(100));
  BOOST_TEST(code_of(r) == "token_bad_iss");
  BOOST_TEST(r.error().detail.find(kIssuer) != std::string::npos);
  BOOST_TEST(r.error().detail.find(kIssuer + "/\"") != std::string::npos);  // the actual value is shown
  p["iss"] = "https://EXAMPLE.kinde.com";
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_iss");
  p["iss"] = json::array({kIssuer});
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_iss");
  p.erase("iss");
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_iss");
  BOOST_TEST(id_code(json::array(), expect_at(100)) == "token_bad_iss");
}

BOOST_AUTO_TEST_CASE(aud_as_string_or_array_must_contain_the_client_id) {
  json p = id_payload();
  p.erase("azp");
  p["aud"] = kClient;
  BOOST_TEST(id_code(p, expect_at(100)) == "ok");
  p["aud"] = json::array({"https://api.example", kClient});
  BOOST_TEST(id_code(p, expect_at(100)) == "ok");
  p["aud"] = "other-client";
  auto r = check_id_token_claims(p, expect_at(100));
  BOOST_TEST(code_of(r) == "token_bad_aud");
  BOOST_TEST(r.error().detail.find("other-client") != std::string::npos);
  BOOST_TEST(r.error().detail.find(kClient) != std::string::npos);
  p["aud"] = json::array({"https://api.example", "client-1234"});
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_aud");
  p["aud"] = json::array({json::array({kClient})});  // nested, not a member
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_aud");
  p["aud"] = 123;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_aud");
}

BOOST_AUTO_TEST_CASE(missing_or_empty_aud_is_token_no_aud_even_with_a_matching_azp) {
  json p = id_payload();
  p.erase("aud");
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_aud");
  p["aud"] = nullptr;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_aud");
  p["aud"] = "";
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_aud");
  p["aud"] = json::array();
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_aud");
}

BOOST_AUTO_TEST_CASE(azp_equal_to_client_id_is_accepted_when_aud_lacks_it) {
  json p = id_payload();
  p["aud"] = json::array({"https://example.kinde.com/api"});
  p["azp"] = kClient;
  BOOST_TEST(id_code(p, expect_at(100)) == "ok");
  p.erase("azp");
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_aud");
}

BOOST_AUTO_TEST_CASE(azp_present_and_different_from_client_id_is_rejected) {
  json p = id_payload();
  p["azp"] = "someone-else";
  auto r = check_id_token_claims(p, expect_at(100));
  BOOST_TEST(code_of(r) == "token_bad_azp");
  BOOST_TEST(r.error().detail.find("someone-else") != std::string::npos);
  p["azp"] = json::array({kClient});
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_azp");
  p["aud"] = "https://api.example";  // azp cannot rescue a wrong aud when azp itself is wrong
  p["azp"] = "someone-else";
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_azp");
}

BOOST_AUTO_TEST_CASE(exp_100_is_valid_at_90_and_expired_at_110_without_leeway) {
  json p = id_payload(0);
  p["exp"] = 100;
  BOOST_TEST(id_code(p, expect_at(90, 0)) == "ok");
  BOOST_TEST(id_code(p, expect_at(99, 0)) == "ok");
  BOOST_TEST(id_code(p, expect_at(100, 0)) == "token_expired");  // exp is the first instant it is invalid
  auto r = check_id_token_claims(p, expect_at(110, 0));
  BOOST_TEST(code_of(r) == "token_expired");
  BOOST_TEST(r.error().detail.find("100") != std::string::npos);
  BOOST_TEST(r.error().detail.find("110") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(leeway_extends_exp) {
  json p = id_payload(0);
  p["exp"] = 100;
  BOOST_TEST(id_code(p, expect_at(110, 60)) == "ok");
  BOOST_TEST(id_code(p, expect_at(159, 60)) == "ok");
  BOOST_TEST(id_code(p, expect_at(160, 60)) == "token_expired");
  BOOST_TEST(id_code(p, expect_at(110, 5)) == "token_expired");
}

BOOST_AUTO_TEST_CASE(exp_missing_or_not_a_number_is_expired) {
  json p = id_payload();
  p.erase("exp");
  BOOST_TEST(id_code(p, expect_at(100)) == "token_expired");
  p["exp"] = "4000";
  BOOST_TEST(id_code(p, expect_at(100)) == "token_expired");
  p["exp"] = nullptr;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_expired");
  p["exp"] = true;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_expired");
}

BOOST_AUTO_TEST_CASE(numeric_dates_may_be_fractional_or_huge_without_overflow) {
  json p = id_payload(0);
  p["exp"] = 100.9;  // floor: 100
  BOOST_TEST(id_code(p, expect_at(99, 0)) == "ok");
  BOOST_TEST(id_code(p, expect_at(100, 0)) == "token_expired");
  p["exp"] = 18446744073709551615ull;  // uint64 max: saturates, not wrapped to -1
  BOOST_TEST(id_code(p, expect_at(100, 60)) == "ok");
  p["exp"] = 9223372036854775807ll;  // int64 max + leeway must not overflow
  BOOST_TEST(id_code(p, expect_at(100, 60)) == "ok");
  p["exp"] = 1e300;
  BOOST_TEST(id_code(p, expect_at(100, 60)) == "ok");
  p["exp"] = -9223372036854775807ll - 1;
  BOOST_TEST(id_code(p, expect_at(100, 60)) == "token_expired");
  p["exp"] = -1e300;
  BOOST_TEST(id_code(p, expect_at(100, 60)) == "token_expired");
}

BOOST_AUTO_TEST_CASE(nbf_in_the_future_beyond_leeway_is_not_yet_valid) {
  json p = id_payload(0);
  p["nbf"] = 100;
  BOOST_TEST(id_code(p, expect_at(100, 0)) == "ok");
  BOOST_TEST(id_code(p, expect_at(90, 0)) == "token_not_yet_valid");
  BOOST_TEST(id_code(p, expect_at(90, 10)) == "ok");
  BOOST_TEST(id_code(p, expect_at(89, 10)) == "token_not_yet_valid");
  p["nbf"] = "soon";
  BOOST_TEST(id_code(p, expect_at(100, 60)) == "token_not_yet_valid");
  p["nbf"] = -9223372036854775807ll - 1;  // nbf - leeway must not overflow
  BOOST_TEST(id_code(p, expect_at(100, 60)) == "ok");
}

BOOST_AUTO_TEST_CASE(iat_is_required_and_must_not_be_in_the_future) {
  json p = id_payload(0);
  p.erase("iat");
  BOOST_TEST(id_code(p, expect_at(10)) == "token_no_iat");
  p["iat"] = "0";
  BOOST_TEST(id_code(p, expect_at(10)) == "token_no_iat");
  p["iat"] = 100;
  BOOST_TEST(id_code(p, expect_at(100, 0)) == "ok");
  BOOST_TEST(id_code(p, expect_at(90, 0)) == "token_iat_future");
  BOOST_TEST(id_code(p, expect_at(90, 10)) == "ok");
  auto r = check_id_token_claims(p, expect_at(39, 60));
  BOOST_TEST(code_of(r) == "token_iat_future");
  BOOST_TEST(r.error().detail.find("iat 100") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sub_must_be_a_non_empty_string) {
  json p = id_payload();
  p.erase("sub");
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_sub");
  p["sub"] = "";
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_sub");
  p["sub"] = 42;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_sub");
  p["sub"] = "kp_abc";
  BOOST_TEST(id_code(p, expect_at(100)) == "ok");
}

BOOST_AUTO_TEST_CASE(nonce_must_equal_the_one_sent) {
  json p = id_payload();
  p["nonce"] = kNonce + "x";
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_nonce");
  p["nonce"] = kNonce.substr(1);
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_nonce");
  p["nonce"] = "";
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_nonce");
  p["nonce"] = 7;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_nonce");
  p.erase("nonce");
  auto r = check_id_token_claims(p, expect_at(100));
  BOOST_TEST(code_of(r) == "token_bad_nonce");
  BOOST_TEST(r.error().detail.find(kNonce) == std::string::npos);  // the expected nonce is not leaked
}

BOOST_AUTO_TEST_CASE(nonce_is_not_checked_when_none_is_expected_as_for_refreshed_tokens) {
  auto e = expect_at(100);
  e.nonce.clear();
  json p = id_payload();
  BOOST_TEST(id_code(p, e) == "ok");
  p.erase("nonce");
  BOOST_TEST(id_code(p, e) == "ok");
  p["nonce"] = "whatever";
  BOOST_TEST(id_code(p, e) == "ok");
}

BOOST_AUTO_TEST_CASE(checks_report_the_first_failure_in_a_stable_order) {
  json p = id_payload();
  p["iss"] = "https://evil";
  p["exp"] = 1;
  p.erase("sub");
  BOOST_TEST(id_code(p, expect_at(100)) == "token_bad_iss");
  p["iss"] = kIssuer;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_expired");
  p["exp"] = 10000;
  BOOST_TEST(id_code(p, expect_at(100)) == "token_no_sub");
}

// ---- access tokens ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_valid_access_token_passes_with_or_without_an_audience) {
  const json p = kinde::testing::access_token_payload(kIssuer, kClient, "https://api.example", 100);
  BOOST_TEST(access_code(p, access_at(100)) == "ok");
  BOOST_TEST(access_code(p, access_at(100, "https://api.example")) == "ok");
  // M2M tokens may carry no sub: not required.
  json m2m = p;
  m2m.erase("sub");
  BOOST_TEST(access_code(m2m, access_at(100, "https://api.example")) == "ok");
}

BOOST_AUTO_TEST_CASE(access_token_issuer_and_audience_are_checked) {
  json p = kinde::testing::access_token_payload(kIssuer, kClient, "https://api.example", 100);
  BOOST_TEST(access_code(p, access_at(100, "https://other.example")) == "token_bad_aud");
  p["aud"] = "https://api.example";
  BOOST_TEST(access_code(p, access_at(100, "https://api.example")) == "ok");
  p.erase("aud");
  BOOST_TEST(access_code(p, access_at(100, "https://api.example")) == "token_bad_aud");
  BOOST_TEST(access_code(p, access_at(100)) == "ok");
  p["iss"] = "https://evil.example";
  BOOST_TEST(access_code(p, access_at(100)) == "token_bad_iss");
}

BOOST_AUTO_TEST_CASE(access_token_exp_and_nbf_use_the_leeway) {
  json p = kinde::testing::access_token_payload(kIssuer, kClient, "", 0);
  p["exp"] = 100;
  BOOST_TEST(access_code(p, access_at(90, "", 0)) == "ok");
  BOOST_TEST(access_code(p, access_at(110, "", 0)) == "token_expired");
  BOOST_TEST(access_code(p, access_at(110, "", 60)) == "ok");
  BOOST_TEST(access_code(p, access_at(160, "", 60)) == "token_expired");
  p["nbf"] = 80;
  BOOST_TEST(access_code(p, access_at(70, "", 0)) == "token_not_yet_valid");
  BOOST_TEST(access_code(p, access_at(70, "", 10)) == "ok");
  p.erase("exp");
  BOOST_TEST(access_code(p, access_at(90, "", 60)) == "token_expired");
}

// ---- access tokens: issued to this app, never an ID token (RFC 9068 4, RFC 8725 3.9) ----------------

BOOST_AUTO_TEST_CASE(without_an_audience_only_tokens_issued_to_this_client_pass) {
  const json own = kinde::testing::access_token_payload(kIssuer, kClient, "", 100);  // azp = this client
  BOOST_TEST(access_code(own, access_at(100)) == "ok");
  // Another app's token (M2M or user): its azp names another client.
  json other = kinde::testing::access_token_payload(kIssuer, "other-m2m-app", "https://api.example", 100);
  other["gty"] = json::array({"client_credentials"});
  BOOST_TEST(access_code(other, access_at(100)) == "token_bad_azp");
  // RFC 9068 2.2 names the client in client_id: the same rule.
  json rfc = own;
  rfc.erase("azp");
  rfc["client_id"] = kClient;
  BOOST_TEST(access_code(rfc, access_at(100), kAtJwtHeader) == "ok");
  rfc["client_id"] = "other-app";
  BOOST_TEST(access_code(rfc, access_at(100), kAtJwtHeader) == "token_bad_azp");
  // Both present: both must name this client.
  rfc["azp"] = kClient;
  BOOST_TEST(access_code(rfc, access_at(100), kAtJwtHeader) == "token_bad_azp");
  rfc["client_id"] = kClient;
  BOOST_TEST(access_code(rfc, access_at(100), kAtJwtHeader) == "ok");
  // Neither: no client named.
  json anonymous = own;
  anonymous.erase("azp");
  BOOST_TEST(access_code(anonymous, access_at(100)) == "token_no_azp");
  // A non-string azp is not this client.
  json weird = own;
  weird["azp"] = json::array({kClient});
  BOOST_TEST(access_code(weird, access_at(100)) == "token_bad_azp");
  // The refusal says what was expected and what came.
  auto r = check_access_token_claims(kJwtHeader, other, access_at(100));
  BOOST_TEST(r.error().detail.find("other-m2m-app") != std::string::npos);
  BOOST_TEST(r.error().detail.find(kClient) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(with_an_audience_any_client_granted_it_passes_and_no_other) {
  const std::string api = "https://api.example";
  json m2m = kinde::testing::access_token_payload(kIssuer, "other-m2m-app", api, 100);
  m2m.erase("sub");
  m2m["gty"] = json::array({"client_credentials"});
  BOOST_TEST(access_code(m2m, access_at(100, api)) == "ok");           // Kinde M2M token for the API
  m2m["aud"] = json::array({"https://another-api.example"});
  BOOST_TEST(access_code(m2m, access_at(100, api)) == "token_bad_aud");
  m2m["aud"] = json::array();
  BOOST_TEST(access_code(m2m, access_at(100, api)) == "token_bad_aud");
}

BOOST_AUTO_TEST_CASE(an_id_token_is_never_a_bearer_credential) {
  // This app's own ID token, as Kinde and the test providers issue it: refused with and without an audience.
  json own_id = kinde::testing::id_token_payload(kIssuer, kClient, kNonce, 100);
  own_id["auth_time"] = 90;
  own_id["at_hash"] = "VZ6cU0Ay0RKB5EosbWuTCQ";
  for (const std::string& audience : {std::string(), std::string("https://api.example")}) {
    BOOST_TEST(access_code(own_id, access_at(100, audience)) == "token_is_id_token");
  }
  // Each marker alone is enough, on an otherwise valid access token of this client.
  for (const char* marker : {"nonce", "at_hash", "c_hash", "s_hash", "auth_time"}) {
    json p = kinde::testing::access_token_payload(kIssuer, kClient, "", 100);
    p[marker] = marker == std::string("auth_time") ? json(90) : json("x");
    BOOST_TEST_CONTEXT(marker) { BOOST_TEST(access_code(p, access_at(100)) == "token_is_id_token"); }
  }
  // A refreshed ID token without nonce, at_hash or auth_time is still addressed to the client (Core 2).
  json bare = kinde::testing::id_token_payload(kIssuer, kClient, "", 100);
  BOOST_TEST(access_code(bare, access_at(100)) == "token_is_id_token");
  // Kinde's ID token has aud = the business domain and azp = the client: the markers catch it.
  json kinde_id = own_id;
  kinde_id["aud"] = json::array({kIssuer});
  BOOST_TEST(access_code(kinde_id, access_at(100)) == "token_is_id_token");
  // Another app's ID token: refused whatever the audience.
  json foreign = kinde::testing::id_token_payload(kIssuer, "another-app", kNonce, 100);
  BOOST_TEST(access_code(foreign, access_at(100)) == "token_is_id_token");
  BOOST_TEST(access_code(foreign, access_at(100, "https://api.example")) == "token_is_id_token");
}

BOOST_AUTO_TEST_CASE(a_typed_at_jwt_may_carry_auth_time_but_never_nonce_or_hashes) {
  // RFC 9068 2.2.1 lists auth_time among an access token's claims (Okta sends it): typed tokens keep it.
  json p = kinde::testing::access_token_payload(kIssuer, kClient, "", 100);
  p["auth_time"] = 90;
  BOOST_TEST(access_code(p, access_at(100), kAtJwtHeader) == "ok");
  BOOST_TEST(access_code(p, access_at(100), json{{"typ", "application/AT+JWT"}}) == "ok");
  BOOST_TEST(access_code(p, access_at(100), kJwtHeader) == "token_is_id_token");
  BOOST_TEST(access_code(p, access_at(100), json::object()) == "token_is_id_token");
  p["nonce"] = "n";
  BOOST_TEST(access_code(p, access_at(100), kAtJwtHeader) == "token_is_id_token");
}

BOOST_AUTO_TEST_CASE(an_api_audience_equal_to_the_client_id_is_not_mistaken_for_an_id_token) {
  // Some providers (Entra ID) give a token for the app's own API the client id as audience.
  json p = kinde::testing::access_token_payload(kIssuer, kClient, kClient, 100);
  BOOST_TEST(access_code(p, access_at(100, kClient)) == "ok");
  BOOST_TEST(access_code(p, access_at(100)) == "token_is_id_token");
}

BOOST_AUTO_TEST_CASE(the_cheaper_checks_come_first) {
  // iss and exp are checked before anything else: an expired foreign ID token says "expired".
  json foreign = kinde::testing::id_token_payload(kIssuer, "another-app", kNonce, 100);
  BOOST_TEST(access_code(foreign, access_at(100 + 3600 + 61)) == "token_expired");
  foreign["iss"] = "https://evil.example";
  BOOST_TEST(access_code(foreign, access_at(100)) == "token_bad_iss");
}

// ---- constant_time_equal ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(constant_time_equal_compares_content_and_length) {
  BOOST_TEST(constant_time_equal("", ""));
  BOOST_TEST(constant_time_equal("abc", "abc"));
  BOOST_TEST(!constant_time_equal("abc", "abd"));
  BOOST_TEST(!constant_time_equal("abc", "ab"));
  BOOST_TEST(!constant_time_equal("ab", "abc"));
  BOOST_TEST(!constant_time_equal("", "a"));
  BOOST_TEST(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  BOOST_TEST(!constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

BOOST_AUTO_TEST_SUITE_END()
