#include "config/config.hpp"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "util/log.hpp"
#include "util/url.hpp"
#include "util/text.hpp"

namespace kinde {
namespace {

bool valid_key(std::string_view k) {
  if (k.empty()) return false;
  for (char c : k)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return !(k[0] >= '0' && k[0] <= '9');
}


std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return base_dir + "/" + p;
}

bool parse_bool(const std::string& v, bool& out) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") { out = true; return true; }
  if (v == "false" || v == "0" || v == "no" || v == "off") { out = false; return true; }
  return false;
}

bool parse_seconds(const std::string& v, std::int64_t& out) {
  if (v.empty() || v.size() > 12) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  out = std::stoll(v);
  return true;
}

}  // namespace

std::string issuer_base(const std::string& issuer) {
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

bool is_loopback_http(std::string_view url) {
  for (std::string_view host : {"http://127.0.0.1", "http://localhost", "http://[::1]"}) {
    if (url.substr(0, host.size()) == host) {
      std::string_view rest = url.substr(host.size());
      // A port must be all digits up to the path: "http://localhost:80@evil.example" names evil.example.
      if (!rest.empty() && rest[0] == ':') {
        std::size_t i = 1;
        while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
        if (i == 1) return false;
        rest = rest.substr(i);
      }
      if (rest.empty() || rest[0] == '/') return true;
    }
  }
  return false;
}

Result<std::map<std::string, std::string>> parse_dotenv(std::string_view text) {
  std::map<std::string, std::string> out;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return make_error(kConfigSyntax, "line " + std::to_string(line_no) + ": expected KEY=value");
    std::string_view key = trim(line.substr(0, eq));
    if (!valid_key(key))
      return make_error(kConfigSyntax, "line " + std::to_string(line_no) + ": '" + std::string(key) +
                                             "' is not a valid key name");
    std::string_view raw = trim(line.substr(eq + 1));
    std::string value;
    if (!raw.empty() && (raw[0] == '"' || raw[0] == '\'')) {
      char q = raw[0];
      std::size_t i = 1;
      bool closed = false;
      for (; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == q) { closed = true; break; }
        if (q == '"' && c == '\\' && i + 1 < raw.size()) {
          char n = raw[++i];
          value += n == 'n' ? '\n' : n == 't' ? '\t' : n;
        } else {
          value += c;
        }
      }
      // Multi-line quoted values are not supported: say so rather than guess.
      if (!closed)
        return make_error(kConfigSyntax, "line " + std::to_string(line_no) + ": unterminated quote in " +
                                               std::string(key));
      std::string_view rest = trim(raw.substr(i + 1));
      if (!rest.empty() && rest[0] != '#')
        return make_error(kConfigSyntax, "line " + std::to_string(line_no) + ": text after closing quote in " +
                                               std::string(key));
    } else {
      std::size_t hash = std::string_view::npos;
      for (std::size_t i = 1; i < raw.size(); ++i)
        if (raw[i] == '#' && (raw[i - 1] == ' ' || raw[i - 1] == '\t')) { hash = i; break; }
      value = std::string(trim(raw.substr(0, hash)));
    }
    out[std::string(key)] = std::move(value);
  }
  return out;
}

std::string default_config_path(const EnvGetter& env, const std::string& argv0) {
  if (auto p = env("KINDE_CONFIG"); p && !p->empty()) return *p;
  // Binary lives in <project>/build/kinde.fcgi: look for <project>/etc/kinde.conf.
  std::string bin_dir = dir_of(argv0);
  std::string candidate = bin_dir + "/../etc/kinde.conf";
  if (::access(candidate.c_str(), F_OK) == 0) return candidate;
  return "etc/kinde.conf";
}

