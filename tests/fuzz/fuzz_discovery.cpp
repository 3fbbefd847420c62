// Discovery documents (ProviderClient::parse_discovery): any text gives an Error or metadata whose
// issuer is the configured one (OIDC Discovery 4.3) with the three endpoints the app needs, each one it calls on
// the issuer's host.
#include <string>

#include "fuzz_common.hpp"
#include "oidc/provider.hpp"
#include "util/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string expected(kinde::fuzz::kIssuer);
  auto meta = kinde::ProviderClient::parse_discovery(std::string(kinde::fuzz::as_text(data, size)), expected);
  if (!meta) {
    const std::string& code = meta.error().code;
    FUZZ_CHECK(code == kinde::kDiscoveryFailed || code == kinde::kDiscoveryIssuerMismatch || code == kinde::kDiscoveryBadEndpoint ||
               code == kinde::kDiscoveryInsecureEndpoint || code == kinde::kDiscoveryForeignEndpoint);
    return 0;
  }
  std::string iss = meta->issuer;
  while (!iss.empty() && iss.back() == '/') iss.pop_back();
  FUZZ_CHECK(iss == expected);
  FUZZ_CHECK(!meta->authorization_endpoint.empty() && !meta->token_endpoint.empty() && !meta->jwks_uri.empty());
  // The endpoints the app calls are on the issuer's host (no trusted hosts given here).
  const auto issuer = kinde::parse_url_origin(expected);
  FUZZ_CHECK(issuer.has_value());
  for (const std::string* url : {&meta->authorization_endpoint, &meta->token_endpoint, &meta->jwks_uri,
                                 &meta->userinfo_endpoint, &meta->revocation_endpoint, &meta->end_session_endpoint,
                                 &meta->introspection_endpoint}) {
    if (url->empty()) continue;
    const auto origin = kinde::parse_url_origin(*url);
    FUZZ_CHECK(origin.has_value() && origin->host == issuer->host);
  }
  return 0;
}
