#include "oidc/provider_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace kinde {
namespace {

// An exclusive fcntl lock on <cache file>.lock for the holder's lifetime; a no-op when the lock file
// cannot be opened.
class FileCacheLock : public ProviderCacheLock {
 public:
  explicit FileCacheLock(const std::string& lock_file) {
    fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return;
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
#ifdef F_OFD_SETLKW
    const int cmd = F_OFD_SETLKW;
#else
    const int cmd = F_SETLKW;
#endif
    int rc;
    do rc = ::fcntl(fd_, cmd, &fl); while (rc == -1 && errno == EINTR);
  }
  ~FileCacheLock() override {
    if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
  }
  FileCacheLock(const FileCacheLock&) = delete;
  FileCacheLock& operator=(const FileCacheLock&) = delete;

 private:
  int fd_ = -1;
};

class FileProviderCache : public ProviderCache {
 public:
  explicit FileProviderCache(std::string path) : path_(std::move(path)) {}

  std::string read() override {
    std::ifstream in(path_);
    if (!in) return {};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void write(const std::string& text) override {
    // Written to a temporary file and renamed: a reader in another process sees old or new, whole.
    const std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) ::unlink(tmp.c_str());
  }

  std::unique_ptr<ProviderCacheLock> lock() override { return std::make_unique<FileCacheLock>(path_ + ".lock"); }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<ProviderCache> make_file_provider_cache(std::string path) {
  return std::make_unique<FileProviderCache>(std::move(path));
}

}  // namespace kinde
