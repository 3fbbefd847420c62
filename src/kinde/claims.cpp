#include "kinde/claims.hpp"

#include <algorithm>
#include <limits>

#include "util/log.hpp"

namespace kinde {
namespace {

// A missing token (bearer: no ID token) reads as an empty object, so lookups need no null checks.
const nlohmann::json* find_claim(const nlohmann::json& token, std::string_view name) {
  if (!token.is_object()) return nullptr;
  auto it = token.find(std::string(name));
  return it == token.end() ? nullptr : &*it;
}

bool has_id_token(const ClaimSource& c) { return c.id.is_object() && !c.id.empty(); }

Error wrong_type(std::string_view claim, std::string_view expected, const nlohmann::json& got) {
  return make_error(kClaimWrongType, "claim \"" + std::string(claim) + "\" should be " + std::string(expected) +
                                         ", is " + got.type_name());
}

// An optional string claim: absent or null -> nullopt; a string -> it; anything else -> claim_wrong_type.
Result<std::optional<std::string>> optional_string(const nlohmann::json& token, std::string_view name) {
  const nlohmann::json* v = find_claim(token, name);
  if (!v || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return wrong_type(name, "a string", *v);
  return std::optional<std::string>(v->get<std::string>());
}

// A list-of-strings claim: absent or null -> empty; anything but an array of strings -> claim_wrong_type.
Result<std::vector<std::string>> string_list(const nlohmann::json& token, std::string_view name) {
  std::vector<std::string> out;
  const nlohmann::json* v = find_claim(token, name);
  if (!v || v->is_null()) return out;
  if (!v->is_array()) return wrong_type(name, "a list of strings", *v);
  for (const auto& item : *v) {
    if (!item.is_string()) return wrong_type(name, "a list of strings", item);
    out.push_back(item.get<std::string>());
  }
  return out;
}

bool value_has_type(const nlohmann::json& v, FlagType t) {
  switch (t) {
    case FlagType::boolean: return v.is_boolean();
    case FlagType::string: return v.is_string();
    case FlagType::integer:
      // Integers beyond int64 cannot be handed out by get_integer_flag: treat them as not integers.
      return v.is_number_integer() &&
             (v.is_number_unsigned() ? v.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<std::int64_t>::max())
                                     : true);
  }
  return false;
}

std::optional<FlagType> type_of_value(const nlohmann::json& v) {
  for (FlagType t : {FlagType::boolean, FlagType::string, FlagType::integer})
    if (value_has_type(v, t)) return t;
  return std::nullopt;
}

// One entry of feature_flags: {"t": "b"|"s"|"i", "v": value of that type}.
Result<Flag> parse_flag(const std::string& code, const nlohmann::json& entry) {
  if (!entry.is_object()) return make_error(kFlagMalformed, "flag \"" + code + "\" is not an object");
  auto t = entry.find("t");
  auto v = entry.find("v");
  if (t == entry.end() || !t->is_string() || v == entry.end())
    return make_error(kFlagMalformed, "flag \"" + code + "\" lacks \"t\" or \"v\"");
  auto type = parse_flag_type(t->get<std::string>());
  if (!type) return make_error(kFlagMalformed, "flag \"" + code + "\" has unknown type \"" + t->get<std::string>() + "\"");
  if (!value_has_type(*v, *type))
    return make_error(kFlagMalformed, "flag \"" + code + "\" says " + flag_type_name(*type) + " but holds " +
                                          v->type_name());
  return Flag{code, *v, false, *type};
}

Result<const nlohmann::json*> flags_object(const ClaimSource& c) {
  const nlohmann::json* flags = find_claim(c.access, "feature_flags");
  if (!flags || flags->is_null()) return static_cast<const nlohmann::json*>(nullptr);
  if (!flags->is_object()) return wrong_type("feature_flags", "an object", *flags);
  return flags;
}

nlohmann::json optional_json(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(); }

}  // namespace

const char* flag_type_name(FlagType type) {
  switch (type) {
    case FlagType::boolean: return "boolean";
    case FlagType::string: return "string";
    case FlagType::integer: return "integer";
  }
  return "string";
}

std::optional<FlagType> parse_flag_type(std::string_view text) {
  if (text == "b" || text == "boolean") return FlagType::boolean;
  if (text == "s" || text == "string") return FlagType::string;
  if (text == "i" || text == "integer") return FlagType::integer;
  return std::nullopt;
}

Result<Claim> get_claim(const ClaimSource& c, std::string_view name, TokenKind token) {
  const nlohmann::json* v = find_claim(token == TokenKind::access ? c.access : c.id, name);
  return Claim{std::string(name), v ? *v : nlohmann::json()};
}

Result<PermissionGrant> get_permission(const ClaimSource& c, std::string_view permission) {
  auto all = get_permissions(c);
  if (!all) return all.error();
  const auto& list = all->permissions;
  bool granted = std::find(list.begin(), list.end(), permission) != list.end();
  return PermissionGrant{all->org_code, granted};
}

Result<Permissions> get_permissions(const ClaimSource& c) {
  auto org = optional_string(c.access, "org_code");
  if (!org) return org.error();
  auto list = string_list(c.access, "permissions");
  if (!list) return list.error();
  return Permissions{std::move(*org), std::move(*list)};
}

Result<Organization> get_organization(const ClaimSource& c) {
  auto org = optional_string(c.access, "org_code");
  if (!org) return org.error();
  return Organization{std::move(*org)};
}

Result<UserOrganizations> get_user_organizations(const ClaimSource& c) {
  // Kinde lists the user's organisations in the ID token only; a machine token has none to offer.
  if (!has_id_token(c)) return make_error(kNoIdToken, "org_codes is an ID-token claim and there is no ID token");
  auto list = string_list(c.id, "org_codes");
  if (!list) return list.error();
  return UserOrganizations{std::move(*list)};
}

Result<UserDetails> get_user_details(const ClaimSource& c) {
  if (!has_id_token(c)) return make_error(kNoIdToken, "user details come from the ID token and there is none");
  UserDetails d;
  const nlohmann::json* sub = find_claim(c.id, "sub");
  if (!sub || !sub->is_string()) return wrong_type("sub", "a string", sub ? *sub : nlohmann::json());
  d.id = sub->get<std::string>();
  struct Field {
    const char* name;
    std::optional<std::string>* out;
  };
  for (Field f : {Field{"given_name", &d.given_name}, Field{"family_name", &d.family_name}, Field{"email", &d.email},
                  Field{"picture", &d.picture}}) {
    auto v = optional_string(c.id, f.name);
    if (!v) return v.error();
    *f.out = std::move(*v);
  }
  return d;
}

Result<Roles> get_roles(const ClaimSource& c) {
  auto org = optional_string(c.access, "org_code");
  if (!org) return org.error();
  Roles out{std::move(*org), {}};
  const nlohmann::json* roles = find_claim(c.access, "roles");
  if (!roles || roles->is_null()) return out;
  if (!roles->is_array()) return wrong_type("roles", "a list of {id, key, name}", *roles);
  for (const auto& r : *roles) {
    if (!r.is_object()) return wrong_type("roles", "a list of {id, key, name}", r);
    Role role;
    // Kinde always sends key; id and name are shown when present, but must be strings if they are.
    for (auto [field, dest] : {std::pair<const char*, std::string*>{"id", &role.id}, {"key", &role.key}, {"name", &role.name}}) {
      auto v = optional_string(r, field);
      if (!v) return wrong_type(std::string("roles[].") + field, "a string", r.at(field));
      if (*v) *dest = **v;
    }
    if (role.key.empty()) return wrong_type("roles[].key", "a non-empty string", r.value("key", nlohmann::json()));
    out.roles.push_back(std::move(role));
  }
  return out;
}

Result<Flag> get_flag(const ClaimSource& c, std::string_view code, const std::optional<nlohmann::json>& default_value,
                      std::optional<FlagType> type) {
  std::string name(code);
  auto flags = flags_object(c);
  if (!flags) return flags.error();
  const nlohmann::json* entry = nullptr;
  if (*flags) {
    auto it = (*flags)->find(name);
    if (it != (*flags)->end()) entry = &*it;
  }
  if (entry) {
    auto flag = parse_flag(name, *entry);
    if (!flag) return flag.error();
    if (type && flag->type != *type)
      return make_error(kFlagTypeMismatch, "flag \"" + name + "\" is of type " + flag_type_name(flag->type) +
                                               ", not of type " + flag_type_name(*type));
    return flag;
  }
  if (!default_value) {
    return make_error(kFlagNotFound, "flag \"" + name + "\" was not found, and no default value has been provided");
  }
  // The SDK trusts the default blindly; here a default must be a flag value, and of the asked type.
  auto default_type = type_of_value(*default_value);
  if (!default_type)
    return make_error(kFlagTypeMismatch, "the default for flag \"" + name + "\" is a " + default_value->type_name() +
                                             ", not a boolean, string or integer");
  if (type && *default_type != *type)
    return make_error(kFlagTypeMismatch, "the default for flag \"" + name + "\" is of type " +
                                             flag_type_name(*default_type) + ", not of type " + flag_type_name(*type));
  return Flag{name, *default_value, true, *default_type};
}

Result<bool> get_boolean_flag(const ClaimSource& c, std::string_view code, std::optional<bool> default_value) {
  auto f = get_flag(c, code, default_value ? std::optional<nlohmann::json>(*default_value) : std::nullopt,
                    FlagType::boolean);
  if (!f) return f.error();
  return f->value.get<bool>();
}

Result<std::string> get_string_flag(const ClaimSource& c, std::string_view code,
                                    std::optional<std::string> default_value) {
  auto f = get_flag(c, code, default_value ? std::optional<nlohmann::json>(*default_value) : std::nullopt,
                    FlagType::string);
  if (!f) return f.error();
  return f->value.get<std::string>();
}

Result<std::int64_t> get_integer_flag(const ClaimSource& c, std::string_view code,
                                      std::optional<std::int64_t> default_value) {
  auto f = get_flag(c, code, default_value ? std::optional<nlohmann::json>(*default_value) : std::nullopt,
                    FlagType::integer);
  if (!f) return f.error();
  return f->value.get<std::int64_t>();
}

Result<std::vector<Flag>> get_flags(const ClaimSource& c) {
  auto flags = flags_object(c);
  if (!flags) return flags.error();
  std::vector<Flag> out;
  if (!*flags) return out;
  // nlohmann's object is a std::map: iteration is already ordered by code.
  for (auto it = (*flags)->begin(); it != (*flags)->end(); ++it) {
    auto f = parse_flag(it.key(), it.value());
    if (f) {
      out.push_back(std::move(*f));
    } else {
      log_debug("feature flag skipped: " + f.error().detail);
    }
  }
  return out;
}

nlohmann::json to_json(const PermissionGrant& v) {
  return {{"org_code", optional_json(v.org_code)}, {"is_granted", v.is_granted}};
}

nlohmann::json to_json(const Permissions& v) {
  return {{"org_code", optional_json(v.org_code)}, {"permissions", v.permissions}};
}

nlohmann::json to_json(const Organization& v) { return {{"org_code", optional_json(v.org_code)}}; }

nlohmann::json to_json(const UserOrganizations& v) { return {{"org_codes", v.org_codes}}; }

nlohmann::json to_json(const UserDetails& v) {
  return {{"id", v.id},
          {"given_name", optional_json(v.given_name)},
          {"family_name", optional_json(v.family_name)},
          {"email", optional_json(v.email)},
          {"picture", optional_json(v.picture)}};
}

nlohmann::json to_json(const Roles& v) {
  nlohmann::json roles = nlohmann::json::array();
  for (const auto& r : v.roles) roles.push_back({{"id", r.id}, {"key", r.key}, {"name", r.name}});
  return {{"org_code", optional_json(v.org_code)}, {"roles", roles}};
}

nlohmann::json to_json(const Flag& v) {
  return {{"code", v.code}, {"value", v.value}, {"is_default", v.is_default}, {"type", flag_type_name(v.type)}};
}

nlohmann::json home_claims_view(const ClaimSource& c) {
  // The page must render whatever the provider sent: a malformed claim shows as "none" and is logged.
  auto warn = [](const Error& e) { log_warn("home page: " + e.code + ": " + e.detail); };
  nlohmann::json v = nlohmann::json::object();

  nlohmann::json perms = nlohmann::json::array();
  if (auto p = get_permissions(c)) {
    perms = std::move(p->permissions);
  } else {
    warn(p.error());
  }
  // Moved, not copied, into the view (this runs on every signed-in home request).
  v["has_permissions"] = !perms.empty();
  v["permissions"] = std::move(perms);

  std::string org;
  if (auto o = get_organization(c)) {
    org = o->org_code.value_or("");
  } else {
    warn(o.error());
  }
  v["org_code"] = org;
  v["has_org"] = !org.empty();

  nlohmann::json orgs = nlohmann::json::array();
  if (auto o = get_user_organizations(c)) {
    orgs = std::move(o->org_codes);
  } else if (o.error().code != kNoIdToken) {
    warn(o.error());
  }
  v["has_org_codes"] = !orgs.empty();
  v["org_codes"] = std::move(orgs);

  nlohmann::json roles = nlohmann::json::array();
  if (auto r = get_roles(c)) {
    for (const auto& role : r->roles)
      roles.push_back({{"id", role.id}, {"key", role.key}, {"name", role.name.empty() ? role.key : role.name}});
  } else {
    warn(r.error());
  }
  v["has_roles"] = !roles.empty();
  v["roles"] = std::move(roles);

  nlohmann::json flags = nlohmann::json::array();
  if (auto f = get_flags(c)) {
    for (const auto& flag : *f) {
      std::string shown = flag.value.is_string() ? flag.value.get<std::string>() : flag.value.dump();
      flags.push_back({{"code", flag.code}, {"value", shown}, {"type", flag_type_name(flag.type)}});
    }
  } else {
    warn(f.error());
  }
  v["has_flags"] = !flags.empty();
  v["flags"] = std::move(flags);
  return v;
}

}  // namespace kinde
