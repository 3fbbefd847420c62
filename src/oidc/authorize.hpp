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

// Where sign-out sends the browser at the provider: the discovery document's end_session_endpoint; else
// KINDE_END_SESSION_ENDPOINT (`configured`); else <issuer>/logout for a Kinde domain (kinde.com or *.kinde.com,
// which serves it without listing it); else "" (no provider sign-out: only the app's session ends).
std::string provider_logout_endpoint(const ProviderMetadata& m, const std::string& issuer, const std::string& configured);

// The provider's logout URL (RP-Initiated Logout 1.0 section 2, plus Kinde's `redirect`): endpoint +
// redirect, post_logout_redirect_uri, client_id, state (when not empty) and id_token_hint (when known),
// all URL-encoded.
std::string build_logout_url(const std::string& endpoint, const std::string& client_id, const std::string& return_url,
                             const std::string& id_token_hint, const std::string& state);

}  // namespace kinde
