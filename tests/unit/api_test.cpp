// The protected JSON API with canned requests: /items/{item_id} as FastAPI 0.92 answers it (the id
// forms table was checked against Python 3.11's int()), 401 before validation, bearer tokens deciding
// over cookies, JSON 404/405, /api/me for users and machines, /openapi.json, /docs, and the home page's
// "Next steps" built from the claim helpers.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>

#include "fakes.hpp"
#include "kinde/claims.hpp"

using namespace kinde;
using namespace kinde::testing;
using nlohmann::json;

namespace {

constexpr const char* kMachineToken = "m2m-access-token-AAAA";
constexpr const char* kUserAccessToken = "user-access-token-BBBB";
constexpr const char* k422 =
    R"({"detail":[{"loc":["path","item_id"],"msg":"value is not a valid integer","type":"type_error.integer"}]})";


json alice_access() {
  return json::parse(R"({"iss":"https://idp.example","sub":"kp_alice","org_code":"org_123",
    "permissions":["read:items","write:items"],
    "roles":[{"id":"role_01","key":"admin","name":"Admin"}],
    "feature_flags":{"theme":{"t":"s","v":"pink"},"is_dark_mode":{"t":"b","v":true}}})");
}

json alice_id() {
  return json::parse(R"({"iss":"https://idp.example","sub":"kp_alice","given_name":"Alice","family_name":"Liddell",
    "email":"alice@example.com","org_codes":["org_123","org_456"]})");
}

json machine_access() {
  return json::parse(R"({"iss":"https://idp.example","sub":"m2m_client","azp":"m2m_client",
    "gty":["client_credentials"],"permissions":["read:items"],"feature_flags":{"rate":{"t":"i","v":100}}})");
}

// A TestApp with a machine token registered at the fake provider.
struct ApiApp : TestApp {
  ApiApp() { oidc.access_tokens[kMachineToken] = machine_access(); }

  // A signed-in session as the callback stores it (user, tokens, both claim sets); returns the Cookie header.
  std::string alice_cookie(const json& access = alice_access(), const json& id = alice_id()) {
    SignedIn rec;
    rec.user = {{"id", "kp_alice"}, {"given_name", "Alice"}, {"family_name", "Liddell"},
                {"email", "alice@example.com"}};
    rec.tokens.access_token = kUserAccessToken;
    rec.tokens.expires_at = clock.now() + 3600;
    rec.access_claims = access;
    rec.id_claims = id;
    return session_cookie_header(save_record(rec));
  }
};

RequestSpec call(const std::string& path, const std::string& query = "", const std::string& auth = "",
                const std::string& cookie = "", const std::string& method = "GET") {
  RequestSpec s;
  s.method = method;
  s.path = path;
  s.query = query;
  s.authorization = auth;
  s.cookie = cookie;
  return s;
}

std::string bearer(const std::string& token) { return "Bearer " + token; }

}  // namespace

BOOST_AUTO_TEST_SUITE(api)

BOOST_AUTO_TEST_CASE(items_answers_as_fastapi_with_a_machine_token) {
  ApiApp t;
  Response r = t.handle(call("/items/42", "", bearer(kMachineToken)));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("Content-Type") == "application/json");
  BOOST_TEST(r.body == R"({"item_id":42,"q":null})");
  BOOST_TEST(t.handle(call("/items/42", "q=hi", bearer(kMachineToken))).body == R"({"item_id":42,"q":"hi"})");
}

