// Runtime: the real parts (clock, randomness, session store, templates, provider client) wired once
// per process, owned together. main and `--check-config` use it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "app/app.hpp"
#include "http/transport.hpp"
#include "oidc/provider.hpp"
#include "session/sealed.hpp"

namespace kinde {

struct Runtime {
  Config config;
  SystemClock clock;
  OpenSslRandom random;
  std::unique_ptr<SessionStore> sessions;
  std::unique_ptr<Sealer> sealer;
  std::shared_ptr<const View> view;
  std::unique_ptr<HttpTransport> http;
  std::unique_ptr<ProviderClient> oidc;
  std::unique_ptr<App> app;
};

// The session key material and where it came from.
struct SessionKey {
  std::string material;  // "" only for a Redis store without KINDE_SESSION_SECRET (the store refuses)
  std::string source;    // "KINDE_SESSION_SECRET" or the key file's path
  std::string note;      // what happened to the key file ("created", "moved from ..."), or a warning
  bool warning = false;  // note is a warning (the key is still inside the session directory ...)
};

// KINDE_SESSION_SECRET when set; otherwise, for the file store, the key file (KINDE_SESSION_KEY_FILE,
// default session.key beside the config file), created when missing or moved from
// <session dir>/.secret where older versions kept it. Without a config file there is no default
// place: Error "session_key_unavailable" asks for KINDE_SESSION_KEY_FILE or KINDE_SESSION_SECRET.
// dry_run (--check-config): nothing is created or moved, the note says what a start would do.
Result<SessionKey> resolve_session_key(const Config& config, Random& random, bool dry_run = false);

// Opens the session store named by config.session_store ("file" or a Redis URL) under key material.
Result<std::unique_ptr<SessionStore>> open_session_store(const Config& config, const std::string& key_material,
                                                         Random& random);

// Builds every part from a loaded config. Errors say, in plain words, which part failed and why.
// provider_calls_in_child: each provider call runs in a forked child (ForkedTransport), for
// long-lived FastCGI processes; plain CGI calls libcurl in its own process.
Result<std::unique_ptr<Runtime>> build_runtime(Config config, bool provider_calls_in_child = false);

// --check-config's line on refresh tokens: which of offline (Kinde) and offline_access (OpenID Connect Core 11)
// the provider lists in scopes_supported, and whether KINDE_SCOPES asks for a listed one. Information, never a
// failure: a provider may give refresh tokens for a scope it does not list.
std::string refresh_scope_report(const std::vector<std::string>& scopes_supported, const std::string& requested);

// Runs the --check-config checks, printing one line per check to out; returns the exit status.
int check_config(const Config& config, std::string& out);

}  // namespace kinde
