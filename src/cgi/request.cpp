#include "cgi/request.hpp"
#include "util/text.hpp"

#include <cgicc/CgiEnvironment.h>
#include <cgicc/CgiInput.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace kinde {
namespace {

// cgicc's seam: it asks this object for variables and the body. We hide an oversize
// CONTENT_LENGTH from it so it never allocates or reads more than kMaxBodyBytes.
class LookupInput : public cgicc::CgiInput {
 public:
  LookupInput(const EnvLookup& env, const BodyReader& body, bool hide_length)
      : env_(env), body_(body), hide_length_(hide_length) {}
  std::size_t read(char* data, std::size_t length) override {
    std::size_t got = 0;
    while (got < length) {
      std::size_t n = body_(data + got, length - got);
      if (n == 0) break;
      got += n;
    }
    return got;
  }
  std::string getenv(const char* name) override {
    if (hide_length_ && std::string_view(name) == "CONTENT_LENGTH") return "0";
    auto v = env_(name);
    return v ? *v : std::string();
  }

 private:
  const EnvLookup& env_;
  const BodyReader& body_;
  bool hide_length_;
};

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool parse_length(const std::string& s, std::size_t& out) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = static_cast<std::size_t>(std::strtoull(s.c_str(), nullptr, 10));
  return true;
}

}  // namespace

