#include "session/redis_store.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "session/sealed.hpp"
#include "util/log.hpp"
#include "util/url.hpp"
#include "util/encoding.hpp"

namespace kinde {

namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

Error unavailable(const std::string& detail) { return make_error(kSessionStoreUnavailable, detail); }


// ---- Lua scripts (each runs atomically inside Redis) -------------------------------------------

// Takes the lock when free, or reports it ours when it already holds our token (a retried call
// whose first reply was lost must not wait for itself). KEYS[1] lock; ARGV token, ttl ms.
constexpr const char* kAcquireScript = R"(
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return 1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0)";

// Compare-and-delete: only the owner's token releases the lock.
constexpr const char* kReleaseScript = R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)";

// Writes the outcome of an update and releases the lock, only while we still hold it (fencing: a
// holder whose lock lapsed must not overwrite the next holder's work). KEYS[1] lock, KEYS[2]
// session; ARGV token, mode (set, setxx, del, none), value, ttl ms (0: no expiry).
// Returns 1 done, 0 lock lost, 2 the session vanished meanwhile (setxx found no key).
constexpr const char* kCommitScript = R"(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local rc = 1
if ARGV[2] == 'set' or ARGV[2] == 'setxx' then
  local args = {'SET', KEYS[2], ARGV[3]}
  if ARGV[4] ~= '0' then table.insert(args, 'PX'); table.insert(args, ARGV[4]) end
  if ARGV[2] == 'setxx' then table.insert(args, 'XX') end
  if not redis.call(unpack(args)) then rc = 2 end
elseif ARGV[2] == 'del' then
  redis.call('DEL', KEYS[2])
end
redis.call('DEL', KEYS[1])
return rc)";

// Deletes a record only if it still holds the bytes we judged expired (an update may have
// replaced it since our GET).
constexpr const char* kDeleteIfSameScript = R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)";

// One page of SCAN, deleting records whose header says expired, at most `budget` (0: no limit).
// ARGV: cursor, match, count, now, idle, max_age, budget. Returns {next cursor, removed}.
// The header layout is sealed.hpp's: "KSR", version 1, created and last_used as big-endian int64.
constexpr const char* kCollectScript = R"(
local now, idle, maxage, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local function be64(s, at)
  local v = 0
  for i = at, at + 7 do v = v * 256 + string.byte(s, i) end
  if string.byte(s, at) >= 128 then v = v - 18446744073709551616 end
  return v
end
local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local removed = 0
for _, k in ipairs(page[2]) do
  if budget > 0 and removed >= budget then break end
  local v = redis.call('GET', k)
  if v and string.len(v) >= 20 and string.sub(v, 1, 3) == 'KSR' and string.byte(v, 4) == 1 then
    local created, last_used = be64(v, 5), be64(v, 13)
    if (idle > 0 and now - last_used > idle) or (maxage > 0 and now - created > maxage) then
      redis.call('DEL', k)
      removed = removed + 1
    end
  end
end
return {page[1], removed})";

class RedisSessionStore : public SessionStore {
 public:
  RedisSessionStore(RedisStoreOptions o, RedisAddress addr, std::string key, Random& random)
      : opt_(std::move(o)), addr_(std::move(addr)), key_(std::move(key)), random_(random) {
    if (!opt_.sleep) opt_.sleep = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
    where_ = addr_.unix_path.empty() ? addr_.host + ":" + std::to_string(addr_.port) : addr_.unix_path;
  }

  // Connects once at open: a refusal (password, db) is fatal, an unreachable server is not.
  Result<void> first_connect(bool& fatal) { return connect(fatal); }

  Result<void> ping() override {
    auto r = command({"PING"}, true);
    if (!r) return r.error();
    return Ok{};
  }

