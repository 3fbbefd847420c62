// Kinde's claim helpers: the SDK's meanings on tokens with each claim, without it, and with it of the
// wrong type; session tokens (access + ID) and bearer tokens (access only) alike.
#include <boost/test/unit_test.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "kinde/claims.hpp"

using namespace kinde;
using nlohmann::json;

namespace {

// Claims as Kinde issues them to a signed-in user of an organisation.
json full_access() {
  return json::parse(R"({
    "iss": "https://acme.kinde.com", "sub": "kp_1234", "aud": ["https://api.acme.example"],
    "org_code": "org_123",
    "permissions": ["read:items", "write:items"],
    "roles": [{"id": "role_01", "key": "admin", "name": "Admin"}, {"key": "member"}],
    "feature_flags": {
      "theme": {"t": "s", "v": "pink"},
      "is_dark_mode": {"t": "b", "v": true},
      "competitions_limit": {"t": "i", "v": 5}
    }
  })");
}

json full_id() {
  return json::parse(R"({
    "iss": "https://acme.kinde.com", "sub": "kp_1234", "given_name": "Alice", "family_name": "Liddell",
    "email": "alice@example.com", "picture": "https://img.example/a.png", "org_codes": ["org_123", "org_456"]
  })");
}

const json kEmpty = json::object();

// Runs a helper and returns its error code ("" when it succeeded).
template <class T>
std::string code_of(const Result<T>& r) {
  return r ? std::string() : r.error().code;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kinde_claims)

BOOST_AUTO_TEST_CASE(get_claim_reads_the_named_token_and_gives_null_when_absent) {
  json a = full_access(), i = full_id();
  ClaimSource c{a, i};
  auto org = get_claim(c, "org_code");
  BOOST_REQUIRE(org.ok());
  BOOST_TEST(org->name == "org_code");
  BOOST_TEST(org->value == "org_123");
  auto given = get_claim(c, "given_name", TokenKind::id);
  BOOST_REQUIRE(given.ok());
  BOOST_TEST(given->value == "Alice");
  // given_name is not in the access token: null, not an error.
  auto missing = get_claim(c, "given_name", TokenKind::access);
  BOOST_REQUIRE(missing.ok());
  BOOST_TEST(missing->value.is_null());
  // A bearer token has no ID token at all (null JSON): still null, no crash.
  json none;
  ClaimSource bearer{a, none};
  auto from_id = get_claim(bearer, "sub", TokenKind::id);
  BOOST_REQUIRE(from_id.ok());
  BOOST_TEST(from_id->value.is_null());
}

BOOST_AUTO_TEST_CASE(get_permission_says_whether_granted_with_the_org_code) {
  json a = full_access();
  ClaimSource c{a, kEmpty};
  auto yes = get_permission(c, "read:items");
  BOOST_REQUIRE(yes.ok());
  BOOST_TEST(yes->is_granted);
  BOOST_TEST(yes->org_code.value_or("") == "org_123");
  auto no = get_permission(c, "delete:items");
  BOOST_REQUIRE(no.ok());
  BOOST_TEST(!no->is_granted);
  // Exact match only: a prefix is not the permission.
  BOOST_TEST(!get_permission(c, "read")->is_granted);
  BOOST_TEST(to_json(*yes) == json::parse(R"({"org_code":"org_123","is_granted":true})"));
}

BOOST_AUTO_TEST_CASE(get_permissions_without_claims_is_empty_and_null_org) {
  ClaimSource c{kEmpty, kEmpty};
  auto p = get_permissions(c);
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->permissions.empty());
  BOOST_TEST(!p->org_code.has_value());
  BOOST_TEST(to_json(*p) == json::parse(R"({"org_code":null,"permissions":[]})"));
  BOOST_TEST(!get_permission(c, "read:items")->is_granted);
}

BOOST_AUTO_TEST_CASE(get_permissions_lists_them_in_token_order) {
  json a = full_access();
  auto p = get_permissions(ClaimSource{a, kEmpty});
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->permissions == (std::vector<std::string>{"read:items", "write:items"}));
  BOOST_TEST(p->org_code.value_or("") == "org_123");
}

BOOST_AUTO_TEST_CASE(permissions_of_the_wrong_type_are_an_error) {
  for (const char* bad : {R"({"permissions": "read:items"})", R"({"permissions": ["read:items", 7]})",
                          R"({"permissions": {"read:items": true}})", R"({"permissions": [], "org_code": 123})"}) {
    BOOST_TEST_CONTEXT(bad) {
      json a = json::parse(bad);
      ClaimSource c{a, kEmpty};
      BOOST_TEST(code_of(get_permissions(c)) == kClaimWrongType);
      BOOST_TEST(code_of(get_permission(c, "read:items")) == kClaimWrongType);
    }
  }
}

