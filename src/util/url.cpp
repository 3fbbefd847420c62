#include "util/url.hpp"
#include "util/text.hpp"

#include <cctype>
#include <cstdint>

namespace kinde {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}


}  // namespace

std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string url_encode(std::string_view in) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size() * 3);
  for (unsigned char c : in) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::optional<Params> parse_query(std::string_view query) {
  Params out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (piece.empty()) continue;
    std::size_t eq = piece.find('=');
    auto name = percent_decode(piece.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : piece.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    if (name->find('\0') != std::string::npos || value->find('\0') != std::string::npos) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

std::string build_query(const Params& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += url_encode(k);
    out += '=';
    out += url_encode(v);
  }
  return out;
}

Params parse_cookie_header(std::string_view header, std::size_t max_cookies) {
  Params out;
  while (!header.empty() && out.size() < max_cookies) {
    std::size_t semi = header.find(';');
    std::string_view piece = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    std::size_t eq = piece.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string_view name = trim(piece.substr(0, eq));
    std::string_view value = trim(piece.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    out.emplace_back(std::string(name), std::string(value));
  }
  return out;
}

std::size_t count_param(const Params& params, std::string_view name) {
  std::size_t n = 0;
  for (const auto& p : params) n += p.first == name ? 1 : 0;
  return n;
}

std::optional<std::string> find_param(const Params& params, std::string_view name) {
  for (const auto& p : params)
    if (p.first == name) return p.second;
  return std::nullopt;
}


std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string safe_next_path(std::string_view target) {
  // Decide on the decoded form: "%2F%2Fevil" and "/%5Cevil" must fail like their plain forms.
  // Decode repeatedly (bounded) so double-encoding cannot smuggle a second slash either.
  std::string decoded(target);
  for (int round = 0; round < 3; ++round) {
    auto d = percent_decode(decoded, false);
    if (!d) return "/";
    if (*d == decoded) break;
    decoded = std::move(*d);
    if (round == 2) return "/";  // still changing after three rounds: refuse
  }
  if (decoded.empty() || decoded.size() > 2048) return "/";
  if (decoded[0] != '/') return "/";                                   // scheme, host or relative path
  if (decoded.size() > 1 && (decoded[1] == '/' || decoded[1] == '\\')) return "/";  // "//host", "/\host"
  for (unsigned char c : decoded) {
    if (c < 0x20 || c == 0x7f || c == '\\') return "/";               // browsers drop tab/CR/LF, map '\' to '/'
  }
  if (!is_valid_utf8(decoded)) return "/";
  // The original is what the browser gets back, so it must itself start with its '/' (found by
  // fuzzing: "%2Fitems" decodes to "/items" but would go out as a relative reference).
  if (target[0] != '/') return "/";
  // Keep the original (still-encoded) form when it passed, so query strings survive unchanged; but it
  // must itself contain no raw control characters or backslashes (checked via its decoded form above).
  return std::string(target);
}

std::optional<UrlOrigin> parse_url_origin(std::string_view url) {
  for (unsigned char c : url)
    if (c <= 0x20 || c >= 0x7f || c == '\\') return std::nullopt;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  UrlOrigin o;
  for (char c : url.substr(0, sep)) o.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (o.scheme != "http" && o.scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  std::string_view host = authority;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    for (char c : host.substr(1, host.size() - 2))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return std::nullopt;
    if (host.size() <= 2) return std::nullopt;
  } else {
    host = authority.substr(0, authority.find(':'));
    for (char c : host)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  std::string_view after = authority.substr(host.size());
  if (!after.empty()) {
    if (after[0] != ':' || after.size() == 1 || after.size() > 6) return std::nullopt;
    for (char c : after.substr(1))
      if (c < '0' || c > '9') return std::nullopt;
    o.port = std::string(after.substr(1));
  }
  for (char c : host) o.host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

std::string prefixed_cookie_name(std::string_view name, bool secure, std::string_view path) {
  if (!secure) return std::string(name);
  return (path == "/" ? "__Host-" : "__Secure-") + std::string(name);
}

std::string origin_of(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  auto slash = url.find('/', scheme + 3);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

}  // namespace kinde
