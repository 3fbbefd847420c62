#include "session/redis_url.hpp"

#include <utility>

#include "session/session.hpp"
#include "util/url.hpp"

namespace kinde {

namespace {

// "%xx" escapes in URL parts; false on a bad escape.
bool decode_part(std::string_view in, std::string& out) {
  auto d = kinde::percent_decode(in, false);
  if (!d) return false;
  out = std::move(*d);
  return true;
}

bool parse_int(std::string_view s, int lo, int hi, int& out) {
  if (s.empty() || s.size() > 6) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  out = static_cast<int>(v);
  return true;
}

Error bad_url(const std::string& why) {
  return make_error(kSessionStoreBadUrl, "KINDE_SESSION_STORE: " + why);
}

Result<RedisAddress> parse_unix_url(std::string_view rest) {
  // rest is what follows "unix:"; "//" + absolute path is the URL spelling of the same thing.
  if (rest.substr(0, 3) == "///") rest.remove_prefix(2);
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  RedisAddress a;
  if (rest.empty() || rest[0] != '/') return bad_url("unix: needs an absolute socket path, e.g. unix:/run/redis/redis.sock");
  if (!decode_part(rest, a.unix_path)) return bad_url("bad %-escape in the socket path");
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) return bad_url("unix: parameter without a value (use ?db=N&password=P)");
    std::string_view name = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (name == "db") {
      if (!parse_int(value, 0, 1000000, a.db)) return bad_url("db must be a database number");
    } else if (name == "password") {
      if (!decode_part(value, a.password)) return bad_url("bad %-escape in the password");
    } else if (name == "user") {
      if (!decode_part(value, a.user)) return bad_url("bad %-escape in the user");
    } else {
      return bad_url("unknown unix: parameter '" + std::string(name) + "' (known: db, password, user)");
    }
  }
  return a;
}

Result<RedisAddress> parse_tcp_url(std::string_view rest) {
  // rest follows "redis://": [[user]:password@]host[:port][/db]
  RedisAddress a;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = cred.find(':');
    std::string_view user = colon == std::string_view::npos ? std::string_view() : cred.substr(0, colon);
    std::string_view pass = colon == std::string_view::npos ? cred : cred.substr(colon + 1);
    if (!decode_part(user, a.user) || !decode_part(pass, a.password)) return bad_url("bad %-escape in the credentials");
  }
  std::string_view hostport = rest, db;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    db = rest.substr(slash + 1);
  }
  if (!db.empty() && !parse_int(db, 0, 1000000, a.db)) return bad_url("the path must be a database number, e.g. redis://127.0.0.1:6379/0");
  std::string_view port;
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return bad_url("unclosed [ in the host");
    a.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad_url("junk after the IPv6 host");
      port = after.substr(1);
    }
  } else {
    auto colon = hostport.rfind(':');
    a.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) port = hostport.substr(colon + 1);
  }
  if (a.host.empty()) return bad_url("no host in the Redis URL");
  if (a.host.find_first_of("?#/ ") != std::string::npos) return bad_url("bad host '" + a.host + "'");
  if (!port.empty() && !parse_int(port, 1, 65535, a.port)) return bad_url("bad port '" + std::string(port) + "'");
  return a;
}

// ---- hiredis handles ----------------------------------------------------------------------------

}  // namespace

Result<RedisAddress> parse_redis_url(std::string_view url) {
  if (url.rfind("rediss://", 0) == 0) {
    return make_error(kSessionStoreUnsupported,
                      "rediss:// needs hiredis with TLS; use a local stunnel or a unix socket");
  }
  if (url.rfind("redis://", 0) == 0) return parse_tcp_url(url.substr(8));
  if (url.rfind("unix:", 0) == 0) return parse_unix_url(url.substr(5));
  return bad_url("a Redis store is redis://[:password@]host:port[/db] or unix:/path/to/socket[?db=N&password=P]");
}

std::string redact_redis_url(std::string_view url) {
  std::string u(url);
  if (u.rfind("redis://", 0) == 0 || u.rfind("rediss://", 0) == 0) {
    const std::size_t start = u.find("://") + 3;
    const std::size_t at = u.rfind('@');
    if (at != std::string::npos && at > start) {
      const std::size_t colon = u.find(':', start);
      const std::size_t from = colon != std::string::npos && colon < at ? colon + 1 : start;
      u.replace(from, at - from, "***");
    }
    return u;
  }
  // unix:/path?...&password=secret&...
  std::size_t p = u.find("password=");
  while (p != std::string::npos) {
    if (p > 0 && (u[p - 1] == '?' || u[p - 1] == '&')) {
      const std::size_t end = u.find('&', p);
      u.replace(p + 9, (end == std::string::npos ? u.size() : end) - (p + 9), "***");
    }
    p = u.find("password=", p + 1);
  }
  return u;
}

}  // namespace kinde
