#include "session/file_setup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>

#include "session/file_io.hpp"
#include "util/encoding.hpp"
#include "util/log.hpp"

namespace kinde {
namespace fileio {

Result<void> make_dirs(FileOps& ops, const std::string& dir) {
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    const bool last = pos == std::string::npos;
    if (ops.mkdir(partial.c_str(), last ? 0700 : 0755) != 0 && errno != EEXIST) {
      return unavailable(errno, "creating session directory", partial);
    }
  }
  return Ok{};
}

Result<void> check_owner_and_mode(const struct stat& st, const std::string& what, mode_t forbidden,
                                  const char* forbidden_text) {
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    return make_error(kSessionDirUnsafe, what + " is owned by uid " + std::to_string(st.st_uid) +
                                                " but the app runs as uid " + std::to_string(me));
  }
  if ((st.st_mode & forbidden) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(kSessionDirUnsafe, what + " is " + forbidden_text + " (mode " + mode + "); chmod " +
                                                (S_ISDIR(st.st_mode) ? "700 " : "600 ") + what);
  }
  return Ok{};
}

Result<void> probe_writable(FileOps& ops, Random& random, const std::string& dir) {
  const std::string tmp = dir + "/" + std::string(kTempPrefix) + "probe-" + hex_encode(random.bytes(8));
  int raw = ops.open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return unavailable(errno, "writing in session directory", dir);
  ops.close(raw);
  if (ops.unlink(tmp.c_str()) != 0) return unavailable(errno, "removing a file in session directory", dir);
  return Ok{};
}

}  // namespace fileio

using namespace fileio;

namespace {

constexpr std::size_t kSecretSize = 48;

Error key_unavailable(int e, const std::string& action, const std::string& where) {
  return make_error(kSessionKeyUnavailable, errno_text(e) + " " + action + " (" + where + ")");
}

// The key in the file at path, checked like the session directory; nullopt when there is none.
Result<std::optional<std::string>> read_key_file(FileOps& ops, const std::string& path) {
  int raw = ops.open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (raw < 0) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return key_unavailable(errno, "opening session key", path);
  }
  Fd fd(&ops, raw);
  struct stat st {};
  if (ops.fstat(raw, &st) != 0) return key_unavailable(errno, "reading session key", path);
  if (!S_ISREG(st.st_mode)) return make_error(kSessionKeyUnavailable, path + " is not a regular file");
  if (auto r = check_owner_and_mode(st, path, 077, "readable or writable by group or others"); !r) {
    return make_error(kSessionKeyUnsafe, r.error().detail);
  }
  std::string key;
  if (read_all(ops, raw, key) != 0) return key_unavailable(errno, "reading session key", path);
  if (key.size() < 32) {
    return make_error(kSessionKeyUnavailable, path + " holds " + std::to_string(key.size()) +
                                                     " bytes, fewer than 32; delete it to create a new one (all sessions end)");
  }
  return std::optional<std::string>(std::move(key));
}

// A new file at path holding material (0600), written whole before it gets its name: link() of a
// synced temp file, which fails with EEXIST when path exists. 0 on success, else the errno.
int create_key_file(FileOps& ops, Random& random, const std::string& path, const std::string& material) {
  const std::string tmp = parent_dir(path) + "/" + std::string(kTempPrefix) + "key-" + hex_encode(random.bytes(8));
  int wraw = ops.open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (wraw < 0) return errno;
  Fd fd(&ops, wraw);
  if (write_all(ops, wraw, material) != 0 || ops.fsync(wraw) != 0 || fd.close() != 0) {
    const int e = errno;
    fd.close();
    ops.unlink(tmp.c_str());
    return e;
  }
  const int rc = ops.link(tmp.c_str(), path.c_str());
  const int e = errno;
  ops.unlink(tmp.c_str());
  return rc == 0 ? 0 : e;
}


