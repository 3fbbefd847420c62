// Request: the value a handler sees, built through cgicc from FastCGI params, the CGI environment,
// or a canned environment in tests.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/url.hpp"

namespace kinde {

constexpr std::size_t kMaxBodyBytes = 64 * 1024;     // form posts are tiny; anything bigger is refused
constexpr std::size_t kMaxCookieHeader = 16 * 1024;  // a larger Cookie header is ignored (no session)

struct Request {
  std::string method;        // upper case
  std::string script_name;   // "" at the site root, "/app", "/app/kinde.fcgi" behind a rewrite
  std::string path_info;     // "/" when empty
  std::string base_path;     // prefix for the app's own URLs: script_name, or its folder when an
                             // .htaccess rewrite hid ".../kinde.fcgi" from the browser
  std::string request_uri;   // REQUEST_URI as sent (path + query)
  std::string query_string;  // raw
  std::string remote_addr;
  std::string host;          // HTTP_HOST
  bool https = false;
  std::string content_type;
  std::string body;
  Params query;    // decoded query parameters in order (duplicates kept)
  Params form;     // decoded urlencoded POST body
  Params cookies;  // cookie header pairs in order
  std::map<std::string, std::string> headers;  // lower-case names: authorization, accept, ...
  std::string fcgi_role;  // "RESPONDER", "AUTHORIZER" (FCGI_ROLE) or "" under CGI
  // Server-set variables the Authorizer role reads (never from client headers: those are HTTP_*):
  // KINDE_REQUIRE_* per protected location, and REDIRECT_STATUS / REDIRECT_KINDE_REQUIRE_* when
  // Apache runs the app as a 401 ErrorDocument. See src/app/authorizer.cpp.
  Params server_vars;
  // Set when the request is malformed (bad escape, oversize body...): the app answers 400/413.
  std::optional<std::pair<int, std::string>> bad;

  // First value of a cookie, or nullopt.
  std::optional<std::string> cookie(std::string_view name) const;
  // Header value (lower-case name) or "".
  std::string header(const std::string& lower_name) const;
  // The credentials of an `Authorization: Bearer ...` header (RFC 6750 2.1), the one parser every caller uses.
  // nullopt: no Authorization header, or another scheme (Basic, "Bearerx"). The scheme name is matched
  // case-insensitively (RFC 9110 11.1); one or more spaces or tabs may follow it, trailing ones are dropped.
  // What remains is returned as is, even "" ("Bearer", "Bearer   ") or text with inner spaces: the caller
  // refuses those as invalid tokens (401 invalid_token) rather than fall back to the session cookie.
  std::optional<std::string_view> bearer_token() const;
  // True when the client prefers JSON (API path, Accept: application/json, or a Bearer header).
  bool wants_json() const;
};

// Looks up one CGI variable; returns nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;
// Reads up to n body bytes into buf; returns how many were read.
using BodyReader = std::function<std::size_t(char*, std::size_t)>;

// Builds a Request through cgicc::CgiEnvironment from the given variables and body stream.
// Never throws on hostile input: problems are recorded in Request::bad.
Request build_request(const EnvLookup& env, const BodyReader& body);

// Builds a Request from a map of CGI variables and a body held in memory (tests, tools).
Request build_request_from_vars(const std::map<std::string, std::string>& vars, const std::string& body);

// Parses a canned environment file (one NAME=value per line; "#" comments; a line "--" then the
// raw body follows) into a Request: used by the tests and the benchmark driver.
Request build_request_from_text(std::string_view text);

}  // namespace kinde
