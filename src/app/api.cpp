// The FastAPI tutorial's routes: GET /items/{item_id}?q= and GET /api/me. Both are Access::api in the
// route table: the 401 comes from App::dispatch before any of this runs, so handlers assume an identity.
#include <array>

#include "app/app.hpp"
#include "kinde/claims.hpp"
#include "util/log.hpp"
#include "util/url.hpp"
#include "util/text.hpp"

namespace kinde {
namespace {

// Code points of the digit zero of every Unicode 14 decimal-digit (Nd) run of ten (Python 3.11's table;
// checked with unicodedata). Python's int() accepts any of these digits, so FastAPI does too.
constexpr std::array<char32_t, 66> kDigitZeros = {
    0x30,    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,   0xc66,
    0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,  0x1810,  0x1946,
    0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,  0xa8d0,  0xa900,  0xa9d0,
    0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0,
    0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60,
    0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0};

// The decimal value of a Unicode Nd character, or -1.
int unicode_decimal(char32_t c) {
  for (char32_t zero : kDigitZeros)
    if (c >= zero && c < zero + 10) return static_cast<int>(c - zero);
  return -1;
}

// Non-ASCII characters for which Python's str.isspace() is true (int() reads them as a blank).
bool unicode_space(char32_t c) {
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

// Starlette turns invalid UTF-8 into U+FFFD, which int() refuses: refusing it (decode_utf8) gives the same 422.

constexpr std::size_t kMaxIntChars = 4300;  // pydantic 1.10's max_str_int, on the whole string

Response not_an_integer() {
  return json_response(
      422, R"({"detail":[{"loc":["path","item_id"],"msg":"value is not a valid integer","type":"type_error.integer"}]})");
}

}  // namespace

std::optional<std::string> parse_python_int(std::string_view text) {
  std::u32string cps;
  if (!decode_utf8(text, cps) || cps.size() > kMaxIntChars) return std::nullopt;
  // CPython first maps non-ASCII blanks to ' ' and non-ASCII decimals to ASCII digits, then parses ASCII.
  std::string ascii;
  for (char32_t c : cps) {
    if (c < 0x80) {
      ascii += static_cast<char>(c);
    } else if (unicode_space(c)) {
      ascii += ' ';
    } else if (int d = unicode_decimal(c); d >= 0) {
      ascii += static_cast<char>('0' + d);
    } else {
      return std::nullopt;
    }
  }
  // Only the ASCII blanks of C's isspace are stripped (not \x1c-\x1f, which Python's str.isspace knows).
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  std::string_view s(ascii);
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  std::string digits;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      digits += c;
    } else if (c == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_' && s[i + 1] >= '0' && s[i + 1] <= '9') {
      continue;  // Python allows single underscores between digits: 1_000
    } else {
      return std::nullopt;
    }
  }
  std::size_t nz = digits.find_first_not_of('0');
  if (nz == std::string::npos) return std::string("0");  // "-0", "000" -> 0
  return (negative ? "-" : "") + digits.substr(nz);
}

Response handle_items(App&, Ctx& ctx) {
  // Path segments arrive percent-decoded in PATH_INFO from the web server.
  auto id = parse_python_int(ctx.params.at(0));
  if (!id) return not_an_integer();
  nlohmann::json q;  // null unless given
  // FastAPI (Starlette's QueryParams) takes the last of repeated values; "?q" alone is "".
  for (const auto& [k, v] : ctx.req.query)
    if (k == "q") q = v;
  // The id is written as text: Python ints have no size limit, and FastAPI echoes them exactly.
  // ensure_ascii off, as FastAPI's JSONResponse; invalid UTF-8 becomes U+FFFD as Starlette decodes it.
  return json_response(200, "{\"item_id\":" + *id + ",\"q\":" +
                                q.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "}");
}

namespace {

// /api/me's parts are independent: one malformed claim is reported in "errors" and the rest still answers.
struct MeErrors {
  nlohmann::json errors = nlohmann::json::object();
  void note(const char* part, const Error& e) {
    log_warn(std::string("/api/me: ") + part + ": " + e.code + ": " + e.detail);
    errors[part] = {{"code", e.code}, {"detail", e.detail}};
  }
};

// A machine (client_credentials) token: no ID token, no user; its subject is the client.
void describe_machine(const Identity& id, nlohmann::json& out) {
  out["type"] = "machine";
  out["sub"] = id.access_claims().value("sub", nlohmann::json());
  // The client: Kinde names it in azp, RFC 9068 2.2 in client_id (glewlwyd, LemonLDAP); only a token naming
  // neither falls back to sub (an M2M token's subject is its client), so a user's token never shows the user as one.
  out["client_id"] = out["sub"];
  for (const char* name : {"client_id", "azp"})
    if (auto it = id.access_claims().find(name); it != id.access_claims().end() && it->is_string()) out["client_id"] = *it;
}

// A signed-in user: the session's user record (ID token + profile, the ID token deciding when present) and orgs.
void describe_user(const Identity& id, const ClaimSource& claims, nlohmann::json& out, MeErrors& e) {
  out["type"] = "user";
  nlohmann::json user = user_view(id.user());
  if (auto details = get_user_details(claims)) {
    nlohmann::json d = to_json(*details);
    for (auto it = d.begin(); it != d.end(); ++it)
      if (!it->is_null()) user[it.key()] = *it;
  } else if (details.error().code != kNoIdToken) {
    e.note("user", details.error());
  }
  out["user"] = user;
  if (auto orgs = get_user_organizations(claims)) {
    out["org_codes"] = orgs->org_codes;
  } else {
    out["org_codes"] = nlohmann::json::array();
    if (orgs.error().code != kNoIdToken) e.note("org_codes", orgs.error());
  }
}

// What the access token grants, for either kind of caller: permissions, organisation, roles, feature flags.
void describe_grants(const ClaimSource& claims, nlohmann::json& out, MeErrors& e) {
  if (auto p = get_permissions(claims)) {
    out["permissions"] = p->permissions;
  } else {
    out["permissions"] = nlohmann::json::array();
    e.note("permissions", p.error());
  }
  if (auto o = get_organization(claims)) {
    out["org_code"] = to_json(*o)["org_code"];
  } else {
    out["org_code"] = nullptr;
    e.note("org_code", o.error());
  }
  if (auto r = get_roles(claims)) {
    out["roles"] = to_json(*r)["roles"];
  } else {
    out["roles"] = nlohmann::json::array();
    e.note("roles", r.error());
  }
  nlohmann::json flags = nlohmann::json::object();
  if (auto f = get_flags(claims)) {
    for (const auto& flag : *f) flags[flag.code] = {{"type", flag_type_name(flag.type)}, {"value", flag.value}};
  } else {
    e.note("feature_flags", f.error());
  }
  out["feature_flags"] = flags;
}

}  // namespace

Response handle_me(App&, Ctx& ctx) {
  const Identity& id = *ctx.identity;
  ClaimSource claims{id.access_claims(), id.id_claims()};
  nlohmann::json out;
  MeErrors e;
  if (id.from_bearer) {
    describe_machine(id, out);
  } else {
    describe_user(id, claims, out, e);
  }
  describe_grants(claims, out, e);
  if (!e.errors.empty()) out["errors"] = e.errors;
  Response r = json_response(200, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  r.set_header("Cache-Control", "no-store");
  return r;
}

}  // namespace kinde
