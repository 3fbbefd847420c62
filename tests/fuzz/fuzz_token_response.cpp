// Token endpoint answers (ProviderClient::parse_token_response). The first two bytes pick the HTTP
// status (from a list of the ones providers send), the rest is the body. Property: success only on
// 200 with an access_token and a Bearer (or absent) token_type; expires_at is 0 or within [now, now + 10 years].
#include <string>

#include "fuzz_common.hpp"
#include "oidc/provider.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const long kStatuses[] = {200, 200, 200, 200, 400, 401, 403, 500, 502, 503, 201, 302, 0, -1, 999, 200};
  long status = size > 0 ? kStatuses[data[0] % 16] : 200;
  std::string body(kinde::fuzz::as_text(data, size).substr(size > 0 ? 1 : 0));
  auto tokens = kinde::ProviderClient::parse_token_response(status, body, kinde::fuzz::kNow);
  if (!tokens) {
    const std::string& code = tokens.error().code;
    FUZZ_CHECK(code == kinde::kTokenError || code == kinde::kTokenEndpointFailed || code == kinde::kTokenResponseInvalid);
    return 0;
  }
  FUZZ_CHECK(status == 200);
  FUZZ_CHECK(!tokens->access_token.empty());
  // expires_at is 0 (unknown) or now + expires_in, with expires_in clamped to [0, 10 years]: a
  // negative, fractional or absurd value never wraps around or lands before now.
  constexpr std::int64_t kTenYears = 10LL * 366 * 24 * 3600;
  FUZZ_CHECK(tokens->expires_at == 0 ||
             (tokens->expires_at >= kinde::fuzz::kNow && tokens->expires_at <= kinde::fuzz::kNow + kTenYears));
  return 0;
}
