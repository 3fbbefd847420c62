// The flat-file SessionStore: one encrypted file per session under a 0700 directory, shared safely
// by several FastCGI or CGI processes (atomic rename, fcntl locks, bounded garbage collection).
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "session/session.hpp"
#include "util/random.hpp"
#include "util/result.hpp"

namespace kinde {

// The file-system calls the store makes, so tests can inject faults (ENOSPC, EDQUOT, EACCES) and
// count calls. Each method behaves like the POSIX call of the same name: -1 with errno on failure.
// The base class performs the real calls; override only what a test needs.
class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual int open(const char* path, int flags, mode_t mode);
  virtual ssize_t read(int fd, void* buf, std::size_t n);
  virtual ssize_t write(int fd, const void* buf, std::size_t n);
  virtual int fsync(int fd);
  virtual int close(int fd);
  virtual int rename(const char* from, const char* to);
  virtual int link(const char* from, const char* to);
  virtual int unlink(const char* path);
  virtual int mkdir(const char* path, mode_t mode);
  virtual int fstat(int fd, struct stat* st);
  // lstat: never follows a final symlink.
  virtual int lstat(const char* path, struct stat* st);
  // stat: follows symlinks (used for the session directory itself only).
  virtual int stat(const char* path, struct stat* st);
  // An fcntl write lock on the whole file (open-file-description lock where the kernel has them);
  // wait=false fails with EAGAIN/EACCES when another holder has it.
  virtual int lock(int fd, bool wait);
  // Names in a directory except "." and "..": 0, or -1 with errno.
  virtual int list_dir(const char* path, std::vector<std::string>& names);
};

struct FileStoreOptions {
  std::string dir;      // KINDE_SESSION_DIR; created (0700) when missing
  std::string secret;   // key material (>= 32 bytes): KINDE_SESSION_SECRET or the key file's content
  SessionLimits limits;
  bool fsync = true;                 // fsync each record before it is renamed into place
  std::size_t gc_examine_limit = 64; // files examined by one bounded collect_expired call (budget != 0)
  std::int64_t stray_temp_age = 300; // seconds after which collect_expired deletes a left-over temp file
  std::shared_ptr<FileOps> ops;      // null: the real file system
};

// Creates the dir (0700) when missing; refuses (Error "session_dir_unsafe") when it is writable by
// group/others or owned by another uid, ("session_secret_required") without options.secret,
// ("session_secret_weak") when it is shorter than 32 bytes, ("session_store_unavailable") when the
// dir cannot be created or written. `random` must outlive the store.
Result<std::unique_ptr<SessionStore>> open_file_session_store(const FileStoreOptions& options, Random& random);

// The generated session key, kept apart from the session data (KINDE_SESSION_KEY_FILE).
struct SessionKeyFileOptions {
  std::string path;          // the key file: read when present (never rewritten), else created 0600
  std::string legacy_path;   // where older versions kept it (<session dir>/.secret): moved to path
  bool dry_run = false;      // --check-config: change nothing, say what a start would do
  std::shared_ptr<FileOps> ops;  // null: the real file system
};

struct SessionKeyFile {
  std::string material;      // the key material (>= 32 bytes)
  std::string path;          // the file it came from (legacy_path while a move is impossible)
  std::string note;          // "" (found), "created", "moved from <legacy>", or a warning for the log
  bool warning = false;      // note is a warning: the key is still at the legacy place, or a stray copy is left
};

// Reads the key file, checked like the session directory (owned by the app's user, no access for
// group or others: Error "session_key_unsafe"); when it is missing, moves a key found at
// legacy_path there (so sessions sealed under it still open), or creates one (48 random bytes).
// Two processes starting at once agree on one key (link() refuses an existing name). When the move
// is impossible (the key's folder is not writable) the legacy key is used and `warning` is set, so
// nobody is signed out. Errors: "session_key_unsafe", "session_key_unavailable" (cannot read or
// create it; the detail says how to create it by hand).
Result<SessionKeyFile> load_or_create_session_key(const SessionKeyFileOptions& options, Random& random);

// Path of the file holding the session with this id (dir/<hash[0..2]>/<hash>); for tests and tools.
std::string session_file_path(const std::string& dir, const std::string& id);

}  // namespace kinde