namespace {

// What a key's parser sees: the config being filled, the directory relative paths resolve against,
// and the list of problems (one plain-words message each).
struct Load {
  Config& c;
  std::string base;
  std::vector<std::string>& problems;
  void bad(std::string message) { problems.push_back(std::move(message)); }
};

bool starts_with_ignoring_case(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

// Kept exactly as given: tokens and discovery must name this very string (OpenID Connect Discovery 4.3);
// a trailing slash is dropped only to build URLs under it (issuer_base).
void set_issuer(Load& l, const std::string& v) {
  l.c.issuer = v;
  if (l.c.issuer.rfind("https://", 0) != 0 && !is_loopback_http(l.c.issuer))
    l.bad("KINDE_ISSUER_URL must start with https:// (http only for 127.0.0.1/localhost), got '" + l.c.issuer + "'");
}

void set_end_session_endpoint(Load& l, const std::string& v) {
  l.c.end_session_endpoint = v;
  if (v.rfind("https://", 0) != 0 && !is_loopback_http(v))
    l.bad("KINDE_END_SESSION_ENDPOINT must start with https:// (http only for 127.0.0.1/localhost), got '" + v + "'");
}

// Part of every key name: printable, no spaces or glob characters (collect_expired's SCAN MATCH).
void set_redis_prefix(Load& l, const std::string& v) {
  bool ok = v.size() <= 64;
  for (char ch : v) ok = ok && ch > 0x20 && ch < 0x7f && std::string_view("*?[]\\").find(ch) == std::string_view::npos;
  if (ok) l.c.redis_prefix = v;
  else l.bad("KINDE_REDIS_PREFIX must be up to 64 printable characters without spaces or * ? [ ] \\, got '" + v + "'");
}

void set_callback(Load& l, const std::string& v) {
  l.c.callback_url = v;
  if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0)
    l.bad("KINDE_CALLBACK_URL must be an absolute http(s) URL, got '" + v + "'");
}

// Host names only (no scheme, port or path), separated by spaces and/or commas.
void set_trusted_hosts(Load& l, const std::string& v) {
  std::string cur;
  for (std::size_t i = 0; i <= v.size(); ++i) {
    char ch = i < v.size() ? v[i] : ' ';
    if (ch != ' ' && ch != ',' && ch != '\t') {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      continue;
    }
    if (cur.empty()) continue;
    auto parsed = parse_url_origin("https://" + cur + "/");
    if (parsed && parsed->host == cur && parsed->port.empty()) l.c.trusted_hosts.push_back(cur);
    else l.bad("KINDE_TRUSTED_HOSTS: '" + cur + "' is not a host name (write names like auth.example.com)");
    cur.clear();
  }
}

void set_token_auth(Load& l, const std::string& v) {
  l.c.token_auth = v;
  if (v != "client_secret_basic" && v != "client_secret_post")
    l.bad("KINDE_TOKEN_AUTH must be client_secret_basic or client_secret_post, got '" + v + "'");
}

void set_session_store(Load& l, const std::string& v) {
  l.c.session_store = v;
  if (v == "file") l.c.store_kind = StoreKind::file;
  else if (v.rfind("redis://", 0) == 0 || v.rfind("rediss://", 0) == 0 || v.rfind("unix:", 0) == 0)
    l.c.store_kind = StoreKind::redis;
  else
    l.bad("KINDE_SESSION_STORE must be 'file', redis://host:port[/db] or unix:/path, got '" + v + "'");
}

void set_session_secret(Load& l, const std::string& v) {
  l.c.session_secret = v;
  if (v.size() < 32) l.bad("KINDE_SESSION_SECRET must be at least 32 characters (use: openssl rand -base64 48)");
}

// A session that never times out is not a choice: 0 (or less) would switch a limit off.
void set_positive_seconds(Load& l, const char* name, const std::string& v, std::int64_t& out) {
  if (!parse_seconds(v, out) || out <= 0)
    l.bad(std::string(name) + " must be a whole number of seconds greater than 0, got '" + v + "'");
}

void set_positive_ms(Load& l, const char* name, const std::string& v, long& out) {
  std::int64_t ms = 0;
  if (!parse_seconds(v, ms) || ms < 1) l.bad(std::string(name) + " must be a positive number");
  else out = static_cast<long>(ms);
}

// RFC 6265 4.1.1: a token. The __Host-/__Secure- prefixes are the app's to add (README, "Sessions"),
// and the sign-in cookies' family is reserved so the names never collide.
void set_cookie_name(Load& l, const std::string& v) {
  bool token = v.size() <= 64;
  for (char ch : v)
    token = token && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                      std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos);
  if (!token)
    l.bad("KINDE_COOKIE_NAME must be a cookie name (letters, digits, - _ . and no spaces), got '" + v + "'");
  else if (starts_with_ignoring_case(v, "__Host-") || starts_with_ignoring_case(v, "__Secure-"))
    l.bad("KINDE_COOKIE_NAME must not carry a __Host- or __Secure- prefix (the app adds it when the cookie is "
          "Secure), got '" + v + "'");
  else if (starts_with_ignoring_case(v, kSignInCookieFamily))
    l.bad(std::string("KINDE_COOKIE_NAME must not start with ") + kSignInCookieFamily +
          " (the sign-in cookies' names), got '" + v + "'");
  else
    l.c.cookie_name = v;
}

// It goes verbatim into Set-Cookie: a path, nothing that could end the attribute or the header.
void set_cookie_path(Load& l, const std::string& v) {
  bool ok = !v.empty() && v[0] == '/';
  for (char ch : v) ok = ok && ch > 0x20 && ch != 0x7f && ch != ';' && ch != ',';
  if (ok) l.c.cookie_path = v;
  else l.bad("KINDE_COOKIE_PATH must be a URL path starting with '/', got '" + v + "'");
}

