#include "oidc/authorize.hpp"

#include <openssl/evp.h>

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

std::string build_logout_url(const ProviderMetadata& m, const std::string& issuer, const std::string& client_id,
                             const std::string& return_url, const std::string& id_token_hint) {
  std::string endpoint = m.end_session_endpoint.empty() ? issuer + "/logout" : m.end_session_endpoint;
  Params q = {{"redirect", return_url}, {"post_logout_redirect_uri", return_url}, {"client_id", client_id}};
  if (!id_token_hint.empty()) q.emplace_back("id_token_hint", id_token_hint);
  return endpoint + (endpoint.find('?') == std::string::npos ? "?" : "&") + build_query(q);
}

}  // namespace kinde
