#include "oidc/authorize.hpp"

#include <openssl/evp.h>

#include "config/config.hpp"
#include "util/encoding.hpp"

namespace kinde {

std::string pkce_challenge(const std::string& verifier) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(verifier.data(), verifier.size(), md, &len, EVP_sha256(), nullptr);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string build_authorize_url(const std::string& endpoint, const AuthorizeRequest& r) {
  Params q = {{"response_type", "code"},
              {"client_id", r.client_id},
              {"redirect_uri", r.redirect_uri},
              {"scope", r.scope},
              {"state", r.state},
              {"nonce", r.nonce},
              {"code_challenge", pkce_challenge(r.code_verifier)},
              {"code_challenge_method", "S256"}};
  for (const auto& p : r.extra) q.push_back(p);
  return endpoint + (endpoint.find('?') == std::string::npos ? "?" : "&") + build_query(q);
}

std::string provider_logout_endpoint(const ProviderMetadata& m, const std::string& issuer, const std::string& configured) {
  if (!m.end_session_endpoint.empty()) return m.end_session_endpoint;
  if (!configured.empty()) return configured;
  // Kinde serves /logout without listing it in discovery. Another provider without an end_session_endpoint has
  // no standard sign-out URL: guessing one lands the visitor on the provider's 404 page.
  auto origin = parse_url_origin(issuer);
  if (!origin) return {};
  const std::string& host = origin->host;
  const std::string_view kinde = ".kinde.com";
  const bool is_kinde = host == "kinde.com" ||
                        (host.size() > kinde.size() && host.compare(host.size() - kinde.size(), kinde.size(), kinde) == 0);
  return is_kinde ? issuer_base(issuer) + "/logout" : std::string();
}

std::string build_logout_url(const std::string& endpoint, const std::string& client_id, const std::string& return_url,
                             const std::string& id_token_hint, const std::string& state) {
  Params q = {{"redirect", return_url}, {"post_logout_redirect_uri", return_url}, {"client_id", client_id}};
  // RP-Initiated Logout 1.0 section 2: state comes back on the post-logout redirect; glewlwyd redirects only with it.
  if (!state.empty()) q.emplace_back("state", state);
  if (!id_token_hint.empty()) q.emplace_back("id_token_hint", id_token_hint);
  return endpoint + (endpoint.find('?') == std::string::npos ? "?" : "&") + build_query(q);
}

}  // namespace kinde
