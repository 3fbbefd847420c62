#include "app/runtime.hpp"

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
  return open_redis_session_store(o, random);
}

Result<std::unique_ptr<Runtime>> build_runtime(Config config) {
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
  rt->http = std::make_unique<CurlTransport>();
  std::string cache = rt->config.store_kind == StoreKind::file ? rt->config.session_dir + "/.provider-cache.json" : "";
  rt->oidc = std::make_unique<ProviderClient>(rt->config, *rt->http, rt->clock, cache);
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
    Result<void> reachable = store ? ping_session_store(**store) : Result<void>(store.error());
    line(bool(reachable), reachable ? "session store " + where + " (Redis answers)"
                                    : "session store " + where + ": " + reachable.error().detail);
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
  line(bool(meta), meta ? "discovery: issuer matches, authorization endpoint " + meta->authorization_endpoint
                        : "discovery (" + config.issuer + "/.well-known/openid-configuration): " + meta.error().detail);
  if (meta) {
    auto probe = oidc.verify_id_token("x.y.z", "", clock.now());  // loads the JWKS; the token itself fails
    const std::string code = probe ? std::string() : probe.error().code;
    bool jwks_ok = !probe && code != kJwksFailed && code != kJwksEmpty && code != kJwksMalformed && code != kHttpStatus;
    line(jwks_ok, jwks_ok ? "JWKS reachable at " + meta->jwks_uri : "JWKS: " + probe.error().detail);
  }
  out += status == 0 ? "configuration OK\n" : "configuration has problems (see FAIL lines)\n";
  return status;
}

}  // namespace kinde