  Result<std::optional<Session>> load(const std::string& id, std::int64_t now) override {
    if (!is_valid_session_id(id)) return std::optional<Session>{};
    // The hot path: one GET, one round trip (last_used is written by update(), at most once a minute).
    Decoded& d = decoded_for(id);
    auto r = command({"GET", d.key}, true);
    if (!r) return r.error();
    if ((*r)->type == REDIS_REPLY_NIL) return std::optional<Session>{};
    if ((*r)->type != REDIS_REPLY_STRING) return unexpected("GET", r->get());
    const std::string_view got((*r)->str, (*r)->len);
    std::optional<Session> s;
    if (d.session && got == d.blob) {
      // The same record, byte for byte, as last time: open_session is a pure function of (record,
      // key, id), so its answer is reused rather than decrypted and parsed again. Redis is still
      // asked every time, so a change by another server is always seen.
      s = d.session;
    } else {
      d.blob.assign(got);
      d.session = decode(d.blob, id);
      s = d.session;
    }
    const std::string& k = d.key;
    const std::string& blob = d.blob;
    if (s && session_expired(*s, opt_.limits, now)) {
      // TTLs follow Redis's clock; this check follows ours, in case the two drift apart.
      if (auto del = command({"EVAL", kDeleteIfSameScript, "1", k, blob}, true); !del) {
        log_warn("could not remove an expired session from Redis: " + del.error().detail);
      }
      return std::optional<Session>{};
    }
    return s;
  }

  Result<void> save(const Session& s) override {
    if (!is_valid_session_id(s.id)) return make_error(kSessionBadId, "refusing to save a malformed id");
    const std::string k = session_key(s.id);
    const std::int64_t ttl = ttl_ms(s, s.last_used);
    if (ttl < 0) {
      // Already past its lifetime: storing it would only store something load must refuse.
      auto r = command({"DEL", k}, true);
      if (!r) return r.error();
      return Ok{};
    }
    std::vector<std::string> argv = {"SET", k, seal_session(s, key_, random_)};
    if (ttl > 0) {
      argv.push_back("PX");
      argv.push_back(std::to_string(ttl));
    }
    auto r = command(argv, true);
    if (!r) return r.error();
    if ((*r)->type == REDIS_REPLY_ERROR) return unexpected("SET", r->get());
    return Ok{};
  }

  Result<std::optional<Session>> update(const std::string& id, std::int64_t now,
                                        const std::function<bool(std::optional<Session>&)>& fn) override {
    if (!is_valid_session_id(id)) return update_malformed_id(fn);
    const std::string k = session_key(id);
    auto lock = acquire(id);
    if (!lock) return lock.error();
    LockGuard guard(*this, lock_key(id), *lock);

    auto r = command({"GET", k}, true);
    if (!r) return r.error();
    std::optional<Session> current;
    bool stale = false;  // a record is there but holds an expired session
    if ((*r)->type == REDIS_REPLY_STRING) {
      current = decode(std::string((*r)->str, (*r)->len), id);
      if (current && session_expired(*current, opt_.limits, now)) {
        current.reset();
        stale = true;
      }
    } else if ((*r)->type != REDIS_REPLY_NIL) {
      return unexpected("GET", r->get());
    }

    std::optional<Session> next = current;
    if (!fn(next)) {
      if (stale) {
        if (auto c = guard.commit("del", "", 0); !c) return c.error();
      }
      return current;
    }
    if (next) {
      if (next->id != id) return make_error(kSessionBadId, "update may not change the session id (use rotate)");
      const std::int64_t ttl = ttl_ms(*next, now);
      if (ttl < 0) {
        if (auto c = guard.commit("del", "", 0); !c) return c.error();
        return std::optional<Session>{};
      }
      // XX when changing an existing session: if its TTL ran out meanwhile it stays ended.
      auto c = guard.commit(current ? "setxx" : "set", seal_session(*next, key_, random_), ttl);
      if (!c) return c.error();
      if (*c == 2) return std::optional<Session>{};
      return next;
    }
    if (auto c = guard.commit(current || stale ? "del" : "none", "", 0); !c) return c.error();
    return std::optional<Session>{};
  }

  Result<void> remove(const std::string& id) override {
    if (!is_valid_session_id(id)) return Ok{};
    decoded_.erase(id);  // no copy of a signed-out session's tokens stays in memory
    // Under the lock, so an update in flight on another machine cannot write the session back
    // after sign-out.
    auto lock = acquire(id);
    if (!lock) return lock.error();
    LockGuard guard(*this, lock_key(id), *lock);
    auto c = guard.commit("del", "", 0);
    if (!c) return c.error();
    return Ok{};
  }

