// Low-level file helpers shared by the file store and its set-up (src/session/ only): a descriptor
// that closes itself, whole reads and writes through FileOps, and error wording.
#pragma once
#include <cerrno>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "session/file_store.hpp"

namespace kinde::fileio {

// Names of temporary files in the session directory and beside the key (never a record's name).
inline constexpr std::string_view kTempPrefix = ".tmp-";

// A descriptor closed on scope exit through the store's FileOps.
class Fd {
 public:
  Fd() = default;
  Fd(FileOps* ops, int fd) : ops_(ops), fd_(fd) {}
  Fd(Fd&& o) noexcept : ops_(o.ops_), fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      ops_ = o.ops_;
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  // Closes now and reports close's own result (it can carry a deferred write error).
  int close() {
    if (fd_ < 0) return 0;
    int rc = ops_->close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  void reset() {
    if (fd_ >= 0) {
      int saved = errno;  // cleanup must not clobber the errno a caller is about to report
      ops_->close(fd_);
      errno = saved;
    }
    fd_ = -1;
  }
  FileOps* ops_ = nullptr;
  int fd_ = -1;
};

// strerror, lower-cased first letter (it goes mid-sentence).
std::string errno_text(int e);
// Reads a whole descriptor (capped just above the largest valid record); -1 with errno on error.
int read_all(FileOps& ops, int fd, std::string& out);
// Writes all of data (EINTR retried, no progress is ENOSPC); -1 with errno on error.
int write_all(FileOps& ops, int fd, std::string_view data);
// Error kSessionStoreUnavailable: "<errno text> <action> (<where>)".
Error unavailable(int e, const std::string& action, const std::string& where);
// Pieces joined into one string (one allocation, not a temporary per '+').
std::string text(std::initializer_list<std::string_view> parts);
// The folder of a path ("." without a slash, "/" at the root).
std::string parent_dir(const std::string& path);

}  // namespace kinde::fileio
