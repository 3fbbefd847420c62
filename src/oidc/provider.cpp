#include "oidc/provider.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>

#include "util/encoding.hpp"
#include "jose/jws.hpp"
#include "oidc/provider_cache.hpp"
#include "oidc/token_checks.hpp"
#include "util/log.hpp"
#include "util/url.hpp"
#include "util/text.hpp"

namespace kinde {
namespace {

constexpr std::int64_t kDiscoveryTtl = 24 * 3600;  // discovery rarely changes
constexpr std::int64_t kJwksTtl = 3600;            // keys: re-read hourly, and on an unknown kid
constexpr std::int64_t kJwksForceInterval = 60;    // an unknown kid re-fetches at most once a minute
constexpr std::int64_t kLeeway = 60;
constexpr std::int64_t kIntrospectionTtl = 60;  // an introspection answer is reused this long at most

std::string str_field(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}


// The endpoints the app calls (with the client secret, codes or tokens) or sends the browser to.
constexpr const char* kCalledEndpoints[] = {"authorization_endpoint", "token_endpoint",         "jwks_uri",
                                            "userinfo_endpoint",      "revocation_endpoint",    "introspection_endpoint",
                                            "end_session_endpoint"};

bool is_called_endpoint(const std::string& name) {
  for (const char* n : kCalledEndpoints)
    if (name == n) return true;
  return false;
}

// One endpoint URL of the discovery document against the policy in provider.hpp (parse_discovery).
Result<void> check_endpoint(const std::string& name, const nlohmann::json& value, const UrlOrigin& issuer,
                            bool issuer_loopback_http, const std::vector<std::string>& trusted_hosts) {
  if (value.is_null()) return Ok{};  // absent
  if (!value.is_string()) return make_error(kDiscoveryBadEndpoint, name + " is not a string");
  const std::string& url = value.get_ref<const std::string&>();
  auto origin = parse_url_origin(url);
  if (!origin) return make_error(kDiscoveryBadEndpoint, name + " '" + url + "' is not a plain http(s) URL");
  if (origin->scheme != "https" && !(issuer_loopback_http && is_loopback_http(url)))
    return make_error(kDiscoveryInsecureEndpoint,
                      name + " '" + url + "' is not https (http only for a loopback issuer and endpoint)");
  if (!is_called_endpoint(name) || origin->host == issuer.host) return Ok{};
  for (const auto& h : trusted_hosts)
    if (origin->host == h) return Ok{};
  return make_error(kDiscoveryForeignEndpoint, name + " '" + url + "' is on host " + origin->host +
                                                      ", not the issuer's host " + issuer.host +
                                                      "; if that host belongs to your provider, add it to "
                                                      "KINDE_TRUSTED_HOSTS");
}

// Every endpoint of a discovery document (provider.hpp: parse_discovery); the first problem found.
Result<void> check_endpoints(const nlohmann::json& doc, const std::string& issuer,
                             const std::vector<std::string>& trusted_hosts) {
  auto iss = parse_url_origin(issuer);
  if (!iss) return make_error(kDiscoveryBadEndpoint, "the issuer '" + issuer + "' is not a plain http(s) URL");
  const bool loopback = iss->scheme == "http" && is_loopback_http(issuer);
  for (const auto& [name, value] : doc.items()) {
    if (ends_with(name, "_endpoint") || name == "jwks_uri" || name == "check_session_iframe") {
      if (auto r = check_endpoint(name, value, *iss, loopback, trusted_hosts); !r) return r;
    } else if (name == "mtls_endpoint_aliases" && value.is_object()) {
      // RFC 8705 5: the same endpoints at other URLs, for mutual TLS clients (not used here): https all the same.
      for (const auto& [alias, url] : value.items())
        if (auto r = check_endpoint("mtls_endpoint_aliases." + alias, url, *iss, loopback, trusted_hosts); !r) return r;
    }
  }
  return Ok{};
}

// The exp of a JWT access token, read without verification (only to time a refresh); nullopt if not a JWT.
std::optional<std::int64_t> unverified_exp(const std::string& token) {
  auto jws = parse_jws(token);
  if (!jws) return std::nullopt;
  auto exp = jws->payload.find("exp");
  if (exp == jws->payload.end() || !exp->is_number()) return std::nullopt;
  double v = exp->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  constexpr double kMax = 9.0e18;
  if (v > kMax) v = kMax;
  if (v < 0) v = 0;
  return static_cast<std::int64_t>(v);
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

ProviderClient::ProviderClient(const Config& config, HttpTransport& http, const Clock& clock, std::string cache_file)
    : ProviderClient(config, http, clock, cache_file.empty() ? nullptr : make_file_provider_cache(std::move(cache_file))) {}

ProviderClient::ProviderClient(const Config& config, HttpTransport& http, const Clock& clock,
                               std::unique_ptr<ProviderCache> cache)
    : config_(config), http_(http), clock_(clock), cache_(std::move(cache)) {}

std::string ProviderClient::discovery_url(const std::string& issuer) {
  return issuer_base(issuer) + "/.well-known/openid-configuration";
}

Result<ProviderMetadata> ProviderClient::parse_discovery(const std::string& text, const std::string& expected,
                                                         const std::vector<std::string>& trusted_hosts) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return make_error(kDiscoveryFailed, "discovery document is not a JSON object");
  ProviderMetadata m;
  m.issuer = str_field(j, "issuer");
  m.authorization_endpoint = str_field(j, "authorization_endpoint");
  m.token_endpoint = str_field(j, "token_endpoint");
  m.jwks_uri = str_field(j, "jwks_uri");
  m.end_session_endpoint = str_field(j, "end_session_endpoint");
  m.userinfo_endpoint = str_field(j, "userinfo_endpoint");
  m.revocation_endpoint = str_field(j, "revocation_endpoint");
  m.introspection_endpoint = str_field(j, "introspection_endpoint");
  if (auto it = j.find("scopes_supported"); it != j.end() && it->is_array())
    for (const auto& sc : *it)
      if (sc.is_string()) m.scopes_supported.push_back(sc.get<std::string>());
  // OpenID Connect Discovery 4.3: the issuer in the document must be exactly the one we asked (a trailing slash
  // included): every token's iss is compared with the same string, so a near match here would refuse every sign-in.
  if (m.issuer != expected) {
    const bool slash_only = issuer_base(m.issuer) == issuer_base(expected);
    return make_error(kDiscoveryIssuerMismatch,
                      "discovery issuer is '" + m.issuer + "' but KINDE_ISSUER_URL is '" + expected + "'" +
                          (slash_only ? "; set KINDE_ISSUER_URL to exactly '" + m.issuer + "' (the trailing slash counts)"
                                      : ""));
  }
  if (m.authorization_endpoint.empty() || m.token_endpoint.empty() || m.jwks_uri.empty())
    return make_error(kDiscoveryFailed, "discovery document lacks authorization_endpoint, token_endpoint or jwks_uri");
  // The document came over TLS from the issuer, yet a compromised or misconfigured one must still not send the
  // client secret, codes, tokens or users to another host.
  if (auto r = check_endpoints(j, expected, trusted_hosts); !r) return r.error();
  return m;
}

Result<TokenSet> ProviderClient::parse_token_response(long status, const std::string& body, std::int64_t now) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) {
    return make_error(status >= 500 ? "token_endpoint_failed" : "token_response_invalid",
                      "token endpoint answered " + std::to_string(status) + " without a JSON object");
  }
  if (status != 200 || j.contains("error")) {
    std::string err = str_field(j, "error");
    if (err.empty()) return make_error(kTokenEndpointFailed, "token endpoint answered " + std::to_string(status));
    std::string desc = str_field(j, "error_description");
    // A 5xx, server_error or temporarily_unavailable (RFC 6749 5.2, 4.1.2.1) is an outage, not a
    // verdict on the grant: as token_error it would end every session whose refresh met it.
    if (status >= 500 || err == "server_error" || err == "temporarily_unavailable") {
      return make_error(kTokenEndpointFailed, "token endpoint answered " + std::to_string(status) + " " + err +
                                                     (desc.empty() ? "" : ": " + desc));
    }
    return make_error(kTokenError, err + (desc.empty() ? "" : ": " + desc));
  }
  TokenSet t;
  t.access_token = str_field(j, "access_token");
  t.id_token = str_field(j, "id_token");
  t.refresh_token = str_field(j, "refresh_token");
  t.scope = str_field(j, "scope");
  std::string type = str_field(j, "token_type");
  if (t.access_token.empty()) return make_error(kTokenResponseInvalid, "token response has no access_token");
  // RFC 6749 5.1: token_type is case-insensitive.
  if (!type.empty() && !equals_ignoring_case(type, "Bearer"))
    return make_error(kTokenResponseInvalid, "token_type is '" + type + "', expected Bearer");
  if (auto it = j.find("expires_in"); it != j.end() && it->is_number()) {
    // A broken or hostile provider may send a negative, fractional or huge lifetime (found by
    // fuzzing: 1e300 made the float-to-int conversion undefined, 2^63-1 overflowed the sum).
    // Clamp to [0, 10 years] as a double first, so neither can happen.
    constexpr double kMaxLifetime = 10.0 * 365 * 24 * 3600;
    double seconds = it->get<double>();
    if (!(seconds >= 0)) seconds = 0;  // negative (or NaN): treat as already expired
    if (seconds > kMaxLifetime) seconds = kMaxLifetime;
    t.expires_at = now + static_cast<std::int64_t>(seconds);
  } else if (auto exp = unverified_exp(t.access_token)) {
    // RFC 6749 5.1 makes expires_in optional; the JWT's own exp is then the best guess (an expired one
    // refreshes at once, a distant one is clamped like expires_in).
    constexpr std::int64_t kMaxLifetime = 10LL * 365 * 24 * 3600;
    t.expires_at = std::min(std::max(*exp, now), now + kMaxLifetime);
  }
  return t;
}