void set_log_level(Load& l, const std::string& v) {
  LogLevel level;
  if (!parse_log_level(v, level)) l.bad("KINDE_LOG_LEVEL must be error, warn, info or debug, got '" + v + "'");
  l.c.log_level = v;
}

// Every key the loader reads, in the style of lighttpd's config_plugin_keys_t: the name, its aliases
// (tutorials' spellings), the parser, and the message when a required key is missing (nullptr:
// optional). config_keys() exposes the names; a test checks the README and kinde.conf.example.
struct KeySpec {
  ConfigKey key;
  void (*parse)(Load&, const std::string&);
  const char* if_missing;
};

const KeySpec kKeys[] = {
    {{"KINDE_ISSUER_URL", {"KINDE_HOST", "KINDE_DOMAIN"}}, set_issuer,
     "KINDE_ISSUER_URL is missing (your Kinde domain, e.g. https://yourapp.kinde.com)"},
    {{"KINDE_CLIENT_ID", {}}, [](Load& l, const std::string& v) { l.c.client_id = v; },
     "KINDE_CLIENT_ID is missing (the back-end app's client id from Kinde)"},
    {{"KINDE_CLIENT_SECRET", {}}, [](Load& l, const std::string& v) { l.c.client_secret = v; },
     "KINDE_CLIENT_SECRET is missing (the back-end app's client secret from Kinde)"},
    {{"KINDE_CALLBACK_URL", {"KINDE_REDIRECT_URI"}}, set_callback,
     "KINDE_CALLBACK_URL is missing (e.g. https://example.com/callback, registered at Kinde)"},
    {{"KINDE_LOGOUT_URL", {"LOGOUT_REDIRECT_URL", "KINDE_POST_LOGOUT_REDIRECT_URL"}},
     [](Load& l, const std::string& v) { l.c.logout_url = v; }, nullptr},
    {{"KINDE_END_SESSION_ENDPOINT", {}}, set_end_session_endpoint, nullptr},
    {{"KINDE_SCOPES", {"KINDE_SCOPE"}}, [](Load& l, const std::string& v) { l.c.scopes = v; }, nullptr},
    {{"KINDE_AUDIENCE", {}}, [](Load& l, const std::string& v) { l.c.audience = v; }, nullptr},
    {{"KINDE_ORG_CODE", {}}, [](Load& l, const std::string& v) { l.c.org_code = v; }, nullptr},
    {{"KINDE_TRUSTED_HOSTS", {}}, set_trusted_hosts, nullptr},
    {{"KINDE_TOKEN_AUTH", {}}, set_token_auth, nullptr},
    {{"KINDE_SESSION_DIR", {}}, [](Load& l, const std::string& v) { l.c.session_dir = resolve(l.base, v); }, nullptr},
    {{"KINDE_SESSION_STORE", {}}, set_session_store, nullptr},
    {{"KINDE_SESSION_SECRET", {}}, set_session_secret, nullptr},
    // The key apart from the data: never inside the session directory (default set in load_config).
    {{"KINDE_SESSION_KEY_FILE", {}},
     [](Load& l, const std::string& v) { l.c.session_key_file = resolve(l.base, v); }, nullptr},
    {{"KINDE_SESSION_IDLE_TIMEOUT", {}},
     [](Load& l, const std::string& v) { set_positive_seconds(l, "KINDE_SESSION_IDLE_TIMEOUT", v, l.c.idle_timeout); },
     nullptr},
    {{"KINDE_SESSION_MAX_AGE", {}},
     [](Load& l, const std::string& v) { set_positive_seconds(l, "KINDE_SESSION_MAX_AGE", v, l.c.max_age); }, nullptr},
    {{"KINDE_HTTP_CONNECT_TIMEOUT_MS", {}},
     [](Load& l, const std::string& v) {
       set_positive_ms(l, "KINDE_HTTP_CONNECT_TIMEOUT_MS", v, l.c.http_connect_timeout_ms);
     },
     nullptr},
    {{"KINDE_HTTP_TIMEOUT_MS", {}},
     [](Load& l, const std::string& v) { set_positive_ms(l, "KINDE_HTTP_TIMEOUT_MS", v, l.c.http_timeout_ms); },
     nullptr},
    {{"KINDE_REFRESH_RETRY_SECONDS", {}},
     [](Load& l, const std::string& v) {
       if (!parse_seconds(v, l.c.refresh_retry_seconds))
         l.bad("KINDE_REFRESH_RETRY_SECONDS must be a whole number of seconds, got '" + v + "'");
     },
     nullptr},
    {{"KINDE_REDIS_PREFIX", {}}, set_redis_prefix, nullptr},
    {{"SESSION_COOKIE_SECURE", {"KINDE_COOKIE_SECURE"}},
     [](Load& l, const std::string& v) {
       if (!parse_bool(v, l.c.cookie_secure)) l.bad("SESSION_COOKIE_SECURE must be true or false, got '" + v + "'");
     },
     nullptr},
    {{"KINDE_COOKIE_NAME", {}}, set_cookie_name, nullptr},
    {{"KINDE_COOKIE_PATH", {}}, set_cookie_path, nullptr},
    {{"KINDE_TEMPLATE_DIR", {}}, [](Load& l, const std::string& v) { l.c.template_dir = resolve(l.base, v); },
     nullptr},
    {{"KINDE_LOG_LEVEL", {}}, set_log_level, nullptr},
};

