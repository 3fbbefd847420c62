// The authorization request (OpenID Connect Core 3.1.2.1 + RFC 7636 PKCE + Kinde's extras).
#pragma once
#include <string>

#include "oidc/client.hpp"
#include "util/url.hpp"

namespace kinde {

// S256 code challenge: base64url(SHA-256(verifier)).
std::string pkce_challenge(const std::string& verifier);

struct AuthorizeRequest {
  std::string client_id, redirect_uri, scope, state, nonce, code_verifier;
  Params extra;  // prompt=create, is_create_org, org_name, org_code, audience, lang, login_hint ...
};

// The full authorize URL: endpoint + response_type=code, client_id, redirect_uri, scope, state, nonce,
// code_challenge, code_challenge_method=S256, then the extras, all URL-encoded.
std::string build_authorize_url(const std::string& authorization_endpoint, const AuthorizeRequest& r);

// The provider's logout URL with Kinde's `redirect` and the standard post_logout_redirect_uri,
// client_id and (when known) id_token_hint, all URL-encoded.
std::string build_logout_url(const ProviderMetadata& m, const std::string& issuer, const std::string& client_id,
                             const std::string& return_url, const std::string& id_token_hint);

}  // namespace kinde
