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
#include "util/clock.hpp"

namespace kinde {

class ProviderClient : public OidcClient {
 public:
  // cache_file: where discovery and JWKS are kept between processes ("" = memory only).
  ProviderClient(const Config& config, HttpTransport& http, const Clock& clock, std::string cache_file);

  Result<ProviderMetadata> metadata() override;
  Result<TokenSet> exchange_code(const std::string& code, const std::string& code_verifier,
                                 const std::string& redirect_uri) override;
  Result<TokenSet> refresh(const std::string& refresh_token) override;
  Result<nlohmann::json> verify_id_token(const std::string& token, const std::string& nonce,
                                         std::int64_t now) override;
  // Bearer check; a token whose signature was verified before against the same key set is not
  // re-verified (see token_cache_), but its claims (exp, nbf, iss, aud) are checked every call.
  Result<nlohmann::json> verify_access_token(const std::string& token, std::int64_t now) override;

  // Most access tokens kept by the verified-token cache (oldest evicted first).
  static constexpr std::size_t kTokenCacheSize = 256;
  // How many verified access tokens are cached right now (for tests).
  std::size_t cached_token_count() const { return token_cache_.size(); }

  // Parses a discovery document and checks its issuer against the configured one (OIDC Discovery 4.3).
  static Result<ProviderMetadata> parse_discovery(const std::string& json_text, const std::string& expected_issuer);
  // Parses a token endpoint answer (RFC 6749 5.1/5.2): the error's code goes into "token_error".
  static Result<TokenSet> parse_token_response(long status, const std::string& body, std::int64_t now);

 private:
  Result<std::string> fetch(const std::string& url);
  Result<TokenSet> token_request(std::vector<std::pair<std::string, std::string>> form);
  Result<void> load_jwks(bool force);
  Result<Jws> verify_signature(const std::string& token);
  void load_disk_cache();
  void save_disk_cache();

  const Config& config_;
  HttpTransport& http_;
  const Clock& clock_;
  std::string cache_file_;
  std::string discovery_json_;
  std::string jwks_json_;
  std::int64_t discovery_at_ = 0;
  std::int64_t jwks_at_ = 0;
  std::int64_t jwks_forced_at_ = 0;
  bool disk_loaded_ = false;
  std::optional<ProviderMetadata> meta_;
  std::vector<Jwk> keys_;
  std::uint64_t keys_generation_ = 0;  // bumped whenever keys_ is replaced

  struct VerifiedToken {
    nlohmann::json payload;
    std::uint64_t keys_generation;  // valid only while keys_ are the ones that verified it
  };
  std::unordered_map<std::string, VerifiedToken> token_cache_;  // keyed by the whole token text
  std::deque<std::string> token_order_;                         // insertion order, for eviction
};

}  // namespace kinde
