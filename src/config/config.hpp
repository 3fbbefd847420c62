// Config: the dotenv-style file at $KINDE_CONFIG (default etc/kinde.conf), environment overriding it.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kConfigInvalid = "config_invalid";  // error code
inline constexpr const char* kConfigMissing = "config_missing";  // error code
inline constexpr const char* kConfigSyntax = "config_syntax";  // error code

// The session store kind, decided once from KINDE_SESSION_STORE.
enum class StoreKind { file, redis };

struct Config {
  std::string issuer;          // KINDE_ISSUER_URL, exactly as given (a trailing slash is kept)
  std::string client_id;
  std::string client_secret;
  std::string callback_url;    // KINDE_CALLBACK_URL
  std::string logout_url;      // KINDE_LOGOUT_URL ("" = the app's home, built per request)
  // KINDE_END_SESSION_ENDPOINT: the provider's sign-out URL when discovery lists no end_session_endpoint
  // ("" = Kinde's <issuer>/logout on a *.kinde.com issuer, else no provider sign-out).
  std::string end_session_endpoint;
  std::string scopes = "openid profile email offline";
  std::string audience;
  std::string org_code;
  // KINDE_TRUSTED_HOSTS: hosts other than the issuer's that discovery may name for the endpoints the app calls
  // or sends the browser to (lower case, exact names).
  std::vector<std::string> trusted_hosts;
  std::string token_auth = "client_secret_basic";  // KINDE_TOKEN_AUTH: or client_secret_post
  std::string session_dir;
  std::string session_store = "file";  // KINDE_SESSION_STORE as written (the Redis URL)
  StoreKind store_kind = StoreKind::file;
  std::string session_secret;
  // KINDE_SESSION_KEY_FILE: the key material when session_secret is unset (default: session.key
  // beside the config file; "" without a config file, and then the secret or this key is required).
  std::string session_key_file;
  std::int64_t idle_timeout = 3600;
  std::int64_t max_age = 86400;
  bool cookie_secure = true;
  std::string cookie_name = "kinde_fcgi_session";  // KINDE_COOKIE_NAME, before any __Host-/__Secure- prefix
  std::string cookie_path;     // KINDE_COOKIE_PATH: "" = the app's base path ("/" at the site root)
  std::string template_dir;
  std::string log_level = "info";
  long http_connect_timeout_ms = 3000;   // KINDE_HTTP_CONNECT_TIMEOUT_MS
  long http_timeout_ms = 10000;          // KINDE_HTTP_TIMEOUT_MS
  std::int64_t refresh_retry_seconds = 30;  // KINDE_REFRESH_RETRY_SECONDS: pause after a failed refresh
  std::string redis_prefix = "kinde:";   // KINDE_REDIS_PREFIX: first part of every Redis key the app writes
  std::string config_path;               // the file read ("" if none)
};

// Provider calls a refresh may make while it holds a session's lock (discovery, token, JWKS): the lock
// is sized for this many worst-case calls.
inline constexpr long kProviderCallsUnderLock = 3;
// Time the lock holder keeps for itself after its provider calls (the store's write and release).
inline constexpr long kSessionLockMarginMs = 2000;
// Longest lock the app accepts: requests waiting for it would otherwise outlast any web server's
// FastCGI timeout.
inline constexpr long kMaxSessionLockMs = 120000;

// The deadline (ms) for all provider calls made under a session's lock: kProviderCallsUnderLock x
// (connect timeout + total timeout).
long provider_calls_budget_ms(const Config& c);
// The session lock's lifetime (ms): provider_calls_budget_ms + kSessionLockMarginMs, so a holder's
// provider calls always end before its lock can lapse. load_config refuses timeouts that make it
// longer than kMaxSessionLockMs.
long session_lock_ttl_ms(const Config& c);

// Parses dotenv text: KEY=value, `export KEY=value`, '#' comments (whole line, or after whitespace in
// an unquoted value), single quotes (literal), double quotes (\n \" \\ escapes). Errors name the line.
Result<std::map<std::string, std::string>> parse_dotenv(std::string_view text);

// Variables used: the file's values, overridden by env (which returns nullopt for unset names).
using EnvGetter = std::function<std::optional<std::string>(const std::string&)>;

// A configuration key: its name and the other spellings it is read under (first wins).
struct ConfigKey {
  std::string name;
  std::vector<std::string> aliases;
};
// Every key load_config reads, in the order it reads them.
const std::vector<ConfigKey>& config_keys();

// Loads and validates. Every problem found is listed (one message each, in plain words); the Error's
// detail joins them with newlines. Paths that are relative are resolved against the config file's dir.
Result<Config> load_config(const std::string& path, bool path_was_explicit, const EnvGetter& env);

// The config path to use: $KINDE_CONFIG or etc/kinde.conf relative to the binary's project dir.
std::string default_config_path(const EnvGetter& env, const std::string& argv0);

// The family of sign-in cookie names (kinde_fcgi_auth_<tag>); KINDE_COOKIE_NAME may not start with it.
inline constexpr const char* kSignInCookieFamily = "kinde_fcgi_auth_";

// The issuer without trailing slashes, to build URLs under it ("<base>/.well-known/openid-configuration").
std::string issuer_base(const std::string& issuer);

// True for http://127.0.0.1, ::1 or localhost (http allowed only there).
bool is_loopback_http(std::string_view url);

}  // namespace kinde
