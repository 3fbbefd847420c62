// OidcClient: what the handlers need from the provider. The real one (ProviderClient) uses discovery,
// the token endpoint and the JWKS over HttpTransport; handler tests hand in a fake.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace kinde {

// Error codes (Error::code) this module returns.
inline constexpr const char* kDiscoveryBadEndpoint = "discovery_bad_endpoint";  // error code
inline constexpr const char* kDiscoveryFailed = "discovery_failed";  // error code
inline constexpr const char* kDiscoveryForeignEndpoint = "discovery_foreign_endpoint";  // error code
inline constexpr const char* kDiscoveryInsecureEndpoint = "discovery_insecure_endpoint";  // error code
inline constexpr const char* kDiscoveryIssuerMismatch = "discovery_issuer_mismatch";  // error code
inline constexpr const char* kJwksFailed = "jwks_failed";  // error code
inline constexpr const char* kJwksRateLimited = "jwks_rate_limited";  // error code
inline constexpr const char* kRevocationFailed = "revocation_failed";  // error code
inline constexpr const char* kRevocationUnsupported = "revocation_unsupported";  // error code
inline constexpr const char* kTokenEndpointFailed = "token_endpoint_failed";  // error code
inline constexpr const char* kTokenError = "token_error";  // error code
inline constexpr const char* kTokenResponseInvalid = "token_response_invalid";  // error code
inline constexpr const char* kIntrospectionFailed = "introspection_failed";  // error code
inline constexpr const char* kUserinfoFailed = "userinfo_failed";  // error code
inline constexpr const char* kUserinfoUnsupported = "userinfo_unsupported";  // error code

// The provider, or the way to it, is down (discovery, JWKS or token endpoint unreachable, 5xx,
// server_error, temporarily_unavailable): not a verdict on a token. Sessions are kept for a retry.
inline bool is_provider_outage(const Error& e) {
  return e.code == kDiscoveryFailed || e.code == kJwksFailed || e.code == kTokenEndpointFailed;
}

struct ProviderMetadata {
  std::string issuer;
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string jwks_uri;
  std::string end_session_endpoint;  // "" when the provider has none (then issuer + "/logout")
  std::string userinfo_endpoint;
  std::string revocation_endpoint;     // RFC 7009; "" when the provider lists none
  std::string introspection_endpoint;  // RFC 7662; "" when the provider lists none
  std::vector<std::string> scopes_supported;  // as listed (empty when not listed)
};

struct TokenSet {
  std::string access_token;
  std::string id_token;
  std::string refresh_token;
  std::string scope;
  std::int64_t expires_at = 0;  // Unix seconds: now + expires_in, else the access token's exp (0 when unknown)
};

class OidcClient {
 public:
  virtual ~OidcClient() = default;
  // Discovery document (cached in process and on disk). Errors: "discovery_failed", "discovery_issuer_mismatch",
  // and for an endpoint the app must not call (see ProviderClient::parse_discovery): "discovery_bad_endpoint",
  // "discovery_insecure_endpoint", "discovery_foreign_endpoint".
  virtual Result<ProviderMetadata> metadata() = 0;
  // authorization_code grant with PKCE. Errors: "token_endpoint_failed", "token_error" (detail has the
  // provider's error code, e.g. invalid_grant), "token_response_invalid".
  virtual Result<TokenSet> exchange_code(const std::string& code, const std::string& code_verifier,
                                         const std::string& redirect_uri) = 0;
  // refresh_token grant. Same errors as exchange_code.
  virtual Result<TokenSet> refresh(const std::string& refresh_token) = 0;
  // Verifies an ID token (signature by JWKS with one rate-limited re-fetch for an unknown kid, then the
  // OpenID claim checks). An empty nonce skips the nonce check (refreshed ID tokens). Returns the claims.
  virtual Result<nlohmann::json> verify_id_token(const std::string& token, const std::string& nonce,
                                                 std::int64_t now) = 0;
  // Verifies a bearer access token. A JWT (looks_like_jwt): signature, then check_access_token_claims
  // (oidc/token_checks.hpp: iss, exp/nbf, never an ID token, aud contains KINDE_AUDIENCE or, without it,
  // azp/client_id is KINDE_CLIENT_ID). An opaque token: RFC 7662 introspection when discovery lists an
  // introspection_endpoint ("token_opaque" otherwise), then "token_inactive" unless active, then the same claim
  // checks on the answer. Returns the claims.
  virtual Result<nlohmann::json> verify_access_token(const std::string& token, std::int64_t now) = 0;
  // OpenID Connect Core 5.3: the UserInfo endpoint's claims for this access token (a JSON object with a string
  // sub). Errors: "userinfo_unsupported" (no userinfo_endpoint listed), "userinfo_failed", and metadata()'s.
  // The caller compares sub with the ID token's (Core 5.3.4).
  virtual Result<nlohmann::json> userinfo(const std::string& access_token) = 0;
  // RFC 7009: revokes a refresh token at the discovery document's revocation_endpoint, with the same client
  // authentication as the token endpoint, waiting a few seconds at most. Errors: "revocation_unsupported" (no
  // endpoint listed), "revocation_failed" (network, timeout or an HTTP error; the detail never holds the token),
  // and metadata()'s.
  virtual Result<void> revoke_refresh_token(const std::string& refresh_token) = 0;
  // Every provider call from now on ends by this Clock::monotonic_ms() instant (its timeouts are cut to
  // fit; once it has passed a call fails at once with "http_timeout"); 0 lifts it. The refresh path
  // sets it while it holds a session lock, so no call outlives the lock.
  virtual void set_deadline(std::int64_t monotonic_ms) { (void)monotonic_ms; }
  // Loads discovery and the JWKS (from the shared cache, else the provider) so that a refresh that
  // follows needs only the token call. Failures are left for the calls that need the documents.
  virtual void warm_up() {}
};

// Sets a deadline on an OidcClient for the holder's lifetime and lifts it after.
class ProviderDeadline {
 public:
  ProviderDeadline(OidcClient& client, std::int64_t monotonic_ms) : client_(client) { client_.set_deadline(monotonic_ms); }
  ~ProviderDeadline() { client_.set_deadline(0); }
  ProviderDeadline(const ProviderDeadline&) = delete;
  ProviderDeadline& operator=(const ProviderDeadline&) = delete;

 private:
  OidcClient& client_;
};

}  // namespace kinde