// An existing key file is used as it is, never rewritten (a package may have made it). A copy left
// at the legacy place is removed when it is the same key, and reported when it is another one.
SessionKeyFile use_existing_key(FileOps& ops, const SessionKeyFileOptions& o, std::string material) {
  SessionKeyFile k{std::move(material), o.path, "", false};
  if (o.legacy_path.empty()) return k;
  auto old = read_key_file(ops, o.legacy_path);
  if (old && *old && **old == k.material) {
    // A move cut short between link and unlink: finish it.
    if (o.dry_run) k.note = "the old copy at " + o.legacy_path + " is removed at the next start";
    else if (ops.unlink(o.legacy_path.c_str()) == 0) k.note = "removed the old copy at " + o.legacy_path;
  } else if (!old || *old) {
    k.warning = true;
    k.note = text({o.legacy_path, " holds another session key, unused since ", o.path,
                   " exists; delete it (whoever reads it can open sessions sealed under it)"});
  }
  return k;
}

// Moves the key older versions kept in the session directory to o.path, so its sessions still open.
// nullopt when another process created the key file meanwhile (read that one).
std::optional<SessionKeyFile> move_legacy_key(FileOps& ops, Random& random, const SessionKeyFileOptions& o,
                                              std::string old) {
  int e = ops.link(o.legacy_path.c_str(), o.path.c_str()) == 0 ? 0 : errno;
  if (e == EXDEV) e = create_key_file(ops, random, o.path, old);  // another file system: copy
  if (e == 0) {
    if (ops.unlink(o.legacy_path.c_str()) != 0 && errno != ENOENT)
      log_warn(text({"could not remove ", o.legacy_path, " after moving it to ", o.path, ": ", errno_text(errno)}));
    return SessionKeyFile{std::move(old), o.path, "moved from " + o.legacy_path, false};
  }
  if (e == EEXIST) return std::nullopt;
  // The key's folder is not writable by the app: keep the old place rather than sign anyone out.
  return SessionKeyFile{std::move(old), o.legacy_path,
                        text({"the session key is still in the session directory (", o.legacy_path, "): moving it to ",
                              o.path, " failed (", errno_text(e), "); move it as the app's user: mv ", o.legacy_path,
                              " ", o.path}),
                        true};
}

}  // namespace

Result<SessionKeyFile> load_or_create_session_key(const SessionKeyFileOptions& options, Random& random) {
  std::shared_ptr<FileOps> ops = options.ops ? options.ops : std::make_shared<FileOps>();
  const std::string& path = options.path;
  const std::string& legacy = options.legacy_path;
  if (path.empty()) return make_error(kSessionKeyUnavailable, "no session key file configured");
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto found = read_key_file(*ops, path);
    if (!found) return found.error();
    if (*found) return use_existing_key(*ops, options, std::move(**found));
    // No key file. A key where older versions kept it moves here, so its sessions still open.
    std::optional<std::string> old;
    if (!legacy.empty()) {
      auto r = read_key_file(*ops, legacy);
      if (!r) return r.error();
      old = std::move(*r);
    }
    if (old && options.dry_run) {
      return SessionKeyFile{std::move(*old), legacy,
                            text({"found at ", legacy, "; the app moves it to ", path, " when it next starts"}), false};
    }
    if (options.dry_run) {
      return SessionKeyFile{random.bytes(kSecretSize), path, "does not exist yet; the app creates it when it first starts",
                            false};
    }
    if (old) {
      if (auto moved = move_legacy_key(*ops, random, options, std::move(*old))) return std::move(*moved);
      continue;  // another process moved or created it meanwhile: read that one
    }
    const std::string material = random.bytes(kSecretSize);
    const int e = create_key_file(*ops, random, path, material);
    if (e == 0) return SessionKeyFile{material, path, "created", false};
    if (e == EEXIST) continue;
    return make_error(kSessionKeyUnavailable,
                      text({errno_text(e), " creating session key ", path, "; create it as the app's user with ",
                            "(umask 077; openssl rand -base64 48 > ", path, "), or set KINDE_SESSION_SECRET"}));
  }
  return make_error(kSessionKeyUnavailable, "session key " + path + " kept appearing and vanishing");
}

}  // namespace kinde