void ProviderClient::load_disk_cache() {
  if (disk_loaded_ || !cache_) return;
  disk_loaded_ = true;
  merge_disk_cache();
}

bool ProviderClient::merge_disk_cache() {
  if (!cache_) return false;
  auto j = nlohmann::json::parse(cache_->read(), nullptr, false);
  if (!j.is_object() || j.value("issuer", "") != config_.issuer) return false;
  auto number = [&j](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : std::int64_t{0};
  };
  // Another process may have re-fetched since: its newer parts win; ours stay when the cache is older.
  const std::int64_t discovery_at = number("discovery_at");
  const std::string discovery = str_field(j, "discovery");
  if (!discovery.empty() && (discovery_at > discovery_at_ || !meta_)) {
    // Checked again on every load: KINDE_TRUSTED_HOSTS may have changed since it was written.
    auto m = parse_discovery(discovery, config_.issuer, config_.trusted_hosts);
    if (m) {
      meta_ = *m;
      discovery_json_ = discovery;
      discovery_at_ = discovery_at;
    } else {
      log_warn("cached discovery document refused: " + m.error().detail);
    }
  }
  const std::int64_t jwks_at = number("jwks_at");
  const std::string jwks = str_field(j, "jwks");
  if (!jwks.empty() && (jwks_at > jwks_at_ || keys_.empty())) {
    auto k = parse_jwks(jwks);
    if (k) {
      keys_ = std::move(*k);
      ++keys_generation_;
      jwks_json_ = jwks;
      jwks_at_ = jwks_at;
    }
  }
  jwks_forced_at_ = std::max(jwks_forced_at_, number("jwks_forced_at"));
  return true;
}

