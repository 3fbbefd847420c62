// The Redis SessionStore: the same sealed records as the file store, kept in Redis so several
// machines share sessions. Expiry by Redis TTL (plus load's own check), update() under a
// cross-machine lock (SET NX PX, released by its owner only), bounded timeouts, self-reconnect.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "oidc/provider_cache.hpp"
#include "session/redis_url.hpp"
#include "session/session.hpp"
#include "util/random.hpp"
#include "util/result.hpp"

namespace kinde {

struct RedisStoreOptions {
  std::string url;                 // KINDE_SESSION_STORE
  std::string secret;              // KINDE_SESSION_SECRET, required (>= 32 bytes), shared by every server
  SessionLimits limits;
  std::string key_prefix = "kinde:";   // KINDE_REDIS_PREFIX: sessions <prefix>s:<sha256 hex of id>, locks <prefix>l:<hash>,
                                       // refresh results <prefix>r:<hash>, the provider cache <prefix>provider
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 2000;
  int lock_ttl_ms = 10000;         // an update's lock lapses after this even if its holder died
  int lock_wait_ms = 12000;        // how long update()/remove() wait for another holder's lock
  std::size_t gc_scan_count = 64;  // keys examined by one bounded collect_expired call
  // Sleeps between lock polls; null: really sleep. Tests may count instead.
  std::function<void(int ms)> sleep;
};

// Opens the store and tries one connection (AUTH, SELECT, PING). Errors: "session_secret_required"
// (no secret: every server must share it), "session_secret_weak" (< 32 bytes), the URL errors of
// parse_redis_url, and "session_store_unavailable" when Redis answers but refuses us (wrong
// password, NOAUTH, bad db index). An unreachable Redis does not stop the open: the store logs a
// warning and every call answers "session_store_unavailable" until Redis is back.
// `random` must outlive the store.
Result<std::unique_ptr<SessionStore>> open_redis_session_store(const RedisStoreOptions& options, Random& random);


// The provider cache (discovery, JWKS, the forced-refetch time) in the Redis of a store opened by
// open_redis_session_store, shared by every server: the document at <prefix>provider, its lock at
// <prefix>provider-lock (SET NX PX lock_ttl_ms, released by its owner only). nullptr for other
// stores. `store` must outlive the cache.
std::unique_ptr<ProviderCache> make_redis_provider_cache(SessionStore& store, int lock_ttl_ms);

// The Redis key holding the session with this id (<prefix>s:<sha256 hex>); for tests and tools.
std::string redis_session_key(const std::string& prefix, const std::string& id);

}  // namespace kinde
