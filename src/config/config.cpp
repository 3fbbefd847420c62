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
      return make_error("config_syntax", "line " + std::to_string(line_no) + ": expected KEY=value");
    std::string_view key = trim(line.substr(0, eq));
    if (!valid_key(key))
      return make_error("config_syntax", "line " + std::to_string(line_no) + ": '" + std::string(key) +
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
        return make_error("config_syntax", "line " + std::to_string(line_no) + ": unterminated quote in " +
                                               std::string(key));
      std::string_view rest = trim(raw.substr(i + 1));
      if (!rest.empty() && rest[0] != '#')
        return make_error("config_syntax", "line " + std::to_string(line_no) + ": text after closing quote in " +
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

Result<Config> load_config(const std::string& path, bool explicit_path, const EnvGetter& env) {
  std::map<std::string, std::string> file_vars;
  std::vector<std::string> problems;
  Config c;
  std::ifstream in(path);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = parse_dotenv(ss.str());
    if (!parsed) return make_error("config_syntax", path + ": " + parsed.error().detail);
    file_vars = std::move(*parsed);
    c.config_path = path;
  } else if (explicit_path) {
    return make_error("config_missing", "cannot read config file " + path + " (set KINDE_CONFIG or create it)");
  }

  auto get = [&](std::initializer_list<const char*> names) -> std::optional<std::string> {
    for (const char* n : names)
      if (auto v = env(n); v && !v->empty()) return v;
    for (const char* n : names)
      if (auto it = file_vars.find(n); it != file_vars.end() && !it->second.empty()) return it->second;
    return std::nullopt;
  };

  std::string base = c.config_path.empty() ? "." : dir_of(c.config_path);
  std::string project = c.config_path.empty() ? std::string(".") : base + "/..";

  if (auto v = get({"KINDE_ISSUER_URL", "KINDE_HOST", "KINDE_DOMAIN"})) {
    c.issuer = *v;
    while (!c.issuer.empty() && c.issuer.back() == '/') c.issuer.pop_back();
    if (c.issuer.rfind("https://", 0) != 0 && !is_loopback_http(c.issuer))
      problems.push_back("KINDE_ISSUER_URL must start with https:// (http only for 127.0.0.1/localhost), got '" +
                         c.issuer + "'");
  } else {
    problems.push_back("KINDE_ISSUER_URL is missing (your Kinde domain, e.g. https://yourapp.kinde.com)");
  }
  if (auto v = get({"KINDE_CLIENT_ID"})) c.client_id = *v;
  else problems.push_back("KINDE_CLIENT_ID is missing (the back-end app's client id from Kinde)");
  if (auto v = get({"KINDE_CLIENT_SECRET"})) c.client_secret = *v;
  else problems.push_back("KINDE_CLIENT_SECRET is missing (the back-end app's client secret from Kinde)");
  if (auto v = get({"KINDE_CALLBACK_URL", "KINDE_REDIRECT_URI"})) {
    c.callback_url = *v;
    if (c.callback_url.rfind("https://", 0) != 0 && c.callback_url.rfind("http://", 0) != 0)
      problems.push_back("KINDE_CALLBACK_URL must be an absolute http(s) URL, got '" + c.callback_url + "'");
  } else {
    problems.push_back("KINDE_CALLBACK_URL is missing (e.g. https://example.com/callback, registered at Kinde)");
  }
  if (auto v = get({"KINDE_LOGOUT_URL", "LOGOUT_REDIRECT_URL", "KINDE_POST_LOGOUT_REDIRECT_URL"})) c.logout_url = *v;
  if (auto v = get({"KINDE_SCOPES", "KINDE_SCOPE"})) c.scopes = *v;
  if (auto v = get({"KINDE_AUDIENCE"})) c.audience = *v;
  if (auto v = get({"KINDE_ORG_CODE"})) c.org_code = *v;
  if (auto v = get({"KINDE_TRUSTED_HOSTS"})) {
    // Host names only (no scheme, port or path), separated by spaces and/or commas.
    std::string cur;
    for (std::size_t i = 0; i <= v->size(); ++i) {
      char ch = i < v->size() ? (*v)[i] : ' ';
      if (ch != ' ' && ch != ',' && ch != '\t') {
        cur += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        continue;
      }
      if (cur.empty()) continue;
      auto parsed = parse_url_origin("https://" + cur + "/");
      if (parsed && parsed->host == cur && parsed->port.empty()) c.trusted_hosts.push_back(cur);
      else problems.push_back("KINDE_TRUSTED_HOSTS: '" + cur + "' is not a host name (write names like auth.example.com)");
      cur.clear();
    }
  }
  if (auto v = get({"KINDE_TOKEN_AUTH"})) {
    c.token_auth = *v;
    if (c.token_auth != "client_secret_basic" && c.token_auth != "client_secret_post")
      problems.push_back("KINDE_TOKEN_AUTH must be client_secret_basic or client_secret_post, got '" + *v + "'");
  }
  c.session_dir = resolve(base, get({"KINDE_SESSION_DIR"}).value_or(project + "/var/sessions"));
  if (auto v = get({"KINDE_SESSION_STORE"})) c.session_store = *v;
  if (c.session_store != "file" && c.session_store.rfind("redis://", 0) != 0 &&
      c.session_store.rfind("rediss://", 0) != 0 && c.session_store.rfind("unix:", 0) != 0)
    problems.push_back("KINDE_SESSION_STORE must be 'file', redis://host:port[/db] or unix:/path, got '" +
                       c.session_store + "'");
  if (auto v = get({"KINDE_SESSION_SECRET"})) {
    c.session_secret = *v;
    if (c.session_secret.size() < 32)
      problems.push_back("KINDE_SESSION_SECRET must be at least 32 characters (use: openssl rand -base64 48)");
  }
  // The key apart from the data: never inside the session directory. Without a config file there
  // is no safe default place (a CGI's working directory may be web-visible): the runtime then asks
  // for KINDE_SESSION_KEY_FILE or KINDE_SESSION_SECRET.
  if (auto v = get({"KINDE_SESSION_KEY_FILE"})) c.session_key_file = resolve(base, *v);
  else if (!c.config_path.empty()) c.session_key_file = base + "/session.key";
  // A session that never times out is not a choice: 0 (or less) would switch a limit off.
  for (auto [name, out] : {std::pair<const char*, std::int64_t*>{"KINDE_SESSION_IDLE_TIMEOUT", &c.idle_timeout},
                           {"KINDE_SESSION_MAX_AGE", &c.max_age}}) {
    if (auto v = get({name}); v && (!parse_seconds(*v, *out) || *out <= 0))
      problems.push_back(std::string(name) + " must be a whole number of seconds greater than 0, got '" + *v + "'");
  }
  if (auto v = get({"KINDE_HTTP_CONNECT_TIMEOUT_MS"})) {
    std::int64_t ms = 0;
    if (!parse_seconds(*v, ms) || ms < 1) problems.push_back("KINDE_HTTP_CONNECT_TIMEOUT_MS must be a positive number");
    else c.http_connect_timeout_ms = static_cast<long>(ms);
  }
  if (auto v = get({"KINDE_HTTP_TIMEOUT_MS"})) {
    std::int64_t ms = 0;
    if (!parse_seconds(*v, ms) || ms < 1) problems.push_back("KINDE_HTTP_TIMEOUT_MS must be a positive number");
    else c.http_timeout_ms = static_cast<long>(ms);
  }
  if (auto v = get({"KINDE_REFRESH_RETRY_SECONDS"}); v && !parse_seconds(*v, c.refresh_retry_seconds))
    problems.push_back("KINDE_REFRESH_RETRY_SECONDS must be a whole number of seconds, got '" + *v + "'");
  c.cookie_secure = !is_loopback_http(c.callback_url);
  if (auto v = get({"SESSION_COOKIE_SECURE", "KINDE_COOKIE_SECURE"}); v && !parse_bool(*v, c.cookie_secure))
    problems.push_back("SESSION_COOKIE_SECURE must be true or false, got '" + *v + "'");
  if (auto v = get({"KINDE_COOKIE_NAME"})) {
    // RFC 6265 4.1.1: a token. The __Host-/__Secure- prefixes are the app's to add (README,
    // "Sessions"), and the sign-in cookies' family is reserved so the names never collide.
    bool token = v->size() <= 64;
    for (char ch : *v)
      token = token && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                        std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos);
    auto starts = [&](std::string_view prefix) {
      if (v->size() < prefix.size()) return false;
      for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>((*v)[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
          return false;
      return true;
    };
    if (!token)
      problems.push_back("KINDE_COOKIE_NAME must be a cookie name (letters, digits, - _ . and no spaces), got '" + *v + "'");
    else if (starts("__Host-") || starts("__Secure-"))
      problems.push_back("KINDE_COOKIE_NAME must not carry a __Host- or __Secure- prefix (the app adds it when the "
                         "cookie is Secure), got '" + *v + "'");
    else if (starts(kSignInCookieFamily))
      problems.push_back(std::string("KINDE_COOKIE_NAME must not start with ") + kSignInCookieFamily +
                         " (the sign-in cookies' names), got '" + *v + "'");
    else
      c.cookie_name = *v;
  }
  if (auto v = get({"KINDE_COOKIE_PATH"})) {
    // It goes verbatim into Set-Cookie: a path, nothing that could end the attribute or the header.
    bool ok = !v->empty() && (*v)[0] == '/';
    for (char ch : *v) ok = ok && ch > 0x20 && ch != 0x7f && ch != ';' && ch != ',';
    if (ok) c.cookie_path = *v;
    else problems.push_back("KINDE_COOKIE_PATH must be a URL path starting with '/', got '" + *v + "'");
  }
  c.template_dir = resolve(base, get({"KINDE_TEMPLATE_DIR"}).value_or(project + "/templates"));
  if (auto v = get({"KINDE_LOG_LEVEL"})) {
    LogLevel l;
    if (!parse_log_level(*v, l)) problems.push_back("KINDE_LOG_LEVEL must be error, warn, info or debug, got '" + *v + "'");
    c.log_level = *v;
  }
  if (!problems.empty()) {
    std::string detail;
    for (const auto& p : problems) detail += (detail.empty() ? "" : "\n") + p;
    return make_error("config_invalid", detail);
  }
  return c;
}

}  // namespace kinde
