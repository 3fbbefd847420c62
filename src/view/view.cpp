#include "view/view.hpp"

#include <dirent.h>

#include <fstream>
#include <mstch/mstch.hpp>
#include <sstream>

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

}  // namespace

Result<std::shared_ptr<const View>> View::load(const std::string& dir) {
  auto view = std::make_shared<View>();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return make_error("template_dir", "cannot open template directory " + dir);
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
      return make_error("template_read", "cannot read template " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    view->templates_[name.substr(0, name.size() - ext.size())] = ss.str();
  }
  ::closedir(d);
  if (view->templates_.empty()) return make_error("template_dir", "no *.mustache templates in " + dir);
  return std::shared_ptr<const View>(view);
}

std::shared_ptr<const View> View::from_templates(std::map<std::string, std::string> templates) {
  auto v = std::make_shared<View>();
  v->templates_ = std::move(templates);
  return v;
}

Result<std::string> View::render(const std::string& name, const nlohmann::json& context) const {
  auto it = templates_.find(name);
  if (it == templates_.end()) return make_error("template_missing", "no template named " + name);
  // mstch has no compiled-template API: every render parses the template and all partials again
  // (two thirds of a signed-in home request, by callgrind). Rendering is a pure function of the
  // immutable templates and the context, so a page rendered before is reused. The key is the exact
  // JSON text; a context that cannot be dumped (invalid UTF-8) is rendered without the cache.
  std::string key;
  try {
    key = name;
    key += '\0';
    key += context.dump();
  } catch (const nlohmann::json::exception&) {
    return mstch::render(it->second, to_node(context), templates_);
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto hit = cache_.find(key);
    if (hit != cache_.end()) return hit->second;
  }
  std::string page = mstch::render(it->second, to_node(context), templates_);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  // Bounded: when full, start over (cheaper than LRU bookkeeping; a busy page is back after one miss).
  if (cache_.size() >= kCachedPages) cache_.clear();
  cache_.emplace(std::move(key), page);
  return page;
}

}  // namespace kinde