void ProviderClient::save_disk_cache() {
  if (!cache_) return;
  auto lock = cache_->lock();  // never called with the lock held (see force_jwks_fetch)
  write_disk_cache();
}

void ProviderClient::write_disk_cache() {
  if (!cache_) return;
  // Keep a later forced-fetch time written by another process since we read the cache (the rate limit is shared).
  auto old = nlohmann::json::parse(cache_->read(), nullptr, false);
  if (old.is_object() && old.value("issuer", "") == config_.issuer) {
    auto it = old.find("jwks_forced_at");
    if (it != old.end() && it->is_number_integer()) jwks_forced_at_ = std::max(jwks_forced_at_, it->get<std::int64_t>());
  }
  nlohmann::json j = {{"issuer", config_.issuer}, {"discovery", discovery_json_}, {"discovery_at", discovery_at_},
                      {"jwks", jwks_json_},       {"jwks_at", jwks_at_},           {"jwks_forced_at", jwks_forced_at_}};
  cache_->write(j.dump());
}

void ProviderClient::set_deadline(std::int64_t monotonic_ms) { deadline_ms_ = monotonic_ms; }

// Every provider call goes through here, so a deadline (set_deadline) bounds them all: the request's own
// timeouts are cut to the time left, and none is started once it is gone.
Result<HttpResponse> ProviderClient::perform(HttpRequest req) {
  if (deadline_ms_ != 0) {
    const std::int64_t left = deadline_ms_ - clock_.monotonic_ms();
    if (left <= 0)
      return make_error(kHttpTimeout, "no time left for a provider call before the session lock lapses (" + req.url + ")");
    req.connect_timeout_ms = std::min<long>(req.connect_timeout_ms, static_cast<long>(left));
    req.total_timeout_ms = std::min<long>(req.total_timeout_ms, static_cast<long>(left));
  }
  return http_.perform(req);
}

