#include "session/file_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "session/file_io.hpp"
#include "session/file_setup.hpp"
#include "session/sealed.hpp"
#include "util/log.hpp"
#include "util/url.hpp"
#include "util/encoding.hpp"

namespace kinde {

// ---- FileOps: the real calls -------------------------------------------------------------------

int FileOps::open(const char* path, int flags, mode_t mode) {
  int fd;
  do fd = ::open(path, flags, mode); while (fd == -1 && errno == EINTR);
  return fd;
}
ssize_t FileOps::read(int fd, void* buf, std::size_t n) { return ::read(fd, buf, n); }
ssize_t FileOps::write(int fd, const void* buf, std::size_t n) { return ::write(fd, buf, n); }
int FileOps::fsync(int fd) { return ::fsync(fd); }
int FileOps::close(int fd) { return ::close(fd); }
int FileOps::rename(const char* from, const char* to) { return ::rename(from, to); }
int FileOps::link(const char* from, const char* to) { return ::link(from, to); }
int FileOps::unlink(const char* path) { return ::unlink(path); }
int FileOps::mkdir(const char* path, mode_t mode) { return ::mkdir(path, mode); }
int FileOps::fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
int FileOps::lstat(const char* path, struct stat* st) { return ::lstat(path, st); }
int FileOps::stat(const char* path, struct stat* st) { return ::stat(path, st); }

int FileOps::lock(int fd, bool wait) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  // Open-file-description locks belong to the descriptor, not the process: closing some other
  // descriptor of the same file cannot drop them, and two stores in one process exclude each other.
#ifdef F_OFD_SETLKW
  const int cmd = wait ? F_OFD_SETLKW : F_OFD_SETLK;
#else
  const int cmd = wait ? F_SETLKW : F_SETLK;
#endif
  int rc;
  do rc = ::fcntl(fd, cmd, &fl); while (rc == -1 && errno == EINTR);
  return rc;
}

int FileOps::list_dir(const char* path, std::vector<std::string>& names) {
  DIR* d = ::opendir(path);
  if (!d) return -1;
  std::unique_ptr<DIR, int (*)(DIR*)> owner(d, &::closedir);
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  return errno == 0 ? 0 : -1;
}

using namespace fileio;

