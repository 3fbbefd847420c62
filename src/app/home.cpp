// GET / : the signed-out view (Sign in / Sign up) or the signed-in view with the user's details.
#include <cctype>

#include "app/app.hpp"
#include "kinde/claims.hpp"

namespace kinde {
namespace {

// The first UTF-8 character of s (1-4 bytes), ASCII letters upper-cased.
std::string first_char(const std::string& s) {
  if (s.empty()) return {};
  unsigned char c = static_cast<unsigned char>(s[0]);
  std::size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
  if (len > s.size()) return {};
  if (len == 1) {
    // A continuation byte or 0xF8..0xFF cannot start a character: output nothing rather than
    // put invalid UTF-8 into the page.
    if (c < 0x20 || c == 0x7f || c >= 0x80) return {};
    return std::string(1, static_cast<char>(std::toupper(c)));
  }
  for (std::size_t i = 1; i < len; ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return {};
  return s.substr(0, len);
}

std::string trim_ws(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::string initials(const std::string& given, const std::string& family, const std::string& fallback) {
  // The Django tutorial crashes on a missing family name; we use what there is.
  std::string out = first_char(trim_ws(given)) + first_char(trim_ws(family));
  if (out.empty()) out = first_char(trim_ws(fallback));
  if (out.empty()) out = "?";
  return out;
}

nlohmann::json user_view(const nlohmann::json& user) {
  auto str = [&](const char* k) {
    auto it = user.find(k);
    return it != user.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string given = str("given_name"), family = str("family_name"), email = str("email");
  std::string full = trim_ws(given + " " + family);
  if (full.empty()) full = trim_ws(str("name"));
  if (full.empty()) full = email;
  if (full.empty()) full = str("id");  // never a blank "signed in as": the subject is all some providers give
  nlohmann::json v = {{"id", str("id")},   {"given_name", given}, {"family_name", family},
                      {"full_name", full}, {"email", email},      {"initials", initials(given, family, full)}};
  std::string picture = str("picture");
  // Only https pictures (or loopback http for the test provider) go into an <img>: CSP allows https: only.
  if (picture.rfind("https://", 0) == 0) v["picture"] = picture;
  return v;
}

Response handle_home(App& app, Ctx& ctx) {
  const Identity* who = ctx.identity && !ctx.identity->from_bearer ? &*ctx.identity : nullptr;
  Response r;
  // The signed-in page is a pure function of the session's record, its lapse state and the base path:
  // a repeat request with the same record (the store hands out the same decoded record for the same
  // stored bytes) reuses the page rendered for it.
  std::optional<std::string> cached;
  if (who) cached = app.home_pages().find(who->record, who->access_lapsed, ctx.req.base_path);
  if (cached) {
    r.status = 200;
    r.set_header("Content-Type", "text/html; charset=utf-8");
    r.body = std::move(*cached);
  } else {
    nlohmann::json c = nlohmann::json::object();
    if (who) {
      c["signed_in"] = true;
      c["user"] = user_view(who->user());
      ClaimSource claims{who->access_claims(), who->id_claims()};
      c["kinde"] = home_claims_view(claims);
    } else {
      c["signed_in"] = false;
    }
    r = app.page(ctx.req, 200, "index", std::move(c));
    if (who && r.status == 200) app.home_pages().put(who->record, who->access_lapsed, ctx.req.base_path, r.body);
  }
  // A protected page must never be served from a cache after sign-out.
  r.set_header("Cache-Control", "no-store");
  return r;
}

}  // namespace kinde