BOOST_AUTO_TEST_CASE(get_organization_gives_the_access_tokens_org_code) {
  json a = full_access();
  auto o = get_organization(ClaimSource{a, kEmpty});
  BOOST_REQUIRE(o.ok());
  BOOST_TEST(o->org_code.value_or("") == "org_123");
  auto none = get_organization(ClaimSource{kEmpty, kEmpty});
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(!none->org_code.has_value());
  BOOST_TEST(to_json(*none) == json::parse(R"({"org_code":null})"));
  json bad = {{"org_code", json::array({"org_123"})}};
  BOOST_TEST(code_of(get_organization(ClaimSource{bad, kEmpty})) == kClaimWrongType);
}

BOOST_AUTO_TEST_CASE(get_user_organizations_reads_the_id_token) {
  json a = full_access(), i = full_id();
  auto o = get_user_organizations(ClaimSource{a, i});
  BOOST_REQUIRE(o.ok());
  BOOST_TEST(o->org_codes == (std::vector<std::string>{"org_123", "org_456"}));
  BOOST_TEST(to_json(*o) == json::parse(R"({"org_codes":["org_123","org_456"]})"));
  // An ID token without org_codes: none.
  json no_orgs = {{"sub", "kp_1"}};
  auto empty = get_user_organizations(ClaimSource{a, no_orgs});
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->org_codes.empty());
  // org_codes in the access token does not count: the SDK reads the ID token.
  json access_orgs = {{"org_codes", json::array({"org_9"})}};
  BOOST_TEST(get_user_organizations(ClaimSource{access_orgs, no_orgs})->org_codes.empty());
}

BOOST_AUTO_TEST_CASE(get_user_organizations_without_an_id_token_is_no_id_token) {
  json a = full_access(), null_id;
  BOOST_TEST(code_of(get_user_organizations(ClaimSource{a, kEmpty})) == kNoIdToken);
  BOOST_TEST(code_of(get_user_organizations(ClaimSource{a, null_id})) == kNoIdToken);
  json bad = {{"sub", "kp_1"}, {"org_codes", "org_123"}};
  BOOST_TEST(code_of(get_user_organizations(ClaimSource{a, bad})) == kClaimWrongType);
}

BOOST_AUTO_TEST_CASE(get_user_details_maps_sub_to_id_and_leaves_missing_names_null) {
  json a = full_access(), i = full_id();
  auto d = get_user_details(ClaimSource{a, i});
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(to_json(*d) == json::parse(R"({"id":"kp_1234","given_name":"Alice","family_name":"Liddell",
      "email":"alice@example.com","picture":"https://img.example/a.png"})"));
  // Plato has no family name (the Django tutorial crashed on this): null, not an error.
  json plato = {{"sub", "kp_9"}, {"given_name", "Plato"}};
  auto p = get_user_details(ClaimSource{a, plato});
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->id == "kp_9");
  BOOST_TEST(p->given_name.value_or("") == "Plato");
  BOOST_TEST(!p->family_name.has_value());
  BOOST_TEST(!p->email.has_value());
  BOOST_TEST(!p->picture.has_value());
}

BOOST_AUTO_TEST_CASE(get_user_details_refuses_a_bearer_token_and_wrong_types) {
  json a = full_access();
  BOOST_TEST(code_of(get_user_details(ClaimSource{a, kEmpty})) == kNoIdToken);
  json no_sub = {{"given_name", "Alice"}};
  BOOST_TEST(code_of(get_user_details(ClaimSource{a, no_sub})) == kClaimWrongType);
  json num_sub = {{"sub", 42}};
  BOOST_TEST(code_of(get_user_details(ClaimSource{a, num_sub})) == kClaimWrongType);
  json bad_email = {{"sub", "kp_1"}, {"email", json::array({"a@b"})}};
  BOOST_TEST(code_of(get_user_details(ClaimSource{a, bad_email})) == kClaimWrongType);
}

BOOST_AUTO_TEST_CASE(get_roles_lists_id_key_name) {
  json a = full_access();
  auto r = get_roles(ClaimSource{a, kEmpty});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(to_json(*r) == json::parse(R"({"org_code":"org_123","roles":[{"id":"role_01","key":"admin","name":"Admin"},
      {"id":"","key":"member","name":""}]})"));
  auto none = get_roles(ClaimSource{kEmpty, kEmpty});
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->roles.empty());
}