  Result<std::size_t> collect_expired(std::int64_t now, std::size_t budget) override {
    // Redis's TTLs normally remove expired records first, so this mostly finds nothing; it is
    // here for records whose TTL outlived our clock's verdict (clock drift, changed limits).
    // Bounded (budget != 0): one SCAN page per call, resuming where this process stopped.
    // Unbounded (--gc-sessions): page after page until SCAN wraps, each page its own short script
    // so Redis is never blocked for long.
    std::size_t removed = 0;
    std::string cursor = budget == 0 ? std::string("0") : gc_cursor_;
    do {
      auto r = command({"EVAL", kCollectScript, "0", cursor, opt_.key_prefix + "s:*",
                        std::to_string(std::max<std::size_t>(opt_.gc_scan_count, 1)), std::to_string(now),
                        std::to_string(opt_.limits.idle_timeout), std::to_string(opt_.limits.max_age),
                        std::to_string(budget == 0 ? 0 : budget - removed)},
                       true);
      if (!r) return r.error();
      const redisReply* rep = r->get();
      if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
          rep->element[1]->type != REDIS_REPLY_INTEGER) {
        return unexpected("EVAL collect", rep);
      }
      cursor.assign(rep->element[0]->str, rep->element[0]->len);
      removed += static_cast<std::size_t>(rep->element[1]->integer);
    } while (budget == 0 && cursor != "0");
    if (budget != 0) gc_cursor_ = cursor;
    return removed;
  }

  Result<void> keep_refresh_result(const std::string& id, const std::string& spent, const nlohmann::json& result,
                                   std::int64_t now) override {
    if (!is_valid_session_id(id)) return make_error(kSessionBadId, "refusing to keep a result for a malformed id");
    const std::string name = refresh_grace_name(spent);
    // Redis drops it after the grace period (PX); open_refresh_result checks the sealed expiry too.
    auto r = command({"SET", opt_.key_prefix + "r:" + name,
                      seal_refresh_result(result, now + kRefreshGraceSeconds, name, id, key_, random_), "PX",
                      std::to_string(kRefreshGraceSeconds * 1000)},
                     true);
    if (!r) return r.error();
    if ((*r)->type == REDIS_REPLY_ERROR) return unexpected("SET", r->get());
    return Ok{};
  }

  Result<std::optional<nlohmann::json>> refresh_result(const std::string& id, const std::string& spent,
                                                       std::int64_t now) override {
    if (!is_valid_session_id(id)) return std::optional<nlohmann::json>{};
    const std::string name = refresh_grace_name(spent);
    auto r = command({"GET", opt_.key_prefix + "r:" + name}, true);
    if (!r) return r.error();
    if ((*r)->type == REDIS_REPLY_NIL) return std::optional<nlohmann::json>{};
    if ((*r)->type != REDIS_REPLY_STRING) return unexpected("GET", r->get());
    return open_refresh_result(std::string_view((*r)->str, (*r)->len), name, id, key_, now);
  }


  // For helpers sharing this connection (the provider cache): a command safe to repeat.
  Result<ReplyPtr> shared_command(const std::vector<std::string>& argv) { return command(argv, true); }
  const std::string& key_prefix() const { return opt_.key_prefix; }
  // Takes the lock at `key` (SET NX PX ttl_ms), waiting at most ttl_ms; its owner token.
  Result<std::string> lock_key_for(const std::string& key, int ttl_ms) { return acquire_key(key, ttl_ms, ttl_ms); }

 private:
  // Holds an acquired lock; releases it (compare-and-delete) unless commit() already did, also
  // when fn throws.
  class LockGuard {
   public:
    LockGuard(RedisSessionStore& store, std::string key, std::string token)
        : store_(store), lock_key_(std::move(key)), token_(std::move(token)) {}
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;
    ~LockGuard() {
      // After a failed call the connection is gone: do not spend another connect timeout on a
      // release; the lock lapses by itself (lock_ttl_ms).
      if (done_ || !store_.ctx_) return;
      try {
        auto r = store_.command({"EVAL", kReleaseScript, "1", lock_key_, token_}, false);
        if (!r) log_warn("could not release a session lock in Redis (it lapses by itself): " + r.error().detail);
      } catch (...) {
        // A destructor must not throw; the lock's PX lets it lapse anyway.
      }
    }
    // Runs the commit script; returns its code (1 done, 2 vanished) or an error (0: lock lost).
    Result<long long> commit(const char* mode, const std::string& value, std::int64_t ttl) {
      done_ = true;
      // Not retried on a fresh connection: if the first attempt ran, a retry would see the lock
      // gone and report a loss that did not happen.
      auto r = store_.command({"EVAL", kCommitScript, "2", lock_key_, store_.session_key_of_lock(lock_key_), token_,
                               mode, value, std::to_string(ttl)},
                              false);
      if (!r) return r.error();
      if ((*r)->type != REDIS_REPLY_INTEGER) return store_.unexpected("EVAL commit", r->get());
      if ((*r)->integer == 0) {
        return unavailable("session lock lapsed before the update was written (it took longer than " +
                           std::to_string(store_.opt_.lock_ttl_ms) + " ms); nothing was written");
      }
      return (*r)->integer;
    }

   private:
    RedisSessionStore& store_;
    std::string lock_key_;
    std::string token_;
    bool done_ = false;
  };

  // A recently loaded session: its Redis key (saves hashing the id again), the record's bytes as last
  // read, and what they opened to (nullopt: they did not open).
  struct Decoded {
    std::string key;
    std::string blob;
    std::optional<Session> session;
  };

  // The cache entry of this id, new and empty when absent. Bounded: when full it starts over (a busy
  // session is back after one miss).
  Decoded& decoded_for(const std::string& id) {
    auto hit = decoded_.find(id);
    if (hit != decoded_.end()) return hit->second;
    if (decoded_.size() >= kDecodedCacheSize) decoded_.clear();
    Decoded& d = decoded_[id];
    d.key = session_key(id);
    return d;
  }

  static constexpr std::size_t kDecodedCacheSize = 32;
  std::unordered_map<std::string, Decoded> decoded_;

  std::string session_key(const std::string& id) const { return opt_.key_prefix + "s:" + session_id_hash(id); }
  std::string lock_key(const std::string& id) const { return opt_.key_prefix + "l:" + session_id_hash(id); }
  std::string session_key_of_lock(const std::string& lock) const {
    return opt_.key_prefix + "s:" + lock.substr(opt_.key_prefix.size() + 2);
  }

  // Milliseconds the record may live, counted from `ref` (the caller's now): until the idle
  // timeout or the absolute lifetime, whichever comes first. 0: no limit; negative: already over.
  std::int64_t ttl_ms(const Session& s, std::int64_t ref) const {
    std::int64_t ttl = std::numeric_limits<std::int64_t>::max();
    bool limited = false;
    if (opt_.limits.idle_timeout > 0) {
      ttl = std::min(ttl, s.last_used + opt_.limits.idle_timeout - ref);
      limited = true;
    }
    if (opt_.limits.max_age > 0) {
      ttl = std::min(ttl, s.created + opt_.limits.max_age - ref);
      limited = true;
    }
    if (!limited) return 0;
    if (ttl <= 0) return -1;
    return ttl * 1000;
  }

  std::optional<Session> decode(const std::string& blob, const std::string& id) const {
    auto r = open_session(blob, key_, id);
    if (!r) {
      // Wrong secret on this server, tampering, or a record of another format: no session.
      log_warn("session record in Redis ignored: " + r.error().detail);
      return std::nullopt;
    }
    return std::move(r).value();
  }

  Error unexpected(const std::string& what, const redisReply* r) const {
    std::string text = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                                    : "reply of type " + std::to_string(r->type);
    return unavailable("Redis at " + where_ + " answered " + what + " with " + text);
  }

  // Waits for the session's lock: polls with growing small sleeps, in total at most lock_wait_ms.
  Result<std::string> acquire(const std::string& id) { return acquire_key(lock_key(id), opt_.lock_ttl_ms, opt_.lock_wait_ms); }

  Result<std::string> acquire_key(const std::string& lk, int ttl_ms, int wait_ms) {
    const std::string token = hex_encode(random_.bytes(16));
    int waited = 0, step = 2;
    for (;;) {
      auto r = command({"EVAL", kAcquireScript, "1", lk, token, std::to_string(ttl_ms)}, true);
      if (!r) return r.error();
      if ((*r)->type != REDIS_REPLY_INTEGER) return unexpected("EVAL acquire", r->get());
      if ((*r)->integer == 1) return token;
      if (waited >= wait_ms) return unavailable("session is locked by another request");
      const int nap = std::min(step, wait_ms - waited);
      opt_.sleep(nap);
      waited += nap;
      step = std::min(step * 2, 50);
    }
  }

  // (Re)connects: TCP or unix socket with the connect timeout, then the command timeout, AUTH,
  // SELECT and a PING. `fatal` says Redis answered and refused (wrong password, bad db): retrying
  // will not help, so open reports it; a network failure is not fatal.
  Result<void> connect(bool& fatal) {
    fatal = false;
    ctx_.reset();
    const timeval ct = to_timeval(opt_.connect_timeout_ms);
    ContextPtr c(addr_.unix_path.empty() ? redisConnectWithTimeout(addr_.host.c_str(), addr_.port, ct)
                                         : redisConnectUnixWithTimeout(addr_.unix_path.c_str(), ct));
    if (!c) return unavailable("cannot allocate a Redis connection");
    if (c->err) return unavailable("cannot reach Redis at " + where_ + ": " + c->errstr);
    if (redisSetTimeout(c.get(), to_timeval(opt_.command_timeout_ms)) != REDIS_OK) {
      return unavailable("cannot set the Redis command timeout: " + std::string(c->errstr));
    }
    auto step = [&](const std::vector<std::string>& argv, const char* what) -> Result<void> {
      ReplyPtr rep = run(c.get(), argv);
      if (!rep) return unavailable("Redis at " + where_ + " did not answer " + what + ": " + c->errstr);
      if (rep->type == REDIS_REPLY_ERROR) {
        fatal = true;
        std::string text(rep->str, rep->len);
        std::string hint;
        if (text.rfind("NOAUTH", 0) == 0) hint = " (it needs a password: redis://:PASSWORD@host:port or unix:/path?password=PASSWORD)";
        if (text.rfind("WRONGPASS", 0) == 0 || text.find("invalid password") != std::string::npos) hint = " (check the password in KINDE_SESSION_STORE)";
        return unavailable("Redis at " + where_ + " refused " + what + ": " + text + hint);
      }
      return Ok{};
    };
    if (!addr_.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!addr_.user.empty()) auth.push_back(addr_.user);
      auth.push_back(addr_.password);
      if (auto r = step(auth, "AUTH"); !r) return r;
    }
    if (addr_.db != 0) {
      if (auto r = step({"SELECT", std::to_string(addr_.db)}, "SELECT"); !r) return r;
    }
    if (auto r = step({"PING"}, "PING"); !r) return r;
    ctx_ = std::move(c);
    return Ok{};
  }

  static ReplyPtr run(redisContext* c, const std::vector<std::string>& argv) {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
  }

  // Runs one command on the process's connection, connecting first when there is none. A failed
  // connection is dropped so the next call reconnects. `retry`: the command is safe to repeat, so
  // when it fails on a connection from an earlier call (Redis restarted, or closed it as idle) it
  // is tried once more on a fresh one.
  Result<ReplyPtr> command(const std::vector<std::string>& argv, bool retry) {
    for (int attempt = 0;; ++attempt) {
      const bool reused = ctx_ != nullptr;
      if (!ctx_) {
        bool fatal = false;
        if (auto r = connect(fatal); !r) return r.error();
      }
      ReplyPtr rep = run(ctx_.get(), argv);
      if (rep) return rep;
      const int err = ctx_->err, sys = errno;
      const std::string text = ctx_->errstr;
      ctx_.reset();
      const bool dropped = err == REDIS_ERR_EOF || (err == REDIS_ERR_IO && (sys == ECONNRESET || sys == EPIPE));
      if (retry && reused && dropped && attempt == 0) continue;
      const bool timed_out = err == REDIS_ERR_IO && (sys == EAGAIN || sys == EWOULDBLOCK);
      return unavailable("Redis at " + where_ + (timed_out ? " did not answer in time" : " failed") + " (" +
                         argv[0] + "): " + text);
    }
  }

  friend class LockGuard;

  RedisStoreOptions opt_;
  RedisAddress addr_;
  std::string key_;
  Random& random_;
  std::string where_;
  ContextPtr ctx_;
  std::string gc_cursor_ = "0";
};