void ProviderClient::warm_up() {
  if (metadata()) (void)load_jwks(false);
}

Result<std::string> ProviderClient::fetch(const std::string& url) {
  HttpRequest req;
  req.url = url;
  req.connect_timeout_ms = config_.http_connect_timeout_ms;
  req.total_timeout_ms = config_.http_timeout_ms;
  req.headers.emplace_back("Accept", "application/json");
  auto res = perform(std::move(req));
  if (!res) return res.error();
  if (res->status != 200)
    return make_error(kHttpStatus, url + " answered HTTP " + std::to_string(res->status));
  return std::move(res->body);
}

Result<ProviderMetadata> ProviderClient::metadata() {
  load_disk_cache();
  std::int64_t now = clock_.now();
  if (meta_ && now - discovery_at_ < kDiscoveryTtl) return *meta_;
  auto body = fetch(discovery_url(config_.issuer));
  if (!body) {
    // A stale document beats no sign-in while the provider is briefly unreachable.
    if (meta_) {
      log_warn("discovery refresh failed, using the cached document: " + body.error().detail);
      return *meta_;
    }
    return make_error(kDiscoveryFailed, body.error().detail);
  }
  auto m = parse_discovery(*body, config_.issuer, config_.trusted_hosts);
  if (!m) return m.error();
  meta_ = *m;
  discovery_json_ = std::move(*body);
  discovery_at_ = now;
  save_disk_cache();
  return *meta_;
}

Result<void> ProviderClient::load_jwks(bool force) {
  load_disk_cache();
  std::int64_t now = clock_.now();
  if (force) return force_jwks_fetch(now);
  if (!keys_.empty() && now - jwks_at_ < kJwksTtl) return Ok{};
  auto m = metadata();
  if (!m) return m.error();
  auto body = fetch(m->jwks_uri);
  if (!body) {
    if (!keys_.empty()) return Ok{};  // keep serving with the keys we have
    return make_error(kJwksFailed, body.error().detail);
  }
  auto keys = parse_jwks(*body);
  if (!keys) return keys.error();
  keys_ = std::move(*keys);
  ++keys_generation_;
  jwks_json_ = std::move(*body);
  jwks_at_ = now;
  save_disk_cache();
  return Ok{};
}

