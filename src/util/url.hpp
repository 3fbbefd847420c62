// URL helpers: strict percent-decoding, query/form parsing, encoding, cookie header parsing.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kinde {

using Params = std::vector<std::pair<std::string, std::string>>;

// Percent-decodes (and '+' as space when plus_is_space). nullopt on a bad escape ("%zz", "%4").
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);
// Encodes everything except RFC 3986 unreserved characters.
std::string url_encode(std::string_view in);
// Parses "a=1&b=2" (application/x-www-form-urlencoded); nullopt on a bad escape or NUL byte.
std::optional<Params> parse_query(std::string_view query);
// Builds "a=1&b=2" with url_encode on names and values.
std::string build_query(const Params& params);
// Parses a Cookie header into name/value pairs in order (no decoding; quotes stripped). Malformed
// pieces are skipped; at most max_cookies pairs are returned.
Params parse_cookie_header(std::string_view header, std::size_t max_cookies = 200);
// The name a cookie is set and read under: "__Host-" + name when Secure with Path "/", "__Secure-" +
// name when Secure with a narrower Path, name itself otherwise (RFC 6265bis 4.1.3: browsers then
// refuse such a cookie from plain http or a sibling subdomain, so none can be planted).
std::string prefixed_cookie_name(std::string_view name, bool secure, std::string_view path);
// Number of times name occurs in params.
std::size_t count_param(const Params& params, std::string_view name);
// First value of name, or nullopt.
std::optional<std::string> find_param(const Params& params, std::string_view name);
// HTML-escapes & < > " ' (for the few places that build HTML outside templates).
std::string html_escape(std::string_view s);

// The "next" filter: returns target if it is a same-site relative path, else "/". Decides on the
// decoded form; allows one leading '/' followed by a character that is neither '/' nor '\', and no
// control characters or backslashes anywhere (browsers treat '\' as '/', drop tab and newline).
std::string safe_next_path(std::string_view target);

// The parts of an absolute http(s) URL that decide where a request goes (RFC 3986 3.1, 3.2).
struct UrlOrigin {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // lower case; an IPv6 literal keeps its brackets ("[::1]")
  std::string port;    // digits as written, "" when absent
};
// Parses "scheme://host[:port][/path][?query][#fragment]" strictly: scheme http or https (any case), a host of
// letters, digits, '-' and '.' (or a bracketed IPv6 literal), an optional all-digit port. nullopt for anything
// else, including userinfo ("https://a@b"), percent-escapes or backslashes in the authority, and any control
// character, space or backslash in the whole URL: a URL read two ways could send a request elsewhere.
std::optional<UrlOrigin> parse_url_origin(std::string_view url);

// "https://host:port" of an absolute URL (up to the first '/' after the scheme); "" without "://".
std::string origin_of(const std::string& url);

}  // namespace kinde
