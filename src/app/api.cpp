// The FastAPI tutorial's routes: GET /items/{item_id}?q= and GET /api/me.
#include "app/app.hpp"
#include "kinde/claims.hpp"
#include "util/url.hpp"

namespace kinde {

// Python's int() on a path segment, as FastAPI 0.92 (pydantic 1) applies it: surrounding
// whitespace, one sign, digits with single underscores between them. Returns the canonical
// decimal text (arbitrary size, as Python's int), or nullopt for anything else.
std::optional<std::string> parse_python_int(std::string_view s) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 4300) return std::nullopt;  // pydantic's limit on digit strings
  std::string digits;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      digits += c;
    } else if (c == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_' && s[i + 1] >= '0' && s[i + 1] <= '9') {
      continue;
    } else {
      return std::nullopt;
    }
  }
  std::size_t nz = digits.find_first_not_of('0');
  if (nz == std::string::npos) return std::string("0");
  return (negative ? "-" : "") + digits.substr(nz);
}

Response handle_items(App&, Ctx& ctx) {
  // Path segments arrive percent-decoded in PATH_INFO from the web server.
  auto id = parse_python_int(ctx.params.at(0));
  if (!id) {
    return json_response(
        422,
        R"({"detail":[{"loc":["path","item_id"],"msg":"value is not a valid integer","type":"type_error.integer"}]})");
  }
  std::string q = "null";
  // FastAPI takes the last of repeated query values.
  for (const auto& [k, v] : ctx.req.query)
    if (k == "q") q = nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return json_response(200, "{\"item_id\":" + *id + ",\"q\":" + q + "}");
}

Response handle_me(App&, Ctx& ctx) {
  const Identity& id = *ctx.identity;
  nlohmann::json out;
  ClaimSource claims{id.access_claims, id.id_claims};
  nlohmann::json k = home_claims_view(claims);
  if (id.from_bearer) {
    out = {{"type", "machine"}, {"sub", id.access_claims.value("sub", "")}};
  } else {
    out = {{"type", "user"}, {"user", user_view(id.user)}};
  }
  out["permissions"] = k["permissions"];
  out["org_code"] = k["org_code"];
  out["org_codes"] = k["org_codes"];
  out["feature_flags"] = id.access_claims.value("feature_flags", nlohmann::json::object());
  return json_response(200, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace kinde