// An unknown kid (key rotation, or an attacker's token) re-fetches the JWKS at most once a minute across every
// process sharing the disk cache: plain CGI starts a process per request, so a per-process limit would let each
// forged token cost a fetch. Under the cache lock, a process first adopts what another one fetched meanwhile
// (processes waiting on the lock then use the new keys instead of fetching them again).
Result<void> ProviderClient::force_jwks_fetch(std::int64_t now) {
  if (now - jwks_forced_at_ < kJwksForceInterval) return make_error(kJwksRateLimited, "JWKS re-fetched recently");
  // Discovery before the lock: a stale document is re-fetched and saved, which takes the lock itself (an OFD lock
  // taken twice in one process would wait for itself).
  auto m = metadata();
  auto lock = cache_ ? cache_->lock() : nullptr;
  const std::uint64_t generation = keys_generation_;
  merge_disk_cache();
  if (keys_generation_ != generation) return Ok{};  // newer keys from another process: try them first
  if (now - jwks_forced_at_ < kJwksForceInterval) return make_error(kJwksRateLimited, "JWKS re-fetched recently");
  jwks_forced_at_ = now;  // counts even if the fetch fails: a failing JWKS must not be hammered either
  Result<std::string> body = m ? fetch(m->jwks_uri) : Result<std::string>(m.error());
  Result<std::vector<Jwk>> keys = body ? parse_jwks(*body) : Result<std::vector<Jwk>>(body.error());
  if (keys) {
    keys_ = std::move(*keys);
    ++keys_generation_;
    jwks_json_ = std::move(*body);
    jwks_at_ = now;
  }
  write_disk_cache();
  if (!body) return make_error(kJwksFailed, body.error().detail);
  if (!keys) return keys.error();
  return Ok{};
}

Result<Jws> ProviderClient::verify_signature(const std::string& token) {
  if (auto r = load_jwks(false); !r) return r.error();
  auto jws = verify_jwt(token, keys_);
  if (!jws && jws.error().code == kJwtUnknownKid) {
    // Key rotation: the provider may have published a new key since we cached the set.
    if (load_jwks(true)) jws = verify_jwt(token, keys_);
  }
  return jws;
}

HttpRequest ProviderClient::client_post(const std::string& url,
                                        std::vector<std::pair<std::string, std::string>> form) const {
  HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.connect_timeout_ms = config_.http_connect_timeout_ms;
  req.total_timeout_ms = config_.http_timeout_ms;
  req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  req.headers.emplace_back("Accept", "application/json");
  if (config_.token_auth == "client_secret_post") {
    form.emplace_back("client_id", config_.client_id);
    form.emplace_back("client_secret", config_.client_secret);
  } else {
    // RFC 6749 2.3.1: id and secret are form-encoded before the Basic encoding.
    req.headers.emplace_back("Authorization", "Basic " + base64_encode(url_encode(config_.client_id) + ":" +
                                                                          url_encode(config_.client_secret)));
    form.emplace_back("client_id", config_.client_id);
  }
  req.body = build_query(form);
  return req;
}

Result<TokenSet> ProviderClient::token_request(std::vector<std::pair<std::string, std::string>> form) {
  auto m = metadata();
  if (!m) return m.error();
  auto res = perform(client_post(m->token_endpoint, std::move(form)));
  if (!res) return make_error(kTokenEndpointFailed, res.error().code + ": " + res.error().detail);
  return parse_token_response(res->status, res->body, clock_.now());
}

Result<void> ProviderClient::revoke_refresh_token(const std::string& refresh_token) {
  auto m = metadata();
  if (!m) return m.error();
  if (m->revocation_endpoint.empty())
    return make_error(kRevocationUnsupported, "the discovery document lists no revocation_endpoint");
  // RFC 7009 2.1: the token, a hint, and the client authentication the token endpoint uses.
  HttpRequest req = client_post(m->revocation_endpoint, {{"token", refresh_token}, {"token_type_hint", "refresh_token"}});
  req.connect_timeout_ms = std::min(req.connect_timeout_ms, kRevocationTimeoutMs);
  req.total_timeout_ms = std::min(req.total_timeout_ms, kRevocationTimeoutMs);
  auto res = perform(std::move(req));
  if (!res) return make_error(kRevocationFailed, res.error().code + ": " + res.error().detail);
  // RFC 7009 2.2: 200 whether or not the token was still valid; 2.2.1: an error response otherwise.
  if (res->status != 200) {
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    std::string err = j.is_object() ? str_field(j, "error") : std::string();
    return make_error(kRevocationFailed, "revocation endpoint answered " + std::to_string(res->status) +
                                               (err.empty() ? "" : " " + err));
  }
  return Ok{};
}