std::optional<std::string> Request::cookie(std::string_view name) const { return find_param(cookies, name); }

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::optional<std::string_view> Request::bearer_token() const {
  auto it = headers.find("authorization");
  if (it == headers.end()) return std::nullopt;
  std::string_view v = it->second;
  constexpr std::string_view kScheme = "bearer";
  if (v.size() < kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) return std::nullopt;
  v.remove_prefix(kScheme.size());
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  if (!v.empty() && !is_space(v.front())) return std::nullopt;  // "Bearerx": another scheme
  while (!v.empty() && is_space(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_space(v.back())) v.remove_suffix(1);
  return v;
}

bool Request::wants_json() const {
  if (path_info.rfind("/api/", 0) == 0 || path_info.rfind("/items", 0) == 0) return true;
  if (bearer_token()) return true;
  std::string accept = header("accept");
  return accept.find("application/json") != std::string::npos && accept.find("text/html") == std::string::npos;
}

namespace {

std::string env_or_empty(const EnvLookup& env, const char* name) {
  auto v = env(name);
  return v ? *v : std::string();
}

// Method, paths, query and body through cgicc; on a short body read, the same fields from the
// environment and a 400. cgicc reads a body only for POST, and for any other method gives back the
// variables as they are: those requests (nearly all of them) take them straight from the environment,
// without cgicc's copy of some 25 variables and its cookie parsing.
void read_cgi(const EnvLookup& env, const BodyReader& body, bool skip_body, Request& r) {
  auto get = [&](const char* n) { return env_or_empty(env, n); };
  std::string method = get("REQUEST_METHOD");
  if (upper(method) != "POST") {
    r.method = upper(std::move(method));
    r.script_name = get("SCRIPT_NAME");
    r.path_info = get("PATH_INFO");
    r.query_string = get("QUERY_STRING");
    r.remote_addr = get("REMOTE_ADDR");
    r.host = get("HTTP_HOST");
    r.https = upper(get("HTTPS")) == "ON";  // as cgicc decides it (case-insensitive "on")
    r.content_type = get("CONTENT_TYPE");
    return;
  }
  LookupInput input(env, body, skip_body);
  try {
    cgicc::CgiEnvironment cgi(&input);
    r.method = upper(cgi.getRequestMethod());
    r.script_name = cgi.getScriptName();
    r.path_info = cgi.getPathInfo();
    r.query_string = cgi.getQueryString();
    r.remote_addr = cgi.getRemoteAddr();
    r.host = get("HTTP_HOST");
    r.https = cgi.usingHTTPS();
    r.content_type = cgi.getContentType();
    r.body = cgi.getPostData();
  } catch (const std::exception& e) {
    // cgicc throws on a short body read ("I/O error"): a truncated upload is the client's problem.
    r.bad = {400, std::string("unreadable request: ") + e.what()};
    r.method = upper(get("REQUEST_METHOD"));
    // Still the request's own route and path: the 400 is logged for it, and /auth (nginx's
    // auth_request, whose body nginx does not pass on) decides without the body.
    r.script_name = get("SCRIPT_NAME");
    r.path_info = get("PATH_INFO");
    r.query_string = get("QUERY_STRING");
    r.remote_addr = get("REMOTE_ADDR");
  }
}

// Defaults for an empty method and path, and the base path links use.
void settle_paths(const EnvLookup& env, Request& r) {
  if (r.method.empty()) r.method = "GET";
  if (r.path_info.empty()) r.path_info = "/";
  // lighttpd at the site root with fix-root-scriptname may give SCRIPT_NAME "/" — treat as empty.
  if (r.script_name == "/") r.script_name.clear();
  r.request_uri = env_or_empty(env, "REQUEST_URI");
  r.base_path = r.script_name;
  // Shared hosting: "RewriteRule ^(.*)$ kinde.fcgi/$1" makes SCRIPT_NAME ".../kinde.fcgi" while the
  // browser asked for ".../login". Links then use the folder, as the browser sees it.
  if ((ends_with(r.script_name, ".fcgi") || ends_with(r.script_name, ".cgi")) && !r.request_uri.empty() &&
      r.request_uri.compare(0, r.script_name.size(), r.script_name) != 0) {
    auto slash = r.script_name.rfind('/');
    r.base_path = slash == std::string::npos ? std::string() : r.script_name.substr(0, slash);
  }
}

// The server's variables the authorizer reads, and the request headers the app reads.
void copy_server_vars_and_headers(const EnvLookup& env, Request& r) {
  r.fcgi_role = env_or_empty(env, "FCGI_ROLE");
  for (const char* var : {"KINDE_REQUIRE_PERMISSION", "KINDE_REQUIRE_ORG", "KINDE_REQUIRE_FLAG", "REDIRECT_STATUS",
                          "REDIRECT_KINDE_REQUIRE_PERMISSION", "REDIRECT_KINDE_REQUIRE_ORG", "REDIRECT_KINDE_REQUIRE_FLAG"}) {
    if (auto v = env(var)) r.server_vars.emplace_back(var, *v);
  }
  static const std::pair<const char*, const char*> kHeaders[] = {
      {"HTTP_AUTHORIZATION", "authorization"}, {"HTTP_ACCEPT", "accept"},
      {"HTTP_ORIGIN", "origin"},               {"HTTP_REFERER", "referer"},
      {"HTTP_USER_AGENT", "user-agent"},       {"HTTP_X_REQUESTED_WITH", "x-requested-with"},
      {"HTTP_SEC_FETCH_SITE", "sec-fetch-site"}, {"HTTP_SEC_FETCH_MODE", "sec-fetch-mode"},
  };
  for (const auto& [var, name] : kHeaders) {
    if (auto v = env(var)) r.headers[name] = *v;
  }
}

// Query, form body and cookies; a malformed query or form is a 400 (the first problem wins).
void parse_parameters(const EnvLookup& env, Request& r) {
  if (auto q = parse_query(r.query_string)) {
    r.query = std::move(*q);
  } else if (!r.bad) {
    r.bad = {400, "malformed query string"};
  }
  if (r.method == "POST" && !r.body.empty()) {
    // Media types are case-insensitive (RFC 9110 8.3.1) and may carry parameters and spaces.
    std::string ct(trim(std::string_view(r.content_type).substr(0, r.content_type.find(';'))));
    for (auto& ch : ct) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (ct == "application/x-www-form-urlencoded") {
      if (auto f = parse_query(r.body)) r.form = std::move(*f);
      else if (!r.bad) r.bad = {400, "malformed form body"};
    }
  }
  std::string cookie_header = env_or_empty(env, "HTTP_COOKIE");
  if (cookie_header.size() <= kMaxCookieHeader) r.cookies = parse_cookie_header(cookie_header);
}

}  // namespace

Request build_request(const EnvLookup& env, const BodyReader& body) {
  Request r;
  std::size_t length = 0;
  std::string length_text = env_or_empty(env, "CONTENT_LENGTH");
  bool has_length = parse_length(length_text, length);
  bool too_big = has_length && length > kMaxBodyBytes;
  if (!length_text.empty() && !has_length) r.bad = {400, "Content-Length is not a number"};
  if (too_big) r.bad = {413, "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes"};
  read_cgi(env, body, too_big || !has_length, r);
  settle_paths(env, r);
  copy_server_vars_and_headers(env, r);
  parse_parameters(env, r);
  return r;
}

Request build_request_from_text(std::string_view text) {
  std::map<std::string, std::string> vars;
  std::string body;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == "--") {
      body = std::string(text);
      break;
    }
    if (line.empty() || line[0] == '#') continue;
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    vars[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  if (!body.empty() && !vars.count("CONTENT_LENGTH")) vars["CONTENT_LENGTH"] = std::to_string(body.size());
  return build_request_from_vars(vars, body);
}

Request build_request_from_vars(const std::map<std::string, std::string>& vars, const std::string& body) {
  std::size_t pos = 0;
  EnvLookup env = [&](const char* n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  BodyReader reader = [&](char* buf, std::size_t n) {
    std::size_t k = std::min(n, body.size() - pos);
    std::copy_n(body.data() + pos, k, buf);
    pos += k;
    return k;
  };
  return build_request(env, reader);
}

}  // namespace kinde
