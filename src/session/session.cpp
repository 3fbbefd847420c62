#include "session/session.hpp"

#include <map>

namespace kinde {

bool is_valid_session_id(std::string_view t) {
  if (t.size() != 43) return false;
  for (char c : t) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  // 43 base64url chars encode 256 bits; the last char carries 4 bits + 2 zero bits.
  return true;
}

Result<std::optional<Session>> update_malformed_id(const std::function<bool(std::optional<Session>&)>& fn) {
  std::optional<Session> none;
  if (fn(none) && none) return make_error(kSessionBadId, "refusing to save a malformed id");
  return std::optional<Session>{};
}

LoadedRecord to_loaded_record(Session&& s) {
  LoadedRecord out;
  if (auto rec = signed_in_from(std::move(s.data))) {
    out.record = std::make_shared<const SignedIn>(std::move(*rec));
    s.data = nlohmann::json::object();
  }
  out.session = std::move(s);
  return out;
}

Result<std::optional<LoadedRecord>> SessionStore::load_record(const std::string& id, std::int64_t now) {
  auto loaded = load(id, now);
  if (!loaded) return loaded.error();
  if (!*loaded) return std::optional<LoadedRecord>{};
  return std::optional<LoadedRecord>(to_loaded_record(std::move(**loaded)));
}

bool session_expired(const Session& s, const SessionLimits& l, std::int64_t now) {
  if (l.idle_timeout > 0 && now - s.last_used > l.idle_timeout) return true;
  if (l.max_age > 0 && now - s.created > l.max_age) return true;
  return false;
}

namespace {

class MemorySessionStore : public SessionStore {
 public:
  explicit MemorySessionStore(SessionLimits l) : limits_(l) {}

  Result<std::optional<Session>> load(const std::string& id, std::int64_t now) override {
    if (!is_valid_session_id(id)) return std::optional<Session>{};
    auto it = map_.find(id);
    if (it == map_.end()) return std::optional<Session>{};
    if (session_expired(it->second, limits_, now)) {
      map_.erase(it);
      return std::optional<Session>{};
    }
    return std::optional<Session>{it->second};
  }

  Result<void> save(const Session& s) override {
    if (!is_valid_session_id(s.id)) return make_error(kSessionBadId, "refusing to save a malformed id");
    map_[s.id] = s;
    return Ok{};
  }

  Result<std::optional<Session>> update(const std::string& id, std::int64_t now,
                                        const std::function<bool(std::optional<Session>&)>& fn) override {
    auto loaded = load(id, now);
    if (!loaded) return loaded.error();
    const std::optional<Session> before = *loaded;
    std::optional<Session> s = before;
    // fn returning false writes nothing, so the caller gets the stored state, not fn's scratch copy.
    if (!fn(s)) return before;
    if (s) {
      if (s->id != id) return make_error(kSessionBadId, "update may not change the session id (use rotate)");
      if (auto r = save(*s); !r) return r.error();
    } else if (before) {
      map_.erase(id);
    }
    return s;
  }

  Result<void> remove(const std::string& id) override {
    map_.erase(id);
    return Ok{};
  }

  Result<std::size_t> collect_expired(std::int64_t now, std::size_t budget) override {
    std::size_t n = 0;
    for (auto it = map_.begin(); it != map_.end();) {
      if (budget != 0 && n >= budget) break;
      if (session_expired(it->second, limits_, now)) {
        it = map_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

  Result<void> keep_refresh_result(const std::string& id, const std::string& spent, const nlohmann::json& result,
                                   std::int64_t now) override {
    grace_[{id, spent}] = {result, now + kRefreshGraceSeconds};
    return Ok{};
  }

  Result<std::optional<nlohmann::json>> refresh_result(const std::string& id, const std::string& spent,
                                                       std::int64_t now) override {
    auto it = grace_.find({id, spent});
    if (it == grace_.end() || it->second.second <= now) return std::optional<nlohmann::json>{};
    return std::optional<nlohmann::json>{it->second.first};
  }


 private:
  SessionLimits limits_;
  // (session id, spent refresh token) -> (result, expires_at); a test store, so kept in clear.
  std::map<std::pair<std::string, std::string>, std::pair<nlohmann::json, std::int64_t>> grace_;
  std::map<std::string, Session> map_;
};

}  // namespace

std::unique_ptr<SessionStore> make_memory_session_store(SessionLimits limits) {
  return std::make_unique<MemorySessionStore>(limits);
}

}  // namespace kinde
