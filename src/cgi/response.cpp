#include "cgi/response.hpp"

#include <strings.h>

namespace kinde {
namespace {

std::string clean(std::string_view v) {
  // Headers are almost always clean already: one scan, one copy. (A byte loop: find_first_of with a
  // set calls memchr once per byte of the value.)
  bool dirty = false;
  for (char c : v) dirty |= c == '\r' || c == '\n' || c == '\0';
  if (!dirty) return std::string(v);
  std::string out;
  out.reserve(v.size());
  for (char c : v)
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  return out;
}

}  // namespace

void Response::set_header(std::string_view name, std::string_view value) {
  for (auto& h : headers) {
    if (h.first.size() == name.size() && strncasecmp(h.first.c_str(), name.data(), name.size()) == 0) {
      h.second = clean(value);
      return;
    }
  }
  headers.emplace_back(clean(name), clean(value));
}

void Response::add_header(std::string_view name, std::string_view value) {
  headers.emplace_back(clean(name), clean(value));
}

std::string Response::header(std::string_view name) const {
  for (const auto& h : headers)
    if (h.first.size() == name.size() && strncasecmp(h.first.c_str(), name.data(), name.size()) == 0) return h.second;
  return {};
}

const char* status_reason(int s) {
  switch (s) {
    case 200: return "OK";
    case 204: return "No Content";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

std::string serialize_cgi(const Response& r, bool head_only) {
  std::string out;
  out.reserve(256 + r.body.size());
  out += "Status: ";
  out += std::to_string(r.status);
  out += ' ';
  out += status_reason(r.status);
  out += "\r\n";
  for (const auto& [k, v] : r.headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  for (const auto& c : r.cookies) {
    out += "Set-Cookie: ";
    out += clean(c);
    out += "\r\n";
  }
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

Response redirect_response(std::string_view location, int status) {
  Response r;
  r.status = status;
  r.set_header("Location", location);
  r.set_header("Content-Type", "text/plain; charset=utf-8");
  r.set_header("Cache-Control", "no-store");
  return r;
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.set_header("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

}  // namespace kinde