BOOST_AUTO_TEST_CASE(roles_of_the_wrong_shape_are_an_error) {
  for (const char* bad : {R"({"roles": "admin"})", R"({"roles": ["admin"]})", R"({"roles": [{"id": "r1"}]})",
                          R"({"roles": [{"key": 5}]})", R"({"roles": [{"key": "admin", "name": ["x"]}]})"}) {
    BOOST_TEST_CONTEXT(bad) {
      json a = json::parse(bad);
      BOOST_TEST(code_of(get_roles(ClaimSource{a, kEmpty})) == kClaimWrongType);
    }
  }
}

BOOST_AUTO_TEST_CASE(get_flag_returns_the_tokens_flag_with_its_type) {
  json a = full_access();
  ClaimSource c{a, kEmpty};
  auto theme = get_flag(c, "theme");
  BOOST_REQUIRE(theme.ok());
  BOOST_TEST(to_json(*theme) == json::parse(R"({"code":"theme","value":"pink","is_default":false,"type":"string"})"));
  // A default is ignored when the flag exists.
  auto dark = get_flag(c, "is_dark_mode", json(false));
  BOOST_REQUIRE(dark.ok());
  BOOST_TEST(dark->value == true);
  BOOST_TEST(!dark->is_default);
  BOOST_TEST(flag_type_name(dark->type) == std::string("boolean"));
  auto limit = get_flag(c, "competitions_limit", std::nullopt, FlagType::integer);
  BOOST_REQUIRE(limit.ok());
  BOOST_TEST(limit->value == 5);
}

BOOST_AUTO_TEST_CASE(get_flag_missing_gives_the_default_or_an_error) {
  json a = full_access();
  ClaimSource c{a, kEmpty};
  auto d = get_flag(c, "no_such_flag", json("blue"));
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(to_json(*d) == json::parse(R"({"code":"no_such_flag","value":"blue","is_default":true,"type":"string"})"));
  auto err = get_flag(c, "no_such_flag");
  BOOST_TEST(code_of(err) == kFlagNotFound);
  BOOST_TEST(err.error().detail.find("no_such_flag") != std::string::npos);
  // No feature_flags claim at all (a token without flags): the same answers.
  BOOST_TEST(code_of(get_flag(ClaimSource{kEmpty, kEmpty}, "theme")) == kFlagNotFound);
  BOOST_TEST(get_flag(ClaimSource{kEmpty, kEmpty}, "theme", json(7))->value == 7);
}

BOOST_AUTO_TEST_CASE(get_flag_of_another_type_is_a_type_mismatch) {
  json a = full_access();
  ClaimSource c{a, kEmpty};
  auto e = get_flag(c, "theme", std::nullopt, FlagType::boolean);
  BOOST_TEST(code_of(e) == kFlagTypeMismatch);
  BOOST_TEST(e.error().detail.find("string") != std::string::npos);
  // The flag exists, so its type decides even when a default of the asked type is given.
  BOOST_TEST(code_of(get_flag(c, "theme", json(true), FlagType::boolean)) == kFlagTypeMismatch);
  // A missing flag with a default of another type than asked.
  BOOST_TEST(code_of(get_flag(c, "absent", json("x"), FlagType::integer)) == kFlagTypeMismatch);
  // A default that is no flag value at all.
  BOOST_TEST(code_of(get_flag(c, "absent", json::array())) == kFlagTypeMismatch);
  BOOST_TEST(code_of(get_flag(c, "absent", json(1.5))) == kFlagTypeMismatch);
}

BOOST_AUTO_TEST_CASE(malformed_flags_are_errors_not_guesses) {
  for (const char* bad : {R"({"f": {"t": "b", "v": "yes"}})", R"({"f": {"t": "i", "v": 1.5}})",
                          R"({"f": {"t": "x", "v": 1}})", R"({"f": {"v": 1}})", R"({"f": {"t": "s"}})",
                          R"({"f": true})", R"({"f": {"t": "i", "v": 18446744073709551615}})"}) {
    BOOST_TEST_CONTEXT(bad) {
      json a = {{"feature_flags", json::parse(bad)}};
      BOOST_TEST(code_of(get_flag(ClaimSource{a, kEmpty}, "f")) == kFlagMalformed);
    }
  }
  json not_object = {{"feature_flags", json::array()}};
  BOOST_TEST(code_of(get_flag(ClaimSource{not_object, kEmpty}, "f", json(1))) == kClaimWrongType);
  BOOST_TEST(code_of(get_flags(ClaimSource{not_object, kEmpty})) == kClaimWrongType);
}

