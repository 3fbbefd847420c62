// Pages derived from a signed-in session's record, kept per process (the signed-in home page).
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "session/record.hpp"

namespace kinde {

// A page that is a pure function of one decoded record, whether its access token lapsed and the base
// path is rendered once per record. Entries are keyed by the record's address while the cache holds the
// record itself, so the address cannot be reused by another record; a session whose stored bytes change
// decodes into a new record and misses, and records of different sessions are different objects. Bounded:
// when full, it starts over. Thread-safe.
class RecordPageCache {
 public:
  explicit RecordPageCache(std::size_t capacity = 16) : capacity_(capacity) {}

  // The page stored for exactly this record object, lapse state and base path; nullopt otherwise.
  std::optional<std::string> find(const std::shared_ptr<const SignedIn>& record, bool lapsed,
                                  const std::string& base_path) const;
  // Stores a page (replacing one for the same key).
  void put(std::shared_ptr<const SignedIn> record, bool lapsed, const std::string& base_path, std::string page);
  std::size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const SignedIn> record;
    bool lapsed = false;
    std::string base_path;
    std::string page;
  };
  const Entry* locate(const SignedIn* record, bool lapsed, const std::string& base_path) const;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace kinde