Result<TokenSet> ProviderClient::exchange_code(const std::string& code, const std::string& verifier,
                                               const std::string& redirect_uri) {
  auto t = token_request({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", redirect_uri},
                          {"code_verifier", verifier}});
  if (t && t->id_token.empty()) return make_error(kTokenResponseInvalid, "token response has no id_token");
  return t;
}

Result<TokenSet> ProviderClient::refresh(const std::string& refresh_token) {
  if (refresh_token.empty()) return make_error(kTokenError, "no refresh token in the session");
  return token_request({{"grant_type", "refresh_token"}, {"refresh_token", refresh_token}});
}

Result<nlohmann::json> ProviderClient::verify_id_token(const std::string& token, const std::string& nonce,
                                                       std::int64_t now) {
  auto jws = verify_signature(token);
  if (!jws) return jws.error();
  IdTokenExpectations e;
  e.issuer = config_.issuer;
  e.client_id = config_.client_id;
  e.nonce = nonce;
  e.now = now;
  e.leeway = kLeeway;
  if (auto r = check_id_token_claims(jws->payload, e); !r) return r.error();
  return std::move(jws->payload);
}

// An API client sends the same bearer token on every call until it expires, and the RSA
// signature check is most of the cost of such a request. So, like mod_auth_openidc and API
// gateways, a token whose signature verified is remembered (bounded, oldest evicted) and not
// re-verified. What stays safe: the entry is keyed by the whole token text (no hash collisions),
// it is used only while the key set that verified it is still the current one (generation
// counter: a JWKS refresh or rotation invalidates every entry), the JWKS TTL logic still runs
// first on every call, and the claims (exp with leeway, nbf, iss, aud) are re-checked against
// `now` on every hit, so a cached token is refused from the same second an uncached one would be.
// The claim rule (iss, exp/nbf, not an ID token, issued to this app) is check_access_token_claims, one place.
Result<nlohmann::json> ProviderClient::verify_access_token(const std::string& token, std::int64_t now) {
  AccessTokenExpectations e;
  e.issuer = config_.issuer;
  e.audience = config_.audience;
  e.client_id = config_.client_id;
  e.now = now;
  e.leeway = kLeeway;
  if (!looks_like_jwt(token)) return verify_opaque_access_token(token, e);
  if (auto hit = token_cache_.find(token); hit != token_cache_.end()) {
    if (auto r = load_jwks(false); !r) return r.error();
    if (hit->second.keys_generation == keys_generation_) {
      auto claims = check_access_token_claims(hit->second.header, hit->second.payload, e);
      if (claims) return hit->second.payload;
      // Expired since it was cached: the same error an uncached check gives, and the entry goes.
      token_cache_.erase(hit);
      return claims.error();
    }
    // The key set changed: forget the entry and verify from scratch. Its token_order_ slot is
    // skipped at eviction time because the map no longer holds the token.
    token_cache_.erase(hit);
  }
  auto jws = verify_signature(token);
  if (!jws) return jws.error();
  if (auto r = check_access_token_claims(jws->header, jws->payload, e); !r) return r.error();
  while (token_cache_.size() >= kTokenCacheSize && !token_order_.empty()) {
    token_cache_.erase(token_order_.front());
    token_order_.pop_front();
  }
  // token_order_ may hold names of entries already erased as stale; keep it from growing without
  // bound by compacting it when it is much larger than the map.
  if (token_order_.size() > 2 * kTokenCacheSize) {
    std::deque<std::string> live;
    for (auto& t : token_order_)
      if (token_cache_.count(t)) live.push_back(std::move(t));
    token_order_ = std::move(live);
  }
  if (token_cache_.emplace(token, VerifiedToken{jws->header, jws->payload, keys_generation_}).second)
    token_order_.push_back(token);
  return std::move(jws->payload);
}

