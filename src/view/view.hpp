// View: mustache templates loaded once per process, rendered with mstch (HTML-escaped by default).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kTemplateDir = "template_dir";  // error code
inline constexpr const char* kTemplateMissing = "template_missing";  // error code
inline constexpr const char* kTemplateRead = "template_read";  // error code

class View {
 public:
  // Loads every *.mustache file in dir; each is also available as a partial by its base name.
  static Result<std::shared_ptr<const View>> load(const std::string& dir);
  // Builds a view from in-memory templates (tests).
  static std::shared_ptr<const View> from_templates(std::map<std::string, std::string> templates);
  // Renders template `name` (without extension) with a JSON context; error "template_missing".
  // The same name and context give the same page: recent pages are kept (at most kCachedPages).
  Result<std::string> render(const std::string& name, const nlohmann::json& context) const;
  static constexpr std::size_t kCachedPages = 64;
  bool has(const std::string& name) const { return templates_.count(name) != 0; }

 private:
  std::map<std::string, std::string> templates_;
  // Pages already rendered, keyed by a hash of name and context and holding both for an exact
  // check; a cache of a pure function of immutable templates, so mutable under a lock.
  // NOLINT below: bugprone-exception-escape false positive, as for Jws in jose/jws.hpp (nlohmann::json).
  struct CachedPage {  // NOLINT(bugprone-exception-escape)
    std::string name;
    nlohmann::json context;
    std::string page;
  };
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::uint64_t, CachedPage> cache_;
};

}  // namespace kinde