Result<std::map<std::string, std::string>> read_config_file(const std::string& path, bool explicit_path,
                                                            Config& c) {
  std::ifstream in(path);
  if (!in) {
    if (explicit_path)
      return make_error(kConfigMissing, "cannot read config file " + path + " (set KINDE_CONFIG or create it)");
    return std::map<std::string, std::string>{};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = parse_dotenv(ss.str());
  if (!parsed) return make_error(kConfigSyntax, path + ": " + parsed.error().detail);
  c.config_path = path;
  return parsed;
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const KeySpec& k : kKeys) out.push_back(k.key);
    return out;
  }();
  return keys;
}

Result<Config> load_config(const std::string& path, bool explicit_path, const EnvGetter& env) {
  Config c;
  auto file_vars = read_config_file(path, explicit_path, c);
  if (!file_vars) return file_vars.error();
  // The environment wins over the file; within each, the name wins over its aliases. Empty is unset.
  auto get = [&](const ConfigKey& k) -> std::optional<std::string> {
    for (bool from_env : {true, false}) {
      for (std::size_t i = 0; i <= k.aliases.size(); ++i) {
        const std::string& n = i == 0 ? k.name : k.aliases[i - 1];
        std::optional<std::string> v;
        if (from_env) v = env(n);
        else if (auto it = file_vars->find(n); it != file_vars->end()) v = it->second;
        if (v && !v->empty()) return v;
      }
    }
    return std::nullopt;
  };
  std::vector<std::string> problems;
  Load l{c, c.config_path.empty() ? "." : dir_of(c.config_path), problems};
  const std::string project = c.config_path.empty() ? std::string(".") : l.base + "/..";
  c.session_dir = resolve(l.base, project + "/var/sessions");
  c.template_dir = resolve(l.base, project + "/templates");
  // Without a config file there is no safe default place for the key (a CGI's working directory may
  // be web-visible): the runtime then asks for KINDE_SESSION_KEY_FILE or KINDE_SESSION_SECRET.
  if (!c.config_path.empty()) c.session_key_file = l.base + "/session.key";
  bool secure_set = false;
  for (const KeySpec& k : kKeys) {
    auto v = get(k.key);
    if (v) k.parse(l, *v);
    else if (k.if_missing) problems.push_back(k.if_missing);
    secure_set = secure_set || (v && k.key.name == "SESSION_COOKIE_SECURE");
  }
  if (!secure_set) c.cookie_secure = !is_loopback_http(c.callback_url);
  if (session_lock_ttl_ms(c) > kMaxSessionLockMs)
    problems.push_back("KINDE_HTTP_CONNECT_TIMEOUT_MS (" + std::to_string(c.http_connect_timeout_ms) +
                       ") and KINDE_HTTP_TIMEOUT_MS (" + std::to_string(c.http_timeout_ms) + ") are too long: a refresh "
                       "may make " + std::to_string(kProviderCallsUnderLock) + " provider calls under the session lock, so "
                       "the lock would last " + std::to_string(session_lock_ttl_ms(c)) + " ms, more than the " +
                       std::to_string(kMaxSessionLockMs) + " ms allowed (3 x (connect + total) + 2000 must fit)");
  if (!problems.empty()) {
    std::string detail;
    for (const auto& p : problems) detail += (detail.empty() ? "" : "\n") + p;
    return make_error(kConfigInvalid, detail);
  }
  return c;
}

long provider_calls_budget_ms(const Config& c) {
  return kProviderCallsUnderLock * (c.http_connect_timeout_ms + c.http_timeout_ms);
}

long session_lock_ttl_ms(const Config& c) { return provider_calls_budget_ms(c) + kSessionLockMarginMs; }

}  // namespace kinde
