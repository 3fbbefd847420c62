// ProviderCache: where discovery, the JWKS and the forced-refetch time are kept between processes, so
// a new CGI or FastCGI process does not fetch them again (and never inside a refresh). Two homes: a
// file beside the sessions (file store) or a key in Redis (Redis store, shared by every server).
#pragma once
#include <memory>
#include <string>

namespace kinde {

// A held cross-process cache lock; released when destroyed.
class ProviderCacheLock {
 public:
  virtual ~ProviderCacheLock() = default;
};

class ProviderCache {
 public:
  virtual ~ProviderCache() = default;
  // The stored document (JSON text written by write()), or "" when there is none or it cannot be read.
  virtual std::string read() = 0;
  // Replaces the document whole (a reader sees the old or the new one). Failures are ignored: the
  // cache is an optimisation, never a reason to fail a request.
  virtual void write(const std::string& text) = 0;
  // Waits for the exclusive cache lock (bounded); the lock may be a no-op when it cannot be taken.
  virtual std::unique_ptr<ProviderCacheLock> lock() = 0;
};

// The file cache at `path` (<session dir>/.provider-cache.json), locked through path + ".lock".
std::unique_ptr<ProviderCache> make_file_provider_cache(std::string path);

}  // namespace kinde
