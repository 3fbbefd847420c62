// KINDE_SESSION_STORE's Redis URLs: parsing into an address, and redaction for logs.
#pragma once
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace kinde {

// Where a Redis server is and how to log in to it.
struct RedisAddress {
  std::string host;        // TCP host (IPv6 without brackets); empty for a unix socket
  int port = 6379;
  std::string unix_path;   // socket path; empty for TCP
  std::string user;        // Redis 6 ACL user; empty: AUTH with the password only
  std::string password;    // empty: no AUTH
  int db = 0;              // SELECT index
};

// Parses redis://[[user]:password@]host[:port][/db], unix:/path/to/socket[?db=N&password=P&user=U]
// (also unix:///path). User and password are percent-decoded. rediss:// is refused (Error
// "session_store_unsupported": this hiredis has no TLS); anything malformed is
// "session_store_bad_url" with the reason.
Result<RedisAddress> parse_redis_url(std::string_view url);

// The URL with any password replaced by "***" (for logs and --check-config output).
std::string redact_redis_url(std::string_view url);

}  // namespace kinde
