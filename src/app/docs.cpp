// GET /openapi.json (the API described as FastAPI 0.92 describes the tutorial app, plus the two ways
// to authenticate) and GET /docs (Swagger UI from the static files in htdocs/docs/).
#include "app/app.hpp"
#include "util/url.hpp"

namespace kinde {
namespace {

nlohmann::json json_content(nlohmann::json schema) {
  return {{"application/json", {{"schema", std::move(schema)}}}};
}

nlohmann::json ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }

// The responses every protected route shares: 401 from the route table, before the handler.
void add_auth_responses(nlohmann::json& responses) {
  responses["401"] = {{"description", "Not authenticated: no session and no bearer token, or the bearer token is "
                                      "invalid (then with WWW-Authenticate: Bearer error=\"invalid_token\")"},
                      {"content", json_content(ref("HTTPError"))}};
}

}  // namespace

nlohmann::json openapi_document(const std::string& script_name, const std::string& cookie_name) {
  nlohmann::json security = nlohmann::json::array({{{"HTTPBearer", nlohmann::json::array()}},
                                                   {{"APIKeyCookie", nlohmann::json::array()}}});

  nlohmann::json items_responses = {
      {"200", {{"description", "Successful Response"}, {"content", json_content(ref("Item"))}}},
      {"422", {{"description", "Validation Error"}, {"content", json_content(ref("HTTPValidationError"))}}}};
  add_auth_responses(items_responses);
  nlohmann::json items = {
      {"summary", "Read Item"},
      {"operationId", "read_item_items__item_id__get"},
      {"parameters",
       {{{"required", true}, {"schema", {{"title", "Item Id"}, {"type", "integer"}}}, {"name", "item_id"}, {"in", "path"}},
        {{"required", false}, {"schema", {{"title", "Q"}, {"type", "string"}}}, {"name", "q"}, {"in", "query"}}}},
      {"responses", items_responses},
      {"security", security}};

  nlohmann::json me_responses = {
      {"200", {{"description", "The caller: a signed-in user or a machine client"}, {"content", json_content(ref("Me"))}}}};
  add_auth_responses(me_responses);
  nlohmann::json me = {{"summary", "Read Me"},
                       {"description", "The signed-in user's details, permissions, organisation(s), roles and "
                                       "feature flags; for a machine token its subject, permissions and flags."},
                       {"operationId", "read_me_api_me_get"},
                       {"responses", me_responses},
                       {"security", security}};

  nlohmann::json string_list = {{"type", "array"}, {"items", {{"type", "string"}}}};
  nlohmann::json schemas = {
      {"Item",
       {{"title", "Item"},
        {"type", "object"},
        {"required", {"item_id", "q"}},
        {"properties",
         {{"item_id", {{"title", "Item Id"}, {"type", "integer"}}},
          {"q", {{"title", "Q"}, {"type", "string"}, {"nullable", true}}}}}}},
      {"Me",
       {{"title", "Me"},
        {"type", "object"},
        {"required", {"type", "permissions", "org_code", "roles", "feature_flags"}},
        {"properties",
         {{"type", {{"type", "string"}, {"enum", {"user", "machine"}}}},
          {"sub", {{"type", "string"}, {"description", "machine tokens: the token's subject"}}},
          {"client_id", {{"type", "string"}, {"description", "machine tokens: the client (azp)"}}},
          {"user",
           {{"type", "object"},
            {"description", "users only"},
            {"properties",
             {{"id", {{"type", "string"}}},
              {"given_name", {{"type", "string"}, {"nullable", true}}},
              {"family_name", {{"type", "string"}, {"nullable", true}}},
              {"email", {{"type", "string"}, {"nullable", true}}},
              {"picture", {{"type", "string"}, {"nullable", true}}},
              {"full_name", {{"type", "string"}}},
              {"initials", {{"type", "string"}}}}}}},
          {"org_codes", string_list},
          {"permissions", string_list},
          {"org_code", {{"type", "string"}, {"nullable", true}}},
          {"roles",
           {{"type", "array"},
            {"items",
             {{"type", "object"},
              {"properties", {{"id", {{"type", "string"}}}, {"key", {{"type", "string"}}}, {"name", {{"type", "string"}}}}}}}}},
          {"feature_flags",
           {{"type", "object"},
            {"additionalProperties",
             {{"type", "object"},
              {"properties",
               {{"type", {{"type", "string"}, {"enum", {"boolean", "string", "integer"}}}},
                {"value", nlohmann::json::object()}}}}}}},
          {"errors", {{"type", "object"}, {"description", "claims of the wrong shape, by part"}}}}}}},
      {"HTTPError",
       {{"title", "HTTPError"},
        {"type", "object"},
        {"required", {"detail"}},
        {"properties", {{"detail", {{"title", "Detail"}, {"type", "string"}}}}}}},
      {"HTTPValidationError",
       {{"title", "HTTPValidationError"},
        {"type", "object"},
        {"properties",
         {{"detail", {{"title", "Detail"}, {"type", "array"}, {"items", ref("ValidationError")}}}}}}},
      {"ValidationError",
       {{"title", "ValidationError"},
        {"required", {"loc", "msg", "type"}},
        {"type", "object"},
        {"properties",
         {{"loc",
           {{"title", "Location"},
            {"type", "array"},
            {"items", {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}}}}}}}},
          {"msg", {{"title", "Message"}, {"type", "string"}}},
          {"type", {{"title", "Error Type"}, {"type", "string"}}}}}}}};

  nlohmann::json doc = {
      {"openapi", "3.0.2"},
      {"info",
       {{"title", "kinde-fcgi"},
        {"version", "0.1.0"},
        {"description", "Sign in with Kinde: the protected JSON API. Call it with the browser's session cookie, "
                        "or with `Authorization: Bearer <access token>` (Kinde machine-to-machine apps)."}}},
      {"paths", {{"/items/{item_id}", {{"get", items}}}, {"/api/me", {{"get", me}}}}},
      {"components",
       {{"schemas", schemas},
        {"securitySchemes",
         {{"HTTPBearer",
           {{"type", "http"},
            {"scheme", "bearer"},
            {"bearerFormat", "JWT"},
            {"description", "An access token from the provider (e.g. a client_credentials grant)"}}},
          {"APIKeyCookie",
           {{"type", "apiKey"},
            {"in", "cookie"},
            {"name", cookie_name},
            {"description", "The session cookie set by signing in at /login"}}}}}}}};
  // Like FastAPI's root_path: under a prefix the paths above are relative to it.
  if (!script_name.empty()) doc["servers"] = nlohmann::json::array({{{"url", script_name}}});
  return doc;
}

