// The session record (session/record.hpp): today's on-disk JSON decodes into SignedIn and encodes back
// unchanged, so sessions stored before the typed record survive the upgrade.
#include <boost/test/unit_test.hpp>

#include <string>

#include "session/record.hpp"

using namespace kinde;
using json = nlohmann::json;

namespace {

// A record as the sign-in and refresh code wrote it before session/record.hpp (a refresh that failed
// left retry_at in the tokens). Written out literally: these keys are the on-disk format.
const char* const kStoredRecord = R"({
  "user": {"id": "kp_1", "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com",
           "picture": "", "name": "Ada Lovelace"},
  "tokens": {"access_token": "at.jwt.x", "id_token": "idt.jwt.y", "refresh_token": "rt-1",
             "expires_at": 1700003600, "retry_at": 1700000030},
  "id_claims": {"iss": "https://x.kinde.com", "sub": "kp_1", "aud": ["client"], "exp": 1700003600},
  "access_claims": {"permissions": ["read:items"], "org_code": "org_1"}
})";

}  // namespace

BOOST_AUTO_TEST_SUITE(record)

BOOST_AUTO_TEST_CASE(a_record_written_by_earlier_versions_decodes_and_encodes_to_the_same_json) {
  const json stored = json::parse(kStoredRecord);
  auto r = signed_in_from(stored);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->user.value("given_name", "") == "Ada");
  BOOST_TEST(r->tokens.access_token == "at.jwt.x");
  BOOST_TEST(r->tokens.id_token == "idt.jwt.y");
  BOOST_TEST(r->tokens.refresh_token == "rt-1");
  BOOST_TEST(r->tokens.expires_at == 1700003600);
  BOOST_REQUIRE(r->retry_at.has_value());
  BOOST_TEST(*r->retry_at == 1700000030);
  BOOST_TEST(r->id_claims.value("sub", "") == "kp_1");
  BOOST_TEST(r->access_claims.value("org_code", "") == "org_1");
  BOOST_TEST(record_to_json(*r) == stored);
}

BOOST_AUTO_TEST_CASE(decoding_by_move_gives_the_same_record) {
  json stored = json::parse(kStoredRecord);
  const json copy = stored;
  auto r = signed_in_from(std::move(stored));
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(record_to_json(*r) == copy);
}

BOOST_AUTO_TEST_CASE(a_record_without_retry_at_encodes_without_it) {
  json stored = json::parse(kStoredRecord);
  stored["tokens"].erase("retry_at");
  auto r = signed_in_from(stored);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(!r->retry_at.has_value());
  BOOST_TEST(record_to_json(*r) == stored);
}

BOOST_AUTO_TEST_CASE(absent_members_take_their_defaults) {
  auto r = signed_in_from(json{{"user", {{"id", "kp_1"}}}, {"tokens", {{"access_token", "at"}}}});
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(r->tokens.access_token == "at");
  BOOST_TEST(r->tokens.refresh_token == "");
  BOOST_TEST(r->tokens.expires_at == 0);
  BOOST_TEST(r->id_claims == json::object());
  BOOST_TEST(r->access_claims == json::object());
  BOOST_TEST(!r->retry_at.has_value());
}

BOOST_AUTO_TEST_CASE(data_without_a_user_is_not_signed_in) {
  BOOST_TEST(!signed_in_from(json::object()).has_value());
  BOOST_TEST(!signed_in_from(json{{"tokens", {{"access_token", "at"}}}}).has_value());
  BOOST_TEST(!signed_in_from(json::array()).has_value());
}

BOOST_AUTO_TEST_CASE(a_member_of_the_wrong_type_is_not_a_signed_in_record) {
  const json stored = json::parse(kStoredRecord);
  for (const char* ptr : {"/user", "/tokens", "/id_claims", "/access_claims", "/tokens/access_token",
                          "/tokens/refresh_token", "/tokens/id_token"}) {
    json bad = stored;
    bad[json::json_pointer(ptr)] = 42;
    BOOST_TEST_CONTEXT(ptr) { BOOST_TEST(!signed_in_from(bad).has_value()); }
  }
  for (const char* ptr : {"/tokens/expires_at", "/tokens/retry_at"}) {
    json bad = stored;
    bad[json::json_pointer(ptr)] = "soon";
    BOOST_TEST_CONTEXT(ptr) { BOOST_TEST(!signed_in_from(bad).has_value()); }
  }
}

BOOST_AUTO_TEST_CASE(adopting_a_partial_result_replaces_only_the_members_it_holds) {
  auto r = signed_in_from(json::parse(kStoredRecord));
  BOOST_REQUIRE(r.has_value());
  // A kept refresh result: new tokens (no retry_at: the refresh succeeded) and user; no claims.
  BOOST_REQUIRE(adopt_members(*r, json{{"tokens", {{"access_token", "at-new"}, {"refresh_token", "rt-2"}}},
                                       {"user", {{"id", "kp_1"}, {"given_name", "Augusta"}}}}));
  BOOST_TEST(r->tokens.access_token == "at-new");
  BOOST_TEST(r->tokens.refresh_token == "rt-2");
  BOOST_TEST(r->tokens.id_token == "");
  BOOST_TEST(!r->retry_at.has_value());
  BOOST_TEST(r->user.value("given_name", "") == "Augusta");
  BOOST_TEST(r->access_claims.value("org_code", "") == "org_1");
  BOOST_TEST(!adopt_members(*r, json{{"tokens", "x"}}));
  BOOST_TEST(r->tokens.access_token == "at-new");
}

BOOST_AUTO_TEST_SUITE_END()