// The provider cache in Redis: one key with the document, one lock key; a lock that cannot be had in
// time (or Redis down) is a no-op, as for the file cache: the cache is an optimisation.
class RedisProviderCache : public ProviderCache {
 public:
  RedisProviderCache(RedisSessionStore& store, int lock_ttl_ms)
      : store_(store), key_(store.key_prefix() + "provider"), lock_key_(store.key_prefix() + "provider-lock"),
        lock_ttl_ms_(lock_ttl_ms) {}

  std::string read() override {
    auto r = store_.shared_command({"GET", key_});
    if (!r || (*r)->type != REDIS_REPLY_STRING) return {};
    return std::string((*r)->str, (*r)->len);
  }

  void write(const std::string& text) override {
    // Kept a while past the discovery TTL, so an abandoned prefix does not keep it for ever.
    auto r = store_.shared_command({"SET", key_, text, "PX", std::to_string(kKeepMs)});
    if (!r) log_warn("provider cache not written to Redis: " + r.error().detail);
  }

  std::unique_ptr<ProviderCacheLock> lock() override {
    auto token = store_.lock_key_for(lock_key_, lock_ttl_ms_);
    if (!token) {
      log_warn("provider cache lock not taken: " + token.error().detail);
      return nullptr;
    }
    return std::make_unique<Held>(store_, lock_key_, *token);
  }