Result<nlohmann::json> ProviderClient::userinfo(const std::string& access_token) {
  auto m = metadata();
  if (!m) return m.error();
  if (m->userinfo_endpoint.empty())
    return make_error(kUserinfoUnsupported, "the discovery document lists no userinfo_endpoint");
  HttpRequest req;
  req.url = m->userinfo_endpoint;
  req.connect_timeout_ms = config_.http_connect_timeout_ms;
  req.total_timeout_ms = config_.http_timeout_ms;
  req.headers.emplace_back("Accept", "application/json");
  req.headers.emplace_back("Authorization", "Bearer " + access_token);  // RFC 6750 2.1
  auto res = http_.perform(req);
  if (!res) return make_error(kUserinfoFailed, res.error().code + ": " + res.error().detail);
  if (res->status != 200)
    return make_error(kUserinfoFailed, "the userinfo endpoint answered HTTP " + std::to_string(res->status));
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  // Core 5.3.2: JSON, or a signed/encrypted JWT when the client registered for one (this app never does).
  if (!j.is_object()) return make_error(kUserinfoFailed, "the userinfo answer is not a JSON object");
  if (str_field(j, "sub").empty()) return make_error(kUserinfoFailed, "the userinfo answer has no sub");
  return j;
}

// RFC 7662 2.1: the token, a hint, and the token endpoint's client authentication (2.1: the endpoint must
// authenticate its callers; here the same way as the token endpoint). The detail of an error never holds the token.
Result<nlohmann::json> ProviderClient::introspect(const std::string& token) {
  auto m = metadata();
  if (!m) return m.error();
  if (m->introspection_endpoint.empty())
    return make_error(kTokenOpaque, "the bearer token is not a JWT and the provider lists no introspection_endpoint");
  auto res = http_.perform(client_post(m->introspection_endpoint, {{"token", token}, {"token_type_hint", "access_token"}}));
  if (!res) return make_error(kIntrospectionFailed, res.error().code + ": " + res.error().detail);
  if (res->status != 200)
    return make_error(kIntrospectionFailed, "the introspection endpoint answered HTTP " + std::to_string(res->status));
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("active"))
    return make_error(kIntrospectionFailed, "the introspection answer is not a JSON object with active");
  return j;
}

// An opaque bearer token: introspected, the answer kept per process for kIntrospectionTtl seconds at most and never
// past the token's exp (a revoked token stops counting within a minute), at most kTokenCacheSize answers. Then
// the rule JWTs meet (check_access_token_claims) on the answer's claims.
Result<nlohmann::json> ProviderClient::verify_opaque_access_token(const std::string& token,
                                                                  const AccessTokenExpectations& e) {
  nlohmann::json answer;
  if (auto hit = introspection_cache_.find(token); hit != introspection_cache_.end() && hit->second.until > e.now) {
    answer = hit->second.answer;
  } else {
    auto fresh = introspect(token);
    if (!fresh) return fresh.error();
    answer = std::move(*fresh);
    std::int64_t until = e.now + kIntrospectionTtl;
    if (auto exp = answer.find("exp"); exp != answer.end() && exp->is_number_integer())
      until = std::min(until, exp->get<std::int64_t>());
    if (introspection_cache_.size() >= kTokenCacheSize) introspection_cache_.clear();  // simple bound
    introspection_cache_[token] = Introspected{answer, until};
  }
  // RFC 7662 2.2: only active (JSON true) counts; the answer's other members describe the token.
  if (auto active = answer.find("active"); active == answer.end() || *active != true)
    return make_error(kTokenInactive, "the provider's introspection says the token is not active");
  // A refresh token is never a bearer credential (Keycloak says "Refresh", others "refresh_token").
  std::string type = str_field(answer, "token_type");
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type.find("refresh") != std::string::npos)
    return make_error(kTokenInactive, "introspection describes a refresh token, not an access token");
  nlohmann::json claims = answer;
  claims.erase("active");
  // iss and exp are optional in an introspection answer (2.2); it came from the issuer's own endpoint, and the
  // token is active now, so the issuer and the cache's horizon stand in for them.
  if (!claims.contains("iss")) claims["iss"] = e.issuer;
  if (!claims.contains("exp")) claims["exp"] = e.now + kIntrospectionTtl;
  // Introspection answers only for access tokens: an ID token never gets here, so the header is the typed one.
  static const nlohmann::json kAccessTokenHeader = {{"typ", "at+jwt"}};
  if (auto r = check_access_token_claims(kAccessTokenHeader, claims, e); !r) return r.error();
  return claims;
}

}  // namespace kinde
