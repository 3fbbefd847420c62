#include "view/view.hpp"

#include <dirent.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <mstch/mstch.hpp>
#include <sstream>
#include <string_view>

namespace kinde {
namespace {

mstch::node to_node(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      mstch::map m;
      for (auto it = j.begin(); it != j.end(); ++it) m.emplace(it.key(), to_node(it.value()));
      return m;
    }
    case nlohmann::json::value_t::array: {
      mstch::array a;
      a.reserve(j.size());
      for (const auto& e : j) a.push_back(to_node(e));
      return a;
    }
    case nlohmann::json::value_t::string: return j.get<std::string>();
    case nlohmann::json::value_t::boolean: return j.get<bool>();
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return std::to_string(j.get<long long>());
    case nlohmann::json::value_t::number_float: return j.dump();
    default: return std::string();
  }
}

constexpr std::uint64_t kFnvOffset = 14695981039346656037ull;
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

// FNV-style combining of whole words (not bytes), strings through the standard library's hash:
// fast, and good enough to spread cache keys; correctness comes from same_json on a hit.
void mix_word(std::uint64_t& h, std::uint64_t v) {
  h ^= v;
  h *= kFnvPrime;
  h ^= h >> 29;
}

void mix(std::uint64_t& h, const char* data, std::size_t n) {
  mix_word(h, n);
  mix_word(h, std::hash<std::string_view>{}(std::string_view(data, n)));
}

template <typename T>
void mix_value(std::uint64_t& h, T v) {
  std::uint64_t w = 0;
  static_assert(sizeof v <= sizeof w, "one word at most");
  std::memcpy(&w, &v, sizeof v);
  mix_word(h, w);
}

// Hashes type, structure and values; each string goes in with its length, so {"ab":"c"} and
// {"a":"bc"} differ.
void hash_json(const nlohmann::json& j, std::uint64_t& h) {
  mix_value(h, static_cast<unsigned char>(j.type()));
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      mix_value(h, j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        mix(h, k.data(), k.size());
        hash_json(it.value(), h);
      }
      break;
    case nlohmann::json::value_t::array:
      mix_value(h, j.size());
      for (const auto& e : j) hash_json(e, h);
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      mix(h, s.data(), s.size());
      break;
    }
    case nlohmann::json::value_t::boolean: mix_value(h, j.get<bool>()); break;
    case nlohmann::json::value_t::number_integer: mix_value(h, j.get<std::int64_t>()); break;
    case nlohmann::json::value_t::number_unsigned: mix_value(h, j.get<std::uint64_t>()); break;
    case nlohmann::json::value_t::number_float: mix_value(h, j.get<double>()); break;
    default: break;
  }
}

// Exact equality for the cache: same types throughout (json's operator== would call 1 and 1.0, or
// 0.0 and -0.0, equal, which render differently) and floats compared bit for bit.
bool same_json(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case nlohmann::json::value_t::object: {
      if (a.size() != b.size()) return false;
      for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y)
        if (x.key() != y.key() || !same_json(x.value(), y.value())) return false;
      return true;
    }
    case nlohmann::json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i)
        if (!same_json(a[i], b[i])) return false;
      return true;
    }
    case nlohmann::json::value_t::string: return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case nlohmann::json::value_t::boolean: return a.get<bool>() == b.get<bool>();
    case nlohmann::json::value_t::number_integer: return a.get<std::int64_t>() == b.get<std::int64_t>();
    case nlohmann::json::value_t::number_unsigned: return a.get<std::uint64_t>() == b.get<std::uint64_t>();
    case nlohmann::json::value_t::number_float: {
      double x = a.get<double>(), y = b.get<double>();
      // Bitwise on purpose (an exact cache-hit check): 0.0 and -0.0 render differently, and a NaN
      // must match itself for the page to be reused.
      return std::memcmp(&x, &y, sizeof x) == 0;  // NOLINT(bugprone-suspicious-memory-comparison,cert-exp42-c,cert-flp37-c)
    }
    default: return true;  // null, discarded, binary (never in a view context) compare by type
  }
}

}  // namespace

Result<std::shared_ptr<const View>> View::load(const std::string& dir) {
  auto view = std::make_shared<View>();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return make_error(kTemplateDir, "cannot open template directory " + dir);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    const std::string ext = ".mustache";
    if (name.size() <= ext.size() || name.compare(name.size() - ext.size(), ext.size(), ext) != 0) continue;
    std::string path = dir;
    path += '/';
    path += name;
    std::ifstream in(path);
    if (!in) {
      ::closedir(d);
      return make_error(kTemplateRead, "cannot read template " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    view->templates_[name.substr(0, name.size() - ext.size())] = ss.str();
  }
  ::closedir(d);
  if (view->templates_.empty()) return make_error(kTemplateDir, "no *.mustache templates in " + dir);
  return std::shared_ptr<const View>(view);
}

std::shared_ptr<const View> View::from_templates(std::map<std::string, std::string> templates) {
  auto v = std::make_shared<View>();
  v->templates_ = std::move(templates);
  return v;
}

Result<std::string> View::render(const std::string& name, const nlohmann::json& context) const {
  auto it = templates_.find(name);
  if (it == templates_.end()) return make_error(kTemplateMissing, "no template named " + name);
  // mstch has no compiled-template API: every render parses the template and all partials again.
  // Rendering is a pure function of the
  // immutable templates and the context, so a page rendered before is reused. Lookup is by a
  // 64-bit hash of name and context, and a hit is only taken when the stored name and context are
  // exactly equal to these (same_json), so a hash collision can never serve another user's page.
  // Hashing and comparing the tree costs a fraction of what context.dump() as the key did.
  std::uint64_t key = kFnvOffset;
  mix(key, name.data(), name.size());
  hash_json(context, key);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto hit = cache_.find(key);
    if (hit != cache_.end() && hit->second.name == name && same_json(hit->second.context, context))
      return hit->second.page;
  }
  std::string page = mstch::render(it->second, to_node(context), templates_);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  // Bounded: when full, start over (cheaper than LRU bookkeeping; a busy page is back after one miss).
  if (cache_.size() >= kCachedPages) cache_.clear();
  cache_[key] = CachedPage{name, context, page};  // a colliding older entry is replaced
  return page;
}

}  // namespace kinde
