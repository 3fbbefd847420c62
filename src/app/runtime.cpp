#include "app/runtime.hpp"
#include "http/forked_transport.hpp"

#include <algorithm>

#include "session/file_setup.hpp"
#include "session/file_store.hpp"
#include "session/redis_store.hpp"
#include "util/log.hpp"

namespace kinde {

Result<SessionKey> resolve_session_key(const Config& config, Random& random, bool dry_run) {
  if (!config.session_secret.empty()) return SessionKey{config.session_secret, "KINDE_SESSION_SECRET", "", false};
  // Redis: every server must share KINDE_SESSION_SECRET; the store says so when it is missing.
  if (config.store_kind != StoreKind::file) return SessionKey{};
  if (config.session_key_file.empty()) {
    return make_error(kSessionKeyUnavailable,
                      "there is no config file, so no default place for the session key: set KINDE_SESSION_KEY_FILE "
                      "(a path outside the web space and the session directory) or KINDE_SESSION_SECRET");
  }
  SessionKeyFileOptions o;
  o.path = config.session_key_file;
  o.legacy_path = config.session_dir + "/.secret";
  o.dry_run = dry_run;
  auto k = load_or_create_session_key(o, random);
  if (!k) return k.error();
  return SessionKey{std::move(k->material), k->path, std::move(k->note), k->warning};
}

Result<std::unique_ptr<SessionStore>> open_session_store(const Config& config, const std::string& key_material,
                                                         Random& random) {
  SessionLimits limits{config.idle_timeout, config.max_age};
  if (config.store_kind == StoreKind::file) {
    FileStoreOptions o;
    o.dir = config.session_dir;
    o.secret = key_material;
    o.limits = limits;
    return open_file_session_store(o, random);
  }
  RedisStoreOptions o;
  o.url = config.session_store;
  o.secret = config.session_secret;
  o.limits = limits;
  o.key_prefix = config.redis_prefix;
  // The lock outlives every provider call a refresh makes under it (config.hpp: session_lock_ttl_ms);
  // a request waiting for it waits as long as a holder may keep it.
  o.lock_ttl_ms = static_cast<int>(session_lock_ttl_ms(config));
  o.lock_wait_ms = o.lock_ttl_ms + 1000;
  return open_redis_session_store(o, random);
}

Result<std::unique_ptr<Runtime>> build_runtime(Config config, bool provider_calls_in_child) {
  auto rt = std::make_unique<Runtime>();
  rt->config = std::move(config);
  LogLevel level;
  if (parse_log_level(rt->config.log_level, level)) set_log_level(level);
  auto key = resolve_session_key(rt->config, rt->random);
  if (!key) return make_error(key.error().code, "session key: " + key.error().detail);
  if (key->warning) log_warn("session key: " + key->note);
  else if (!key->note.empty()) log_info("session key " + key->source + ": " + key->note);
  auto store = open_session_store(rt->config, key->material, rt->random);
  if (!store) return make_error(store.error().code, "session store: " + store.error().detail);
  rt->sessions = std::move(*store);
  rt->sealer = make_sealer(key->material, rt->random);
  auto view = View::load(rt->config.template_dir);
  if (!view) return make_error(view.error().code, "templates: " + view.error().detail);
  rt->view = *view;
  if (provider_calls_in_child) rt->http = std::make_unique<ForkedTransport>(std::make_unique<CurlTransport>());
  else rt->http = std::make_unique<CurlTransport>();
  // File sessions: a file beside them; Redis: a key every server shares (one JWKS fetch under its lock).
  std::unique_ptr<ProviderCache> cache =
      rt->config.store_kind == StoreKind::file
          ? make_file_provider_cache(rt->config.session_dir + "/.provider-cache.json")
          : make_redis_provider_cache(*rt->sessions, static_cast<int>(rt->config.http_connect_timeout_ms +
                                                                      rt->config.http_timeout_ms + kSessionLockMarginMs));
  rt->oidc = std::make_unique<ProviderClient>(rt->config, *rt->http, rt->clock, std::move(cache));
  AppParts parts;
  parts.config = rt->config;
  parts.clock = &rt->clock;
  parts.random = &rt->random;
  parts.sessions = rt->sessions.get();
  parts.sealer = rt->sealer.get();
  parts.view = rt->view;
  parts.oidc = rt->oidc.get();
  rt->app = std::make_unique<App>(std::move(parts));
  return rt;
}

std::string refresh_scope_report(const std::vector<std::string>& supported, const std::string& requested) {
  auto has = [](const std::vector<std::string>& list, const std::string& s) {
    return std::find(list.begin(), list.end(), s) != list.end();
  };
  std::vector<std::string> asked;
  for (std::size_t i = 0; i < requested.size();) {
    std::size_t end = requested.find(' ', i);
    if (end == std::string::npos) end = requested.size();
    if (end > i) asked.push_back(requested.substr(i, end - i));
    i = end + 1;
  }
  std::vector<std::string> listed;
  for (const char* s : {"offline", "offline_access"})
    if (has(supported, s)) listed.emplace_back(s);
  const bool asks = has(asked, "offline") || has(asked, "offline_access");
  if (supported.empty())
    return std::string("refresh tokens: the provider does not list scopes_supported; KINDE_SCOPES ") +
           (asks ? "asks for one" : "asks for neither offline nor offline_access");
  if (listed.empty())
    return "refresh tokens: the provider lists neither offline nor offline_access in scopes_supported";
  std::string names = listed[0] + (listed.size() > 1 ? " and " + listed[1] : "");
  bool asks_listed = false;
  for (const auto& s : listed) asks_listed = asks_listed || has(asked, s);
  if (asks_listed) return "refresh tokens: the provider lists " + names + ", and KINDE_SCOPES asks for it";
  return "refresh tokens: the provider lists " + names + " but KINDE_SCOPES ('" + requested +
         "') does not ask for it: sessions may get no refresh token";
}

int check_config(const Config& config, std::string& out) {
  int status = 0;
  auto line = [&](bool ok, const std::string& what) {
    out += (ok ? "ok    " : "FAIL  ") + what + "\n";
    if (!ok) status = 1;
  };
  line(true, "config " + (config.config_path.empty() ? std::string("(environment only)") : config.config_path));
  line(true, "issuer " + config.issuer + ", client id " + config.client_id + ", callback " + config.callback_url);
  OpenSslRandom random;
  // Run as another user (root), creating the key here would leave a file the app cannot read.
  auto key = resolve_session_key(config, random, /*dry_run=*/true);
  if (!key) {
    line(false, "session key: " + key.error().detail);
  } else if (!key->source.empty()) {
    // The key file is named, never its content.
    line(!key->warning, "session key " + key->source + (key->note.empty() ? "" : ": " + key->note));
  }
  Result<std::unique_ptr<SessionStore>> store =
      key ? open_session_store(config, key->material, random)
          : Result<std::unique_ptr<SessionStore>>(make_error(key.error().code, "not opened without a session key"));
  if (config.store_kind == StoreKind::file) {
    line(bool(store), store ? "session store " + config.session_store + " (" + config.session_dir + ")"
                            : "session store: " + store.error().detail);
  } else {
    // A Redis store opens even while Redis is down (requests answer 503 until it is back), so
    // reachability is checked separately. The URL may hold a password: print it redacted.
    const std::string where = redact_redis_url(config.session_store);
    Result<void> reachable = store ? (*store)->ping() : Result<void>(store.error());
    line(bool(reachable), reachable ? "session store " + where + " (Redis answers)"
                                    : "session store " + where + ": " + reachable.error().detail);
    line(true, "session lock " + std::to_string(session_lock_ttl_ms(config)) + " ms, outlasting " +
                   std::to_string(kProviderCallsUnderLock) + " provider calls of up to " +
                   std::to_string(config.http_connect_timeout_ms + config.http_timeout_ms) +
                   " ms each; keys start with '" + config.redis_prefix + "'");
  }
  auto view = View::load(config.template_dir);
  line(bool(view), view ? "templates in " + config.template_dir : "templates: " + view.error().detail);
  if (!config.trusted_hosts.empty()) {
    std::string hosts;
    for (const auto& h : config.trusted_hosts) hosts += (hosts.empty() ? "" : ", ") + h;
    line(true, "provider endpoints may also be on: " + hosts + " (KINDE_TRUSTED_HOSTS)");
  }
  CurlTransport http;
  SystemClock clock;
  ProviderClient oidc(config, http, clock, "");
  auto meta = oidc.metadata();
  // The same checks sign-in makes: the document's issuer is exactly KINDE_ISSUER_URL, and tokens must carry it as iss.
  line(bool(meta), meta ? "discovery: issuer is exactly '" + meta->issuer + "' (tokens must carry this iss), "
                              "authorization endpoint " + meta->authorization_endpoint
                        : "discovery (" + ProviderClient::discovery_url(config.issuer) + "): " + meta.error().detail);
  if (meta) {
    auto probe = oidc.verify_id_token("x.y.z", "", clock.now());  // loads the JWKS; the token itself fails
    const std::string code = probe ? std::string() : probe.error().code;
    bool jwks_ok = !probe && code != kJwksFailed && code != kJwksEmpty && code != kJwksMalformed && code != kHttpStatus;
    line(jwks_ok, jwks_ok ? "JWKS reachable at " + meta->jwks_uri : "JWKS: " + probe.error().detail);
    line(true, refresh_scope_report(meta->scopes_supported, config.scopes));
  }
  out += status == 0 ? "configuration OK\n" : "configuration has problems (see FAIL lines)\n";
  return status;
}

}  // namespace kinde