Response handle_openapi(App& app, Ctx& ctx) {
  Response r = json_response(200, openapi_document(ctx.req.script_name, app.session_cookie_name(ctx.req)).dump());
  // The description changes only with a new binary or config: a short public cache is fine.
  r.set_header("Cache-Control", "public, max-age=300");
  return r;
}

Response handle_docs(App& app, Ctx& ctx) {
  // Swagger UI's files are static (htdocs/docs/, served by the web server at the site root). The spec URL
  // depends on the app's prefix, so it goes into a data attribute that the external init script reads:
  // the Content-Security-Policy (script-src 'self') forbids inline script.
  std::string spec = html_escape(app.url(ctx.req, "/openapi.json"));
  Response r;
  r.set_header("Content-Type", "text/html; charset=utf-8");
  r.set_header("Cache-Control", "public, max-age=300");
  r.body = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<title>kinde-fcgi - API docs</title>\n"
           "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\n</head>\n<body>\n"
           "<div id=\"swagger-ui\" data-spec-url=\"" + spec + "\"></div>\n"
           "<noscript><p>The API description is at <a href=\"" + spec + "\">" + spec + "</a>.</p></noscript>\n"
           "<script src=\"/docs/swagger-ui-bundle.js\"></script>\n"
           "<script src=\"/docs/swagger-init.js\"></script>\n</body>\n</html>\n";
  return r;
}

}  // namespace kinde
