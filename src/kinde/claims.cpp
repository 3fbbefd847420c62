#include "kinde/claims.hpp"

namespace kinde {

nlohmann::json home_claims_view(const ClaimSource& c) {
  nlohmann::json v = nlohmann::json::object();
  nlohmann::json perms = nlohmann::json::array();
  if (auto it = c.access.find("permissions"); it != c.access.end() && it->is_array())
    for (const auto& p : *it)
      if (p.is_string()) perms.push_back(p);
  v["permissions"] = perms;
  v["has_permissions"] = !perms.empty();
  std::string org;
  if (auto it = c.access.find("org_code"); it != c.access.end() && it->is_string()) org = *it;
  v["org_code"] = org;
  v["has_org"] = !org.empty();
  nlohmann::json orgs = nlohmann::json::array();
  if (auto it = c.id.find("org_codes"); it != c.id.end() && it->is_array())
    for (const auto& o : *it)
      if (o.is_string()) orgs.push_back(o);
  v["org_codes"] = orgs;
  nlohmann::json flags = nlohmann::json::array();
  if (auto it = c.access.find("feature_flags"); it != c.access.end() && it->is_object()) {
    for (auto f = it->begin(); f != it->end(); ++f) {
      if (!f->is_object()) continue;
      std::string type = f->value("t", "");
      const auto& val = f->contains("v") ? (*f)["v"] : nlohmann::json();
      std::string shown = val.is_string() ? val.get<std::string>() : val.dump();
      flags.push_back({{"code", f.key()}, {"value", shown},
                       {"type", type == "b" ? "boolean" : type == "i" ? "integer" : type == "s" ? "string" : type}});
    }
  }
  v["flags"] = flags;
  v["has_flags"] = !flags.empty();
  return v;
}

}  // namespace kinde
