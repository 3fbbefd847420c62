// ProviderClient: the real OidcClient — discovery, JWKS, token endpoint over an HttpTransport.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "http/transport.hpp"
#include "jose/jwk.hpp"
#include "jose/jws.hpp"
#include "oidc/client.hpp"
#include "oidc/token_checks.hpp"
#include "oidc/provider_cache.hpp"
#include "util/clock.hpp"

namespace kinde {

class ProviderClient : public OidcClient {
 public:
  // cache_file: where discovery and JWKS are kept between processes ("" = memory only).
  ProviderClient(const Config& config, HttpTransport& http, const Clock& clock, std::string cache_file);
  // The same with any shared cache (null = memory only), e.g. make_redis_provider_cache.
  ProviderClient(const Config& config, HttpTransport& http, const Clock& clock, std::unique_ptr<ProviderCache> cache);

  Result<ProviderMetadata> metadata() override;
  Result<TokenSet> exchange_code(const std::string& code, const std::string& code_verifier,
                                 const std::string& redirect_uri) override;
  Result<TokenSet> refresh(const std::string& refresh_token) override;
  Result<nlohmann::json> verify_id_token(const std::string& token, const std::string& nonce,
                                         std::int64_t now) override;
  // Bearer check; a token whose signature was verified before against the same key set is not
  // re-verified (see token_cache_), but its claims (exp, nbf, iss, aud) are checked every call.
  Result<nlohmann::json> verify_access_token(const std::string& token, std::int64_t now) override;
  Result<void> revoke_refresh_token(const std::string& refresh_token) override;
  Result<nlohmann::json> userinfo(const std::string& access_token) override;
  void set_deadline(std::int64_t monotonic_ms) override;
  void warm_up() override;

  // Longest wait for the revocation endpoint (ms): logout must not hang on it.
  static constexpr long kRevocationTimeoutMs = 2000;

  // Most access tokens kept by the verified-token cache (oldest evicted first).
  static constexpr std::size_t kTokenCacheSize = 256;
  // How many verified access tokens are cached right now (for tests).
  std::size_t cached_token_count() const { return token_cache_.size(); }

  // <issuer without trailing slashes>/.well-known/openid-configuration (OIDC Discovery 4).
  static std::string discovery_url(const std::string& issuer);
  // Parses a discovery document: its issuer must be exactly the configured one (OIDC Discovery 4.3, else
  // "discovery_issuer_mismatch"), and its endpoints safe to call. Every endpoint (members named *_endpoint,
  // jwks_uri, check_session_iframe, mtls_endpoint_aliases) must be an https URL ("discovery_insecure_endpoint";
  // http only when the issuer and the endpoint are both http on loopback; "discovery_bad_endpoint" when not a
  // parseable URL or not a string). Those the app calls or sends the browser to (authorization, token, jwks_uri,
  // userinfo, revocation, introspection, end_session) must be on the issuer's host or one of trusted_hosts
  // (KINDE_TRUSTED_HOSTS), any port ("discovery_foreign_endpoint"): a document naming another token endpoint
  // would otherwise receive the client secret, the code and the PKCE verifier.
  static Result<ProviderMetadata> parse_discovery(const std::string& json_text, const std::string& expected_issuer,
                                                  const std::vector<std::string>& trusted_hosts = {});
  // Parses a token endpoint answer (RFC 6749 5.1/5.2): the error's code goes into "token_error". token_type is
  // compared case-insensitively; without expires_in, expires_at is the access token's exp when it is a JWT
  // (read, not verified: it only times the refresh), clamped to [now, now + 10 years].
  static Result<TokenSet> parse_token_response(long status, const std::string& body, std::int64_t now);

 private:
  Result<HttpResponse> perform(HttpRequest req);
  Result<std::string> fetch(const std::string& url);
  // A form POST to an endpoint that authenticates the client (token, revocation): KINDE_TOKEN_AUTH's method.
  HttpRequest client_post(const std::string& url, std::vector<std::pair<std::string, std::string>> form) const;
  // RFC 7662 introspection of an opaque token (the raw answer) and the check of its answer (see verify_access_token).
  Result<nlohmann::json> introspect(const std::string& token);
  Result<nlohmann::json> verify_opaque_access_token(const std::string& token, const AccessTokenExpectations& e);
  Result<TokenSet> token_request(std::vector<std::pair<std::string, std::string>> form);
  Result<void> load_jwks(bool force);
  Result<void> force_jwks_fetch(std::int64_t now);
  Result<Jws> verify_signature(const std::string& token);
  void load_disk_cache();
  // Adopts the disk cache's newer parts (discovery, keys) and its later forced-fetch time; false if unreadable.
  bool merge_disk_cache();
  void save_disk_cache();   // takes the cache lock
  void write_disk_cache();  // caller holds the cache lock

  const Config& config_;
  HttpTransport& http_;
  const Clock& clock_;
  std::unique_ptr<ProviderCache> cache_;
  std::string discovery_json_;
  std::string jwks_json_;
  std::int64_t discovery_at_ = 0;
  std::int64_t jwks_at_ = 0;
  std::int64_t jwks_forced_at_ = 0;  // last forced (unknown kid) JWKS fetch by any process, via the disk cache
  bool disk_loaded_ = false;
  std::int64_t deadline_ms_ = 0;     // set_deadline: provider calls end by this Clock::monotonic_ms (0: none)
  std::optional<ProviderMetadata> meta_;
  std::vector<Jwk> keys_;
  std::uint64_t keys_generation_ = 0;  // bumped whenever keys_ is replaced

  struct VerifiedToken {
    nlohmann::json header, payload;
    std::uint64_t keys_generation;  // valid only while keys_ are the ones that verified it
  };
  std::unordered_map<std::string, VerifiedToken> token_cache_;  // keyed by the whole token text
  std::deque<std::string> token_order_;                         // insertion order, for eviction

  struct Introspected {
    nlohmann::json answer;  // the introspection endpoint's answer
    std::int64_t until;     // reused before this time only
  };
  std::unordered_map<std::string, Introspected> introspection_cache_;  // keyed by the whole token text
};

}  // namespace kinde