BOOST_AUTO_TEST_CASE(typed_flag_helpers_return_values) {
  json a = full_access();
  ClaimSource c{a, kEmpty};
  auto b = get_boolean_flag(c, "is_dark_mode");
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(*b == true);
  auto s = get_string_flag(c, "theme");
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(*s == "pink");
  auto i = get_integer_flag(c, "competitions_limit");
  BOOST_REQUIRE(i.ok());
  BOOST_TEST(*i == 5);
  // Defaults for missing flags.
  BOOST_TEST(*get_boolean_flag(c, "absent", false) == false);
  BOOST_TEST(*get_string_flag(c, "absent", std::string("dflt")) == "dflt");
  BOOST_TEST(*get_integer_flag(c, "absent", -3) == -3);
  // Wrong types and missing without default.
  BOOST_TEST(code_of(get_boolean_flag(c, "theme")) == kFlagTypeMismatch);
  BOOST_TEST(code_of(get_string_flag(c, "competitions_limit", std::string("x"))) == kFlagTypeMismatch);
  BOOST_TEST(code_of(get_integer_flag(c, "is_dark_mode", 1)) == kFlagTypeMismatch);
  BOOST_TEST(code_of(get_integer_flag(c, "absent")) == kFlagNotFound);
}

BOOST_AUTO_TEST_CASE(get_flags_lists_well_formed_flags_by_code) {
  json a = full_access();
  a["feature_flags"]["broken"] = {{"t", "b"}, {"v", "nope"}};
  auto flags = get_flags(ClaimSource{a, kEmpty});
  BOOST_REQUIRE(flags.ok());
  std::vector<std::string> codes;
  for (const auto& f : *flags) codes.push_back(f.code);
  BOOST_TEST(codes == (std::vector<std::string>{"competitions_limit", "is_dark_mode", "theme"}));
  BOOST_TEST(get_flags(ClaimSource{kEmpty, kEmpty})->empty());
}

BOOST_AUTO_TEST_CASE(flag_type_names_parse_both_ways) {
  BOOST_TEST((parse_flag_type("b") == FlagType::boolean));
  BOOST_TEST((parse_flag_type("integer") == FlagType::integer));
  BOOST_TEST((parse_flag_type("s") == FlagType::string));
  BOOST_TEST(!parse_flag_type("bool").has_value());
  BOOST_TEST(!parse_flag_type("").has_value());
}

BOOST_AUTO_TEST_CASE(helpers_work_on_a_machine_token_alone) {
  // A client_credentials token: permissions and flags, no ID token, no org.
  json m = json::parse(R"({"sub": "m2m_client", "gty": ["client_credentials"], "permissions": ["read:items"],
                          "feature_flags": {"rate": {"t": "i", "v": 100}}})");
  json none;
  ClaimSource c{m, none};
  BOOST_TEST(get_permission(c, "read:items")->is_granted);
  BOOST_TEST(!get_organization(c)->org_code.has_value());
  BOOST_TEST(*get_integer_flag(c, "rate") == 100);
  BOOST_TEST(code_of(get_user_details(c)) == kNoIdToken);
  BOOST_TEST(get_roles(c)->roles.empty());
}

BOOST_AUTO_TEST_CASE(home_view_shows_claims_and_renders_none_gracefully) {
  json a = full_access(), i = full_id();
  json v = home_claims_view(ClaimSource{a, i});
  BOOST_TEST(v["has_permissions"] == true);
  BOOST_TEST(v["permissions"] == json::parse(R"(["read:items","write:items"])"));
  BOOST_TEST(v["has_org"] == true);
  BOOST_TEST(v["org_code"] == "org_123");
  BOOST_TEST(v["org_codes"] == json::parse(R"(["org_123","org_456"])"));
  BOOST_TEST(v["has_roles"] == true);
  BOOST_TEST(v["roles"][1]["name"] == "member");  // a role without a name shows its key
  BOOST_TEST(v["has_flags"] == true);
  BOOST_TEST(v["flags"][0] == json::parse(R"({"code":"competitions_limit","value":"5","type":"integer"})"));
  BOOST_TEST(v["flags"][2] == json::parse(R"({"code":"theme","value":"pink","type":"string"})"));

  json empty = home_claims_view(ClaimSource{kEmpty, kEmpty});
  BOOST_TEST(empty["has_permissions"] == false);
  BOOST_TEST(empty["has_org"] == false);
  BOOST_TEST(empty["has_roles"] == false);
  BOOST_TEST(empty["has_flags"] == false);
  BOOST_TEST(empty["org_codes"] == json::array());

  // Claims of the wrong shape show as none instead of failing the page.
  json bad = json::parse(R"({"permissions": "x", "org_code": 1, "roles": 2, "feature_flags": []})");
  json shown = home_claims_view(ClaimSource{bad, kEmpty});
  BOOST_TEST(shown["has_permissions"] == false);
  BOOST_TEST(shown["has_org"] == false);
  BOOST_TEST(shown["has_roles"] == false);
  BOOST_TEST(shown["has_flags"] == false);
}

BOOST_AUTO_TEST_SUITE_END()
