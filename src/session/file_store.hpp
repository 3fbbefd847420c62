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

// Path of the file holding the session with this id (dir/<hash[0..2]>/<hash>); for tests and tools.
std::string session_file_path(const std::string& dir, const std::string& id);

}  // namespace kinde
