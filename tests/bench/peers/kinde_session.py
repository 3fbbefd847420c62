"""What the Kinde Python SDK (1.x, the tutorials' pin) does with a signed-in session, for the Python
peers of `make bench-peers`; the SDK itself is not packaged in Debian.

- user_details(token_answer): the user's details from the ID token of a token endpoint answer, read
  without checking the signature, as the SDK's get_user_details() does.
- is_authenticated(tokens): whether the access token's `exp` is still ahead, again read without a
  signature check, as the SDK's is_authenticated() does on every call.
"""
import base64
import json
import time


def claims(jwt):
    """The payload of a compact JWS, decoded but not verified."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def user_details(token_answer):
    """{id, given_name, family_name, email, picture} from the answer's id_token."""
    id_claims = claims(token_answer["id_token"])
    return {
        "id": id_claims.get("sub"),
        "given_name": id_claims.get("given_name"),
        "family_name": id_claims.get("family_name"),
        "email": id_claims.get("email"),
        "picture": id_claims.get("picture"),
    }


def session_record(token_answer):
    """What a signed-in session holds: the user's details and the tokens."""
    return {
        "user": user_details(token_answer),
        "tokens": {
            "access_token": token_answer["access_token"],
            "id_token": token_answer["id_token"],
            "refresh_token": token_answer.get("refresh_token"),
            "expires_in": token_answer.get("expires_in"),
        },
    }


def is_authenticated(tokens):
    """True when tokens hold an access token whose exp is in the future."""
    if not tokens or not tokens.get("access_token"):
        return False
    return claims(tokens["access_token"]).get("exp", 0) > time.time()
