// Discovery documents (ProviderClient::parse_discovery): any text gives an Error or metadata whose
// issuer is the configured one (OIDC Discovery 4.3) with the three endpoints the app needs.
#include <string>

#include "fuzz_common.hpp"
#include "oidc/provider.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string expected(kinde::fuzz::kIssuer);
  auto meta = kinde::ProviderClient::parse_discovery(std::string(kinde::fuzz::as_text(data, size)), expected);
  if (!meta) {
    const std::string& code = meta.error().code;
    FUZZ_CHECK(code == "discovery_failed" || code == "discovery_issuer_mismatch");
    return 0;
  }
  std::string iss = meta->issuer;
  while (!iss.empty() && iss.back() == '/') iss.pop_back();
  FUZZ_CHECK(iss == expected);
  FUZZ_CHECK(!meta->authorization_endpoint.empty() && !meta->token_endpoint.empty() && !meta->jwks_uri.empty());
  return 0;
}