BOOST_AUTO_TEST_CASE(items_query_follows_starlette) {
  ApiApp t;
  struct Case { const char* query; const char* body; };
  const Case cases[] = {
      {"q=", R"({"item_id":1,"q":""})"},
      {"q", R"({"item_id":1,"q":""})"},
      {"q=a&q=b", R"({"item_id":1,"q":"b"})"},      // the last value wins
      {"q=a+b%21", R"({"item_id":1,"q":"a b!"})"},
      {"q=%C3%A9%22", "{\"item_id\":1,\"q\":\"\xC3\xA9\\\"\"}"},  // UTF-8 raw, quote escaped
      {"other=1", R"({"item_id":1,"q":null})"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("query " << c.query) {
      Response r = t.handle(call("/items/1", c.query, bearer(kMachineToken)));
      BOOST_TEST(r.status == 200);
      BOOST_TEST(r.body == c.body);
    }
  }
}

BOOST_AUTO_TEST_CASE(items_id_forms_match_fastapi) {
  // Expected answers of FastAPI 0.92 + pydantic 1.10 (Python's int() on the decoded path segment).
  struct Case { const char* segment; const char* item_id; };  // item_id null: 422
  const Case cases[] = {
      {"42", "42"},
      {"-3", "-3"},
      {"+5", "5"},
      {"007", "7"},
      {" 7", "7"},            // %207: a percent-encoded leading space
      {"7 ", "7"},
      {"\t7\n", "7"},
      {"-0", "0"},
      {"000", "0"},
      {"1_000", "1000"},
      {"0_0", "0"},
      {"123456789012345678901234567890", "123456789012345678901234567890"},  // Python ints have no limit
      {"\xEF\xBC\x93\xEF\xBC\x90", "30"},   // fullwidth digits
      {"\xD9\xA5", "5"},                    // Arabic-Indic five
      {"\xC2\xA0" "5", "5"},                // no-break space, then 5
      {"5\xE3\x80\x80", "5"},               // ideographic space after
      {"abc", nullptr},
      {"4.5", nullptr},
      {"0x1f", nullptr},
      {"1e3", nullptr},
      {"_1", nullptr},
      {"1_", nullptr},
      {"1__0", nullptr},
      {"+_1", nullptr},
      {"- 3", nullptr},
      {"+-3", nullptr},
      {"+", nullptr},
      {" ", nullptr},
      {"\x1c" "5", nullptr},                // str.isspace, but int() does not strip it
      {"\xEF\xBC\x8D" "3", nullptr},        // fullwidth minus is no sign
      {"3\xC3", nullptr},                   // invalid UTF-8
      {"%31", nullptr},                     // not decoded twice
      {"1,000", nullptr},
      {"Infinity", nullptr},
      {"true", nullptr},
  };
  ApiApp t;
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("segment [" << c.segment << "]") {
      Response r = t.handle(call(std::string("/items/") + c.segment, "", bearer(kMachineToken)));
      if (c.item_id) {
        BOOST_TEST(r.status == 200);
        BOOST_TEST(r.body == std::string("{\"item_id\":") + c.item_id + ",\"q\":null}");
      } else {
        BOOST_TEST(r.status == 422);
        BOOST_TEST(r.body == k422);
        BOOST_TEST(r.header("Content-Type") == "application/json");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(parse_python_int_limits_the_length_like_pydantic) {
  BOOST_TEST(parse_python_int(std::string(4300, '9')).has_value());
  BOOST_TEST(!parse_python_int(std::string(4301, '9')).has_value());
  // pydantic counts the whole string, blanks included.
  BOOST_TEST(!parse_python_int(" " + std::string(4300, '9')).has_value());
  BOOST_TEST(*parse_python_int("-0000012") == "-12");
}

BOOST_AUTO_TEST_CASE(unauthenticated_is_401_before_any_validation) {
  ApiApp t;
  for (const char* path : {"/items/42", "/items/abc", "/items/4.5", "/api/me"}) {
    BOOST_TEST_CONTEXT(path) {
      Response r = t.handle(call(path));
      BOOST_TEST(r.status == 401);
      BOOST_TEST(r.body == R"({"detail":"Not authenticated"})");
      BOOST_TEST(r.header("Content-Type") == "application/json");
      BOOST_TEST(r.header("WWW-Authenticate") == "Bearer");
    }
  }
  // A cookie naming no session is no better.
  std::string stale = t.session_cookie_header(SequenceRandom::token_of_call(999));
  BOOST_TEST(t.handle(call("/items/42", "", "", stale)).status == 401);
}

BOOST_AUTO_TEST_CASE(invalid_bearer_token_is_401_invalid_token_without_echoing_it) {
  ApiApp t;
  const std::string forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.forged-signature-part";
  for (const char* path : {"/items/42", "/items/abc", "/api/me"}) {
    BOOST_TEST_CONTEXT(path) {
      Response r = t.handle(call(path, "", bearer(forged)));
      BOOST_TEST(r.status == 401);
      BOOST_TEST(r.header("WWW-Authenticate") == "Bearer error=\"invalid_token\"");
      BOOST_TEST(r.header("Content-Type") == "application/json");
      BOOST_TEST(!contains(r.body, forged));
      BOOST_TEST(!contains(r.body, "forged-signature-part"));
      json body = json::parse(r.body);
      BOOST_TEST(body["detail"].is_string());
      BOOST_TEST(contains(body["detail"].get<std::string>(), "unknown test token"));  // says why
    }
  }
}

BOOST_AUTO_TEST_CASE(a_session_cookie_opens_the_api) {
  ApiApp t;
  std::string cookie = t.alice_cookie();
  Response r = t.handle(call("/items/5", "q=x", "", cookie));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == R"({"item_id":5,"q":"x"})");
  // With a session, validation still applies after authentication.
  BOOST_TEST(t.handle(call("/items/five", "", "", cookie)).body == k422);
  // A query that is not UTF-8 still gives valid JSON.
  Response latin1 = t.handle(call("/items/1", "q=caf%E9", "", cookie));
  BOOST_TEST(latin1.status == 200);
  BOOST_TEST(json::parse(latin1.body)["q"].is_string());
}

BOOST_AUTO_TEST_CASE(the_bearer_token_decides_over_a_session_cookie) {
  ApiApp t;
  std::string cookie = t.alice_cookie();
  // A bad bearer token with a good cookie: refused.
  Response bad = t.handle(call("/items/5", "", bearer("not-a-token"), cookie));
  BOOST_TEST(bad.status == 401);
  BOOST_TEST(bad.header("WWW-Authenticate") == "Bearer error=\"invalid_token\"");
  // A good bearer token with a cookie: the caller is the machine.
  Response me = t.handle(call("/api/me", "", bearer(kMachineToken), cookie));
  BOOST_TEST(me.status == 200);
  BOOST_TEST(json::parse(me.body)["type"] == "machine");
}

BOOST_AUTO_TEST_CASE(unknown_api_paths_are_json_404_even_without_auth) {
  ApiApp t;
  for (const char* path : {"/api/nothing", "/items/1/more", "/items/", "/items", "/api/me/extra", "/api/"}) {
    BOOST_TEST_CONTEXT(path) {
      for (const std::string& auth : {std::string(), bearer(kMachineToken)}) {
        Response r = t.handle(call(path, "", auth));
        BOOST_TEST(r.status == 404);
        BOOST_TEST(r.body == R"({"detail":"Not Found"})");
        BOOST_TEST(r.header("Content-Type") == "application/json");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_wrong_method_is_json_405) {
  ApiApp t;
  for (const char* method : {"POST", "HEAD", "PUT", "DELETE"}) {
    for (const char* path : {"/items/42", "/api/me"}) {
      BOOST_TEST_CONTEXT(method << " " << path) {
        Response r = t.handle(call(path, "", bearer(kMachineToken), "", method));
        BOOST_TEST(r.status == 405);
        BOOST_TEST(r.body == R"({"detail":"Method Not Allowed"})");
        BOOST_TEST(contains(r.header("Allow"), "GET"));
      }
    }
  }
  // Without credentials too: routing comes before authentication, as in FastAPI.
  BOOST_TEST(t.handle(call("/items/42", "", "", "", "POST")).status == 405);
}

BOOST_AUTO_TEST_CASE(me_for_a_session_lists_user_claims) {
  ApiApp t;
  Response r = t.handle(call("/api/me", "", "", t.alice_cookie()));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("Content-Type") == "application/json");
  BOOST_TEST(r.header("Cache-Control") == "no-store");
  json me = json::parse(r.body);
  BOOST_TEST(me["type"] == "user");
  BOOST_TEST(me["user"]["id"] == "kp_alice");
  BOOST_TEST(me["user"]["given_name"] == "Alice");
  BOOST_TEST(me["user"]["family_name"] == "Liddell");
  BOOST_TEST(me["user"]["email"] == "alice@example.com");
  BOOST_TEST(me["permissions"] == json::parse(R"(["read:items","write:items"])"));
  BOOST_TEST(me["org_code"] == "org_123");
  BOOST_TEST(me["org_codes"] == json::parse(R"(["org_123","org_456"])"));
  BOOST_TEST(me["roles"] == json::parse(R"([{"id":"role_01","key":"admin","name":"Admin"}])"));
  BOOST_TEST(me["feature_flags"] == json::parse(R"({"is_dark_mode":{"type":"boolean","value":true},
                                                     "theme":{"type":"string","value":"pink"}})"));
  BOOST_TEST(!me.contains("errors"));
  // No token ever leaves the server.
  BOOST_TEST(!contains(r.body, kUserAccessToken));
}

BOOST_AUTO_TEST_CASE(me_for_a_session_without_claims_is_empty_not_an_error) {
  ApiApp t;
  Response r = t.handle(call("/api/me", "", "", t.alice_cookie(json::object(), json{{"sub", "kp_alice"}})));
  BOOST_TEST(r.status == 200);
  json me = json::parse(r.body);
  BOOST_TEST(me["permissions"] == json::array());
  BOOST_TEST(me["org_code"].is_null());
  BOOST_TEST(me["org_codes"] == json::array());
  BOOST_TEST(me["roles"] == json::array());
  BOOST_TEST(me["feature_flags"] == json::object());
  BOOST_TEST(!me.contains("errors"));
}

BOOST_AUTO_TEST_CASE(me_reports_malformed_claims_and_still_answers) {
  ApiApp t;
  json access = alice_access();
  access["permissions"] = "read:items";
  Response r = t.handle(call("/api/me", "", "", t.alice_cookie(access)));
  BOOST_TEST(r.status == 200);
  json me = json::parse(r.body);
  BOOST_TEST(me["permissions"] == json::array());
  BOOST_TEST(me["errors"]["permissions"]["code"] == kClaimWrongType);
  BOOST_TEST(me["org_code"] == "org_123");
}

BOOST_AUTO_TEST_CASE(me_for_a_machine_token_has_subject_permissions_flags) {
  ApiApp t;
  Response r = t.handle(call("/api/me", "", bearer(kMachineToken)));
  BOOST_TEST(r.status == 200);
  json me = json::parse(r.body);
  BOOST_TEST(me["type"] == "machine");
  BOOST_TEST(me["sub"] == "m2m_client");
  BOOST_TEST(me["client_id"] == "m2m_client");
  BOOST_TEST(me["permissions"] == json::parse(R"(["read:items"])"));
  BOOST_TEST(me["feature_flags"] == json::parse(R"({"rate":{"type":"integer","value":100}})"));
  BOOST_TEST(!me.contains("user"));
  BOOST_TEST(!contains(r.body, kMachineToken));
}

BOOST_AUTO_TEST_CASE(me_reads_the_rfc9068_client_id_where_azp_is_absent) {
  ApiApp t;
  // A user's RFC 9068 access token (glewlwyd, LemonLDAP): the client in client_id, the user in sub, no azp.
  t.oidc.access_tokens["user.at.jwt"] = json::parse(
      R"({"iss":"https://idp.example","sub":"kp_alice","client_id":"client-123","scope":"openid"})");
  json me = json::parse(t.handle(call("/api/me", "", bearer("user.at.jwt"))).body);
  BOOST_TEST(me["sub"] == "kp_alice");
  BOOST_TEST(me["client_id"] == "client-123");
  // azp (Kinde) decides when both are present; a token naming neither falls back to its subject.
  t.oidc.access_tokens["both"] = json::parse(R"({"sub":"u","client_id":"c-rfc","azp":"c-azp"})");
  BOOST_TEST(json::parse(t.handle(call("/api/me", "", bearer("both"))).body)["client_id"] == "c-azp");
  t.oidc.access_tokens["neither"] = json::parse(R"({"sub":"m2m_only"})");
  BOOST_TEST(json::parse(t.handle(call("/api/me", "", bearer("neither"))).body)["client_id"] == "m2m_only");
}

BOOST_AUTO_TEST_CASE(openapi_describes_the_api_routes_and_security) {
  ApiApp t;
  Response r = t.handle(call("/openapi.json"));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("Content-Type") == "application/json");
  json doc = json::parse(r.body);
  BOOST_TEST(doc["openapi"].get<std::string>().rfind("3.", 0) == 0);
  const json& items = doc["paths"]["/items/{item_id}"]["get"];
  BOOST_TEST(items["parameters"][0] == json::parse(
      R"({"required":true,"schema":{"title":"Item Id","type":"integer"},"name":"item_id","in":"path"})"));
  BOOST_TEST(items["parameters"][1]["name"] == "q");
  BOOST_TEST(items["parameters"][1]["in"] == "query");
  BOOST_TEST(items["parameters"][1]["required"] == false);
  BOOST_TEST(items["responses"].contains("422"));
  BOOST_TEST(items["responses"].contains("401"));
  BOOST_TEST(doc["paths"]["/api/me"]["get"].contains("security"));
  const json& schemes = doc["components"]["securitySchemes"];
  BOOST_TEST(schemes["HTTPBearer"]["scheme"] == "bearer");
  BOOST_TEST(schemes["APIKeyCookie"]["in"] == "cookie");
  BOOST_TEST(schemes["APIKeyCookie"]["name"] == t.session_cookie_name());
  BOOST_TEST(schemes["APIKeyCookie"]["name"] == "__Host-kinde_fcgi_session");  // Secure, Path=/
  // Every $ref points at a schema that exists.
  std::function<void(const json&)> check_refs = [&](const json& j) {
    if (j.is_object()) {
      if (auto it = j.find("$ref"); it != j.end()) {
        std::string ref = *it;
        BOOST_TEST(ref.rfind("#/components/schemas/", 0) == 0);
        BOOST_TEST(doc["components"]["schemas"].contains(ref.substr(21)), ref);
      }
      for (const auto& v : j) check_refs(v);
    } else if (j.is_array()) {
      for (const auto& v : j) check_refs(v);
    }
  };
  check_refs(doc);
  BOOST_TEST(!doc.contains("servers"));
  // Open to everyone: no session needed to read the description.
  BOOST_TEST(r.cookies.empty());
}

BOOST_AUTO_TEST_CASE(openapi_under_a_prefix_names_the_server) {
  ApiApp t;
  RequestSpec s = call("/openapi.json");
  s.script_name = "/app";
  json doc = json::parse(t.handle(s).body);
  BOOST_TEST(doc["servers"] == json::parse(R"([{"url":"/app"}])"));
}

BOOST_AUTO_TEST_CASE(docs_page_loads_swagger_ui_without_inline_script) {
  ApiApp t;
  for (const char* path : {"/docs", "/docs/"}) {
    BOOST_TEST_CONTEXT(path) {
      RequestSpec s = call(path);
      s.script_name = "/app";
      Response r = t.handle(s);
      BOOST_TEST(r.status == 200);
      BOOST_TEST(contains(r.header("Content-Type"), "text/html"));
      BOOST_TEST(contains(r.body, "data-spec-url=\"/app/openapi.json\""));
      BOOST_TEST(contains(r.body, "<script src=\"/docs/swagger-ui-bundle.js\"></script>"));
      BOOST_TEST(contains(r.body, "<script src=\"/docs/swagger-init.js\"></script>"));
      // script-src 'self': every <script> must load a file.
      std::size_t pos = 0, scripts = 0;
      while ((pos = r.body.find("<script", pos)) != std::string::npos) {
        ++scripts;
        BOOST_TEST(r.body.compare(pos, 12, "<script src=") == 0);
        pos += 7;
      }
      BOOST_TEST(scripts == 2u);
      BOOST_TEST(contains(r.header("Content-Security-Policy"), "script-src 'self'"));
    }
  }
  // The prefix is escaped into the attribute.
  RequestSpec evil = call("/docs");
  evil.script_name = "/a\"><x";
  BOOST_TEST(!contains(t.handle(evil).body, "/a\"><x"));
}

BOOST_AUTO_TEST_CASE(home_next_steps_show_permissions_org_and_flags) {
  ApiApp t;
  Response r = t.handle(call("/", "", "", t.alice_cookie()));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "read:items"));
  BOOST_TEST(contains(r.body, "write:items"));
  BOOST_TEST(contains(r.body, "org_123"));
  BOOST_TEST(contains(r.body, "theme"));
  BOOST_TEST(contains(r.body, "pink"));
  BOOST_TEST(!contains(r.body, "No permissions granted yet."));
  BOOST_TEST(!contains(r.body, "No feature flags."));
}

BOOST_AUTO_TEST_CASE(home_next_steps_render_when_there_are_no_claims) {
  ApiApp t;
  Response r = t.handle(call("/", "", "", t.alice_cookie(json::object(), json{{"sub", "kp_alice"}})));
  BOOST_TEST(r.status == 200);
  BOOST_TEST(contains(r.body, "No permissions granted yet."));
  BOOST_TEST(contains(r.body, "Not signed in to an organisation."));
  BOOST_TEST(contains(r.body, "No feature flags."));
  BOOST_TEST(!contains(r.body, "org_123"));
}

BOOST_AUTO_TEST_SUITE_END()
