// Runtime: the real parts (clock, randomness, session store, templates, provider client) wired once
// per process, owned together. main and `--check-config` use it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "app/app.hpp"
#include "http/transport.hpp"
#include "oidc/provider.hpp"

namespace kinde {

struct Runtime {
  Config config;
  SystemClock clock;
  OpenSslRandom random;
  std::unique_ptr<SessionStore> sessions;
  std::shared_ptr<const View> view;
  std::unique_ptr<CurlTransport> http;
  std::unique_ptr<ProviderClient> oidc;
  std::unique_ptr<App> app;
};

// Opens the session store named by config.session_store ("file" or a Redis URL).
Result<std::unique_ptr<SessionStore>> open_session_store(const Config& config, Random& random);

// Builds every part from a loaded config. Errors say, in plain words, which part failed and why.
Result<std::unique_ptr<Runtime>> build_runtime(Config config);

// Runs the --check-config checks, printing one line per check to out; returns the exit status.
int check_config(const Config& config, std::string& out);

}  // namespace kinde
