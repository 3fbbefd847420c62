// Response: status, headers, cookies and body, written in CGI form ("Status: ..." + headers + body).
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kinde {

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> cookies;  // Set-Cookie values
  std::string body;

  // Replaces (or adds) a header. CR and LF in values are dropped: no header injection.
  void set_header(std::string_view name, std::string_view value);
  // Adds a header even when one of the same name exists (Variable-* in the Authorizer role).
  void add_header(std::string_view name, std::string_view value);
  // Header value or "".
  std::string header(std::string_view name) const;
};

// The reason phrase for a status ("Not Found").
const char* status_reason(int status);
// Serializes the response in CGI form; HEAD requests get headers only.
std::string serialize_cgi(const Response& r, bool head_only = false);

// A 302/303 redirect to location.
Response redirect_response(std::string_view location, int status = 302);
// A JSON response.
Response json_response(int status, std::string body);

}  // namespace kinde
