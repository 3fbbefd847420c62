#include "app/page_cache.hpp"

namespace kinde {

const RecordPageCache::Entry* RecordPageCache::locate(const SignedIn* record, bool lapsed,
                                                      const std::string& base_path) const {
  for (const Entry& e : entries_)
    if (e.record.get() == record && e.lapsed == lapsed && e.base_path == base_path) return &e;
  return nullptr;
}

std::optional<std::string> RecordPageCache::find(const std::shared_ptr<const SignedIn>& record, bool lapsed,
                                                 const std::string& base_path) const {
  if (!record) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  if (const Entry* e = locate(record.get(), lapsed, base_path)) return e->page;
  return std::nullopt;
}

void RecordPageCache::put(std::shared_ptr<const SignedIn> record, bool lapsed, const std::string& base_path,
                          std::string page) {
  if (!record || capacity_ == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (Entry& e : entries_) {
    if (e.record == record && e.lapsed == lapsed && e.base_path == base_path) {
      e.page = std::move(page);
      return;
    }
  }
  // A small linear table: a process serves few sessions at once, and a miss costs one render.
  if (entries_.size() >= capacity_) entries_.clear();
  entries_.push_back(Entry{std::move(record), lapsed, base_path, std::move(page)});
}

std::size_t RecordPageCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace kinde
