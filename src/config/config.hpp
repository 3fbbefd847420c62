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
  std::string issuer;          // KINDE_ISSUER_URL (no trailing slash)
  std::string client_id;
  std::string client_secret;
  std::string callback_url;    // KINDE_CALLBACK_URL
  std::string logout_url;      // KINDE_LOGOUT_URL ("" = the app's home, built per request)
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
  std::string config_path;               // the file read ("" if none)
};

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

// True for http://127.0.0.1, ::1 or localhost (http allowed only there).
bool is_loopback_http(std::string_view url);

}  // namespace kinde