 private:
  static constexpr std::int64_t kKeepMs = 2LL * 24 * 3600 * 1000;

  class Held : public ProviderCacheLock {
   public:
    Held(RedisSessionStore& store, std::string key, std::string token)
        : store_(store), key_(std::move(key)), token_(std::move(token)) {}
    ~Held() override {
      // Compare-and-delete: a lock that lapsed and was taken by another process stays theirs.
      try {
        (void)store_.shared_command({"EVAL", kReleaseScript, "1", key_, token_});
      } catch (...) {
      }
    }

   private:
    RedisSessionStore& store_;
    std::string key_, token_;
  };

  RedisSessionStore& store_;
  std::string key_, lock_key_;
  int lock_ttl_ms_;
};

}  // namespace

std::unique_ptr<ProviderCache> make_redis_provider_cache(SessionStore& store, int lock_ttl_ms) {
  auto* redis = dynamic_cast<RedisSessionStore*>(&store);
  if (!redis) return nullptr;
  return std::make_unique<RedisProviderCache>(*redis, lock_ttl_ms);
}

std::string redis_session_key(const std::string& prefix, const std::string& id) {
  return prefix + "s:" + session_id_hash(id);
}

Result<std::unique_ptr<SessionStore>> open_redis_session_store(const RedisStoreOptions& options, Random& random) {
  if (options.secret.empty()) {
    return make_error(kSessionSecretRequired,
                      "a Redis session store needs KINDE_SESSION_SECRET, the same on every server that shares it "
                      "(each would otherwise make its own key and reject the others' sessions); "
                      "create one with: openssl rand -base64 48");
  }
  if (options.secret.size() < 32) {
    return make_error(kSessionSecretWeak, "KINDE_SESSION_SECRET must be at least 32 characters");
  }
  auto addr = parse_redis_url(options.url);
  if (!addr) return addr.error();
  auto store = std::make_unique<RedisSessionStore>(options, std::move(*addr), derive_session_key(options.secret), random);
  bool fatal = false;
  if (auto r = store->first_connect(fatal); !r) {
    if (fatal) return r.error();
    // Unreachable now: keep going (answering 503 meanwhile) rather than leave this process
    // broken until restarted; every call retries the connection.
    log_warn("session store: " + r.error().detail + "; requests answer 503 until it is back");
  }
  return std::unique_ptr<SessionStore>(std::move(store));
}

}  // namespace kinde
