// Session value and the SessionStore interface (load, save, update under lock, remove, rotate, collect).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "session/record.hpp"
#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kSealedInvalid = "sealed_invalid";  // error code
inline constexpr const char* kSessionBadId = "session_bad_id";  // error code
inline constexpr const char* kSessionDirUnsafe = "session_dir_unsafe";  // error code
inline constexpr const char* kSessionKeyUnavailable = "session_key_unavailable";  // error code
inline constexpr const char* kSessionKeyUnsafe = "session_key_unsafe";  // error code
inline constexpr const char* kSessionRecordInvalid = "session_record_invalid";  // error code
inline constexpr const char* kSessionSecretRequired = "session_secret_required";  // error code
inline constexpr const char* kSessionSecretWeak = "session_secret_weak";  // error code
inline constexpr const char* kSessionStoreBadUrl = "session_store_bad_url";  // error code
inline constexpr const char* kSessionStoreUnavailable = "session_store_unavailable";  // error code
inline constexpr const char* kSessionStoreUnsupported = "session_store_unsupported";  // error code

// Session id: 32 random bytes as base64url (43 chars, [A-Za-z0-9_-]).
// True when text has exactly that shape; anything else is "no session" and never reaches a store.
bool is_valid_session_id(std::string_view text);

struct Session {
  std::string id;                                   // see is_valid_session_id
  std::int64_t created = 0;                         // Unix seconds
  std::int64_t last_used = 0;                       // Unix seconds
  nlohmann::json data = nlohmann::json::object();   // tokens, user details, claims
};

// A loaded session with its signed-in record decoded: `session` holds id, created and last_used (its data is
// empty when `record` is set), `record` the signed-in record, null when the session holds none. The record is
// immutable and may be shared: a store that caches decoded records hands out the same one for the same stored
// bytes, so a caller can keep it (or anything derived from it, keyed by the pointer) for as long as it holds it.
struct LoadedRecord {
  Session session;
  std::shared_ptr<const SignedIn> record;
};

struct SessionLimits {
  std::int64_t idle_timeout = 3600;   // seconds since last_used
  std::int64_t max_age = 86400;       // seconds since created
};

// True when the session is past its idle timeout or absolute lifetime at `now`.
bool session_expired(const Session& s, const SessionLimits& limits, std::int64_t now);

// How long a refresh result is kept for requests still holding the refresh token it spent
// (mod_auth_openidc keeps its refresh results 30 s too).
inline constexpr std::int64_t kRefreshGraceSeconds = 30;

// Error codes a store returns: "session_store_unavailable" (disk full, unwritable, Redis down:
// the app answers 503), "session_store_corrupt" is never returned (a bad record reads as absent).
class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // The session with this id, or nullopt when absent, expired (then removed), torn, tampered or
  // of a foreign format. Does not touch last_used.
  virtual Result<std::optional<Session>> load(const std::string& id, std::int64_t now) = 0;

  // load() with the signed-in record decoded (see LoadedRecord); the same checks (expiry, idle timeout, tamper)
  // apply. This default decodes on every call; the file store reuses the record of identical stored bytes.
  virtual Result<std::optional<LoadedRecord>> load_record(const std::string& id, std::int64_t now);

  // Writes the session atomically (readers see the old or the new version, never a mix).
  virtual Result<void> save(const Session& session) = 0;

  // Read-modify-write under an exclusive lock across processes: loads the session (nullopt if
  // absent/expired), calls fn; if fn returns true the (possibly changed) session is saved, and if
  // fn sets the optional to nullopt the session is removed. Returns the session as stored after the
  // call (fn returning false writes nothing and gets the loaded session back). fn may not change the
  // id (Error "session_bad_id"; a new sign-in saves a new session) and may not call the store for the same id (the
  // file store holds its lock: that would deadlock).
  virtual Result<std::optional<Session>> update(
      const std::string& id, std::int64_t now,
      const std::function<bool(std::optional<Session>&)>& fn) = 0;

  // Deletes the session; absent is not an error.
  virtual Result<void> remove(const std::string& id) = 0;

  // Removes up to `budget` expired sessions (budget 0 = no limit); returns how many were removed.
  virtual Result<std::size_t> collect_expired(std::int64_t now, std::size_t budget) = 0;

  // Keeps a refresh's result (the session data it wrote: tokens, user, claims) for
  // kRefreshGraceSeconds from `now`, sealed like a session record and named by a hash of the refresh
  // token it spent (never the token): a request of the same session still holding that token adopts
  // it instead of spending the token again. May be called inside update(). Errors as save().
  virtual Result<void> keep_refresh_result(const std::string& session_id, const std::string& spent_refresh_token,
                                           const nlohmann::json& result, std::int64_t now) = 0;

  // The result kept for this session and spent refresh token; nullopt when none, expired or unreadable.
  // May be called inside update().
  virtual Result<std::optional<nlohmann::json>> refresh_result(const std::string& session_id,
                                                               const std::string& spent_refresh_token,
                                                               std::int64_t now) = 0;

  // Whether the store answers now (--check-config). Stores without a server always do.
  virtual Result<void> ping() { return Ok{}; }
};

// A LoadedRecord made from a loaded session: its data decoded into a new record (moved out of the data).
LoadedRecord to_loaded_record(Session&& s);

// In-memory store for handler tests (single process; locking is trivial).
std::unique_ptr<SessionStore> make_memory_session_store(SessionLimits limits);

// update() for an id of the wrong shape, the same in every store: fn sees no session, and asking to
// create one under that id is refused (Error kSessionBadId); nothing is read or written.
Result<std::optional<Session>> update_malformed_id(const std::function<bool(std::optional<Session>&)>& fn);

}  // namespace kinde