namespace {

constexpr const char* kShardLockName = ".lock";
// Refresh results kept for the grace period: <shard>/.grace-<name> (a dot name: not a session record).
constexpr std::string_view kGracePrefix = ".grace-";
constexpr int kLockAttempts = 64;
constexpr int kShards = 256;



bool is_hash_name(std::string_view name) {
  if (name.size() != 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string trim_dir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string shard_name(int i) { return hex_encode(std::string(1, static_cast<char>(i))); }

// True when fd still refers to the file at path (it was not replaced or removed meanwhile).
bool same_file(FileOps& ops, int fd, const std::string& path) {
  struct stat a {}, b {};
  if (ops.fstat(fd, &a) != 0 || ops.lstat(path.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

class FileSessionStore : public SessionStore {
 public:
  // A decoded record file: its exact bytes, the session they hold and, once asked for, its signed-in record.
  struct Decoded {
    std::string blob;
    Session session;
    std::shared_ptr<const SignedIn> record;  // null until load_record() first asks (or when not signed in)
    bool record_done = false;
  };

  FileSessionStore(const FileStoreOptions& o, std::shared_ptr<FileOps> ops, std::string key, Random& random,
                   int start_shard)
      : opt_(o), dir_(trim_dir(o.dir)), ops_(std::move(ops)), key_(std::move(key)), random_(random),
        cursor_shard_(start_shard) {}

  Result<std::optional<Session>> load(const std::string& id, std::int64_t now) override {
    auto d = read_current(id, now);
    if (!d) return d.error();
    if (!*d) return std::optional<Session>{};
    return std::optional<Session>((*d)->session);
  }

  Result<std::optional<LoadedRecord>> load_record(const std::string& id, std::int64_t now) override {
    auto d = read_current(id, now);
    if (!d) return d.error();
    if (!*d) return std::optional<LoadedRecord>{};
    Decoded& e = **d;
    // Decoded once per distinct record bytes; later requests with the same bytes share it.
    if (!e.record_done) {
      if (auto rec = signed_in_from(e.session.data)) e.record = std::make_shared<const SignedIn>(std::move(*rec));
      e.record_done = true;
    }
    LoadedRecord out;
    out.session.id = e.session.id;
    out.session.created = e.session.created;
    out.session.last_used = e.session.last_used;
    if (e.record) {
      out.record = e.record;
    } else {
      out.session.data = e.session.data;
    }
    return std::optional<LoadedRecord>(std::move(out));
  }

  // The cache entry of the session's current record file; null when absent, expired (then removed),
  // a symlink, torn or tampered.
  Result<Decoded*> read_current(const std::string& id, std::int64_t now) {
    // A malformed cookie never reaches the file system.
    if (!is_valid_session_id(id)) return static_cast<Decoded*>(nullptr);
    const Paths p = paths_for(id);
    int raw = ops_->open(p.file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (raw < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return static_cast<Decoded*>(nullptr);
      if (errno == ELOOP) {
        log_warn("session file " + p.file + " is a symlink; ignored");
        return static_cast<Decoded*>(nullptr);
      }
      return unavailable(errno, "reading session", p.shard);
    }
    Fd fd(ops_.get(), raw);
    std::string blob;
    if (read_all(*ops_, fd.get(), blob) != 0) return unavailable(errno, "reading session", p.shard);
    fd.close();
    Decoded* d = decoded(blob, id, p);
    if (!d) return static_cast<Decoded*>(nullptr);
    if (session_expired(d->session, opt_.limits, now)) {
      // Removal re-checks under the lock: an update may have replaced the file since we read it.
      if (auto r = remove_if_expired(p, id, now); !r) {
        log_warn("could not remove expired session file " + p.file + ": " + r.error().detail);
      }
      return static_cast<Decoded*>(nullptr);
    }
    return d;
  }

  Result<void> save(const Session& s) override {
    if (!is_valid_session_id(s.id)) return make_error(kSessionBadId, "refusing to save a malformed id");
    const Paths p = paths_for(s.id);
    const std::string blob = seal_session(s, key_, random_);
    auto guard = acquire(p);
    if (!guard) return guard.error();
    return write_record(p, blob);
  }

  Result<std::optional<Session>> update(const std::string& id, std::int64_t now,
                                        const std::function<bool(std::optional<Session>&)>& fn) override {
    if (!is_valid_session_id(id)) return update_malformed_id(fn);
    const Paths p = paths_for(id);
    auto guard = acquire(p);
    if (!guard) return guard.error();
    std::optional<Session> current;
    bool stale = false;  // a file is there but holds an expired session
    if (guard->on_file) {
      std::string blob;
      if (read_all(*ops_, guard->fd.get(), blob) != 0) return unavailable(errno, "reading session", p.shard);
      current = decode(blob, id, p);
      if (current && session_expired(*current, opt_.limits, now)) {
        current.reset();
        stale = true;
      }
    }
    std::optional<Session> next = current;
    if (!fn(next)) {
      if (stale) unlink_logged(p.file);
      return current;
    }
    if (next) {
      if (next->id != id) return make_error(kSessionBadId, "update may not change the session id (use rotate)");
      const std::string blob = seal_session(*next, key_, random_);
      if (auto r = write_record(p, blob); !r) return r.error();
      return next;
    }
    if (guard->on_file && ops_->unlink(p.file.c_str()) != 0 && errno != ENOENT) {
      return unavailable(errno, "removing session", p.shard);
    }
    return std::optional<Session>{};
  }

  Result<void> remove(const std::string& id) override {
    if (!is_valid_session_id(id)) return Ok{};
    const Paths p = paths_for(id);
    auto guard = acquire(p);
    if (!guard) return guard.error();
    if (guard->on_file && ops_->unlink(p.file.c_str()) != 0 && errno != ENOENT) {
      return unavailable(errno, "removing session", p.shard);
    }
    return Ok{};
  }

  Result<std::size_t> collect_expired(std::int64_t now, std::size_t budget) override {
    // Random start (each process sweeps different shards first), drawn once, on first use.
    if (cursor_shard_ < 0) cursor_shard_ = static_cast<unsigned char>(random_.bytes(1)[0]);
    std::size_t removed = 0;
    if (budget == 0) {
      for (int i = 0; i < kShards; ++i) {
        auto r = sweep_shard(i, now, "", SIZE_MAX, SIZE_MAX, removed);
        if (!r) return r.error();
      }
      return removed;
    }
    // Bounded: resume where the last call of this process stopped, examine at most
    // gc_examine_limit entries (an empty or missing shard counts as one), stop at budget.
    const std::size_t limit = std::max<std::size_t>(opt_.gc_examine_limit, 1);
    std::size_t examined = 0;
    for (int visited = 0; visited <= kShards && examined < limit && removed < budget; ++visited) {
      auto r = sweep_shard(cursor_shard_, now, cursor_name_, limit - examined, budget, removed);
      if (!r) return r.error();
      examined += r->examined;
      if (r->finished) {
        cursor_shard_ = (cursor_shard_ + 1) % kShards;
        cursor_name_.clear();
      } else {
        cursor_name_ = r->last_name;
      }
    }
    return removed;
  }

  Result<void> keep_refresh_result(const std::string& id, const std::string& spent, const nlohmann::json& result,
                                   std::int64_t now) override {
    if (!is_valid_session_id(id)) return make_error(kSessionBadId, "refusing to keep a result for a malformed id");
    const Paths p = grace_paths(refresh_grace_name(spent));
    if (ops_->mkdir(p.shard.c_str(), 0700) != 0 && errno != EEXIST) return unavailable(errno, "creating session directory", p.shard);
    // Written whole and renamed into place like a session record: a reader sees none or all of it.
    return write_record(p, seal_refresh_result(result, now + kRefreshGraceSeconds, p.hash.substr(kGracePrefix.size()), id, key_, random_));
  }

  Result<std::optional<nlohmann::json>> refresh_result(const std::string& id, const std::string& spent,
                                                       std::int64_t now) override {
    if (!is_valid_session_id(id)) return std::optional<nlohmann::json>{};
    const std::string name = refresh_grace_name(spent);
    const Paths p = grace_paths(name);
    int raw = ops_->open(p.file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (raw < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return std::optional<nlohmann::json>{};
      return unavailable(errno, "reading a refresh result", p.shard);
    }
    Fd fd(ops_.get(), raw);
    std::string blob;
    if (read_all(*ops_, fd.get(), blob) != 0) return unavailable(errno, "reading a refresh result", p.shard);
    return open_refresh_result(blob, name, id, key_, now);
  }


 private:
  struct Paths {
    std::string shard;  // dir/ab
    std::string file;   // dir/ab/<hash>
    std::string hash;
  };

  // A held exclusive lock: on the session file's current inode (the file exists; fd reads it),
  // or on the shard's lock file while the session file is absent (creation is serialised there).
  struct Guard {
    Fd fd;
    bool on_file = false;
  };

  struct SweepResult {
    std::size_t examined = 0;
    bool finished = true;
    std::string last_name;
  };

  Paths paths_for(const std::string& id) const {
    // A pure function of the id (a SHA-256 per call): the last one is kept, as a browser's requests
    // come in runs on the same process.
    if (!last_paths_id_.empty() && last_paths_id_ == id) return last_paths_;
    Paths p;
    p.hash = session_id_hash(id);
    p.shard = dir_ + "/" + p.hash.substr(0, 2);
    p.file = p.shard + "/" + p.hash;
    last_paths_id_ = id;
    last_paths_ = p;
    return p;
  }
  mutable std::string last_paths_id_;
  mutable Paths last_paths_;

  // A refresh result's file: in the shard of its name, hash = ".grace-<name>" (also names its temp file).
  Paths grace_paths(const std::string& name) const {
    Paths p;
    p.hash = std::string(kGracePrefix) + name;
    p.shard = dir_ + "/" + name.substr(0, 2);
    p.file = p.shard + "/" + p.hash;
    return p;
  }

  // The cache entry for these record bytes, decoded now or reused; null when they do not open.
  Decoded* decoded(const std::string& blob, const std::string& id, const Paths& p) const {
    // open_session is a pure function of (record, key, id): a record read before, byte for byte, is
    // reused rather than decrypted and parsed again. The file is still read every time, so a change by
    // another process is always seen, and the entry is keyed by the id's hash and compared on all its bytes.
    auto hit = decoded_.find(p.hash);
    if (hit != decoded_.end() && hit->second.blob == blob) return &hit->second;
    auto r = open_session(blob, key_, id);
    if (!r) {
      log_warn("session file " + p.file + " ignored: " + r.error().detail);
      return nullptr;
    }
    // Bounded: when full, start over (a busy session is back after one miss). A record handed out stays
    // valid: it is shared, not owned by the entry.
    if (decoded_.size() >= kDecodedCacheSize) decoded_.clear();
    Decoded& d = decoded_[p.hash];
    d = Decoded{blob, std::move(*r), nullptr, false};
    return &d;
  }

  std::optional<Session> decode(const std::string& blob, const std::string& id, const Paths& p) const {
    const Decoded* d = decoded(blob, id, p);
    if (!d) return std::nullopt;
    return d->session;
  }

  // Recently opened records by id hash.
  static constexpr std::size_t kDecodedCacheSize = 32;
  mutable std::unordered_map<std::string, Decoded> decoded_;

  void unlink_logged(const std::string& path) {
    if (ops_->unlink(path.c_str()) != 0 && errno != ENOENT) {
      log_warn("could not remove session file " + path + ": " + errno_text(errno));
    }
  }

  // Lock protocol: writers only ever replace a session file by rename while holding the lock on
  // the inode being replaced, and only create one while holding the shard lock with the file
  // absent. So after locking, re-checking that the path still names our inode (or is still
  // absent) proves nobody else is mid-way through changing it.
  Result<Guard> acquire(const Paths& p) {
    const std::string shard_lock = p.shard + "/" + kShardLockName;
    for (int attempt = 0; attempt < kLockAttempts; ++attempt) {
      int raw = ops_->open(p.file.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
      if (raw >= 0) {
        Guard g{Fd(ops_.get(), raw), true};
        if (ops_->lock(raw, true) != 0) return unavailable(errno, "locking session", p.shard);
        if (same_file(*ops_, raw, p.file)) return g;
        continue;  // replaced or removed while we waited: lock the new one
      }
      if (errno != ENOENT) return unavailable(errno, "opening session", p.shard);
      int lraw = ops_->open(shard_lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (lraw < 0 && errno == ENOENT) {
        if (ops_->mkdir(p.shard.c_str(), 0700) != 0 && errno != EEXIST) {
          return unavailable(errno, "creating session directory", p.shard);
        }
        lraw = ops_->open(shard_lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
      }
      if (lraw < 0) return unavailable(errno, "creating lock file", p.shard);
      Guard g{Fd(ops_.get(), lraw), false};
      if (ops_->lock(lraw, true) != 0) return unavailable(errno, "locking session", p.shard);
      struct stat st {};
      if (ops_->lstat(p.file.c_str(), &st) != 0) {
        if (errno == ENOENT) return g;
        return unavailable(errno, "checking session", p.shard);
      }
      // Created by someone else while we waited: go round and lock that file instead.
    }
    return make_error(kSessionStoreUnavailable, "session lock kept changing hands (" + p.shard + ")");
  }

  // Temp file in the same directory, synced, renamed into place; on any failure the temp file is
  // removed and the previous record is untouched.
  Result<void> write_record(const Paths& p, const std::string& blob) {
    const std::string tmp = p.shard + "/" + std::string(kTempPrefix) + p.hash + "-" + hex_encode(random_.bytes(8));
    int raw = ops_->open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (raw < 0) return unavailable(errno, "creating session file", p.shard);
    Fd fd(ops_.get(), raw);
    auto fail = [&](const char* action) -> Result<void> {
      const int e = errno;
      fd.close();
      ops_->unlink(tmp.c_str());
      return unavailable(e, action, p.shard);
    };
    if (write_all(*ops_, fd.get(), blob) != 0) return fail("writing session");
    if (opt_.fsync && ops_->fsync(fd.get()) != 0) return fail("writing session");
    if (fd.close() != 0) return fail("writing session");
    if (ops_->rename(tmp.c_str(), p.file.c_str()) != 0) return fail("renaming session");
    return Ok{};
  }

  Result<void> remove_if_expired(const Paths& p, const std::string& id, std::int64_t now) {
    auto guard = acquire(p);
    if (!guard) return guard.error();
    if (!guard->on_file) return Ok{};
    std::string blob;
    if (read_all(*ops_, guard->fd.get(), blob) != 0) return unavailable(errno, "reading session", p.shard);
    auto s = open_session(blob, key_, id);
    if (s && session_expired(*s, opt_.limits, now) && ops_->unlink(p.file.c_str()) != 0 && errno != ENOENT) {
      return unavailable(errno, "removing session", p.shard);
    }
    return Ok{};
  }

  // Examines entries of one shard whose names sort after `after`, at most `max_examine`, removing
  // expired sessions until `removed` reaches `budget`.
  Result<SweepResult> sweep_shard(int shard, std::int64_t now, const std::string& after, std::size_t max_examine,
                                  std::size_t budget, std::size_t& removed) {
    SweepResult res;
    const std::string sdir = dir_ + "/" + shard_name(shard);
    std::vector<std::string> names;
    if (ops_->list_dir(sdir.c_str(), names) != 0) {
      res.examined = 1;
      if (errno == ENOENT) return res;
      return unavailable(errno, "listing sessions", sdir);
    }
    std::sort(names.begin(), names.end());
    auto it = after.empty() ? names.begin() : std::upper_bound(names.begin(), names.end(), after);
    if (it == names.end()) res.examined = 1;
    for (; it != names.end(); ++it) {
      if (res.examined >= max_examine || removed >= budget) {
        res.finished = false;
        return res;
      }
      ++res.examined;
      res.last_name = *it;
      const std::string path = sdir + "/" + *it;
      if (it->compare(0, kTempPrefix.size(), kTempPrefix) == 0) {
        sweep_temp(path, now);
      } else if (it->compare(0, kGracePrefix.size(), kGracePrefix) == 0) {
        sweep_grace(path, now);
      } else if (is_hash_name(*it) && sweep_session(path, now)) {
        ++removed;
      }
    }
    return res;
  }

  // A temp file survives only a writer killed between create and rename.
  void sweep_temp(const std::string& path, std::int64_t now) {
    struct stat st {};
    if (ops_->lstat(path.c_str(), &st) == 0 && now - static_cast<std::int64_t>(st.st_mtime) > opt_.stray_temp_age) {
      unlink_logged(path);
    }
  }

  // Removes a kept refresh result once its grace period is over (or, unreadable, once older than it).
  void sweep_grace(const std::string& path, std::int64_t now) {
    int raw = ops_->open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (raw < 0) return;
    Fd fd(ops_.get(), raw);
    char buf[kGraceHeaderSize];
    std::int64_t expires_at = 0;
    struct stat st {};
    const bool header = ops_->read(raw, buf, sizeof buf) == static_cast<ssize_t>(sizeof buf) &&
                        peek_refresh_result_expiry(std::string_view(buf, sizeof buf), expires_at);
    if (!header && ops_->fstat(raw, &st) == 0) expires_at = static_cast<std::int64_t>(st.st_mtime) + kRefreshGraceSeconds;
    if (expires_at != 0 && expires_at <= now) unlink_logged(path);
  }

  // Removes the session file at path when its header says it is expired. Never waits for a lock:
  // a locked session is in use, so not worth a request's time.
  bool sweep_session(const std::string& path, std::int64_t now) {
    int raw = ops_->open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (raw < 0) return false;
    Fd fd(ops_.get(), raw);
    if (ops_->lock(raw, false) != 0 || !same_file(*ops_, raw, path)) return false;
    char buf[kSealedHeaderSize];
    ssize_t n = ops_->read(raw, buf, sizeof buf);
    Session h;
    bool expired;
    if (n == static_cast<ssize_t>(sizeof buf) &&
        peek_session_header(std::string_view(buf, sizeof buf), h.created, h.last_used)) {
      expired = session_expired(h, opt_.limits, now);
    } else {
      // Not a record of ours (torn by hand, another format): garbage once older than any session.
      struct stat st {};
      const std::int64_t horizon = std::max(opt_.limits.idle_timeout, opt_.limits.max_age);
      expired = ops_->fstat(raw, &st) == 0 && now - static_cast<std::int64_t>(st.st_mtime) > horizon;
      if (expired) {
        unlink_logged(path);
        return false;  // not a session: does not count against the budget
      }
    }
    if (!expired) return false;
    if (ops_->unlink(path.c_str()) != 0) return false;
    return true;
  }

  FileStoreOptions opt_;
  std::string dir_;
  std::shared_ptr<FileOps> ops_;
  std::string key_;
  Random& random_;
  int cursor_shard_;
  std::string cursor_name_;
};

}  // namespace

std::string session_file_path(const std::string& dir, const std::string& id) {
  const std::string h = session_id_hash(id);
  return trim_dir(dir) + "/" + h.substr(0, 2) + "/" + h;
}

Result<std::unique_ptr<SessionStore>> open_file_session_store(const FileStoreOptions& options, Random& random) {
  std::shared_ptr<FileOps> ops = options.ops ? options.ops : std::make_shared<FileOps>();
  const std::string dir = trim_dir(options.dir);
  if (dir.empty()) return make_error(kSessionStoreUnavailable, "no session directory configured");
  if (options.secret.empty()) {
    // The key lives apart from the data (load_or_create_session_key), never in this directory.
    return make_error(kSessionSecretRequired, "no session key given to the file store");
  }
  if (options.secret.size() < 32) {
    return make_error(kSessionSecretWeak, "KINDE_SESSION_SECRET must be at least 32 bytes (" +
                                                 std::to_string(options.secret.size()) + " given)");
  }

  struct stat st {};
  if (ops->stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return unavailable(errno, "checking session directory", dir);
    if (auto r = make_dirs(*ops, dir); !r) return r.error();
    if (ops->stat(dir.c_str(), &st) != 0) return unavailable(errno, "checking session directory", dir);
  }
  if (!S_ISDIR(st.st_mode)) return make_error(kSessionStoreUnavailable, dir + " is not a directory");
  if (auto r = check_owner_and_mode(st, dir, 022, "writable by group or others"); !r) return r.error();

  if (auto r = probe_writable(*ops, random, dir); !r) return r.error();
  std::string key = derive_session_key(options.secret);
  // The garbage collector's first shard is drawn on its first run, not here: a plain CGI request
  // that only reads a session then never seeds OpenSSL's generator.
  return std::unique_ptr<SessionStore>(
      std::make_unique<FileSessionStore>(options, std::move(ops), std::move(key), random, -1));
}

}  // namespace kinde
