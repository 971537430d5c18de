"""RFC 8414 / OpenID Connect Discovery metadata."""

from typing import Any

from app.core.config import get_settings
from app.core.i18n import LOCALES
from app.core.keys import signing_algorithms, signing_key
from app.models.client import CLIENT_SCOPES

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
USERINFO_PATH = "/oauth/userinfo"
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
END_SESSION_PATH = "/oauth/logout"
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
JWKS_PATH = "/.well-known/jwks.json"
CLAIMS = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "acr",
    "email", "email_verified", "name", "updated_at", "role",
]  # fmt: skip

# The `acr` of an ID token when the client sent acr_values (oauth/tokens.py acr_level):
# "1" a one-factor login, "2" a multi-factor one. acr is voluntary (the claims parameter,
# which could ask for it as essential, is not supported), so it states what the login
# was, whatever was asked.
ACR_ONE_FACTOR = "1"
ACR_MULTI_FACTOR = "2"


def issuer() -> str:
    return get_settings().PUBLIC_URL


def metadata() -> dict[str, Any]:
    signing_key()  # the RS256 key every configuration has; production without one: 503
    base = issuer()
    return {
        "issuer": base,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "userinfo_endpoint": base + USERINFO_PATH,
        "jwks_uri": base + JWKS_PATH,
        "introspection_endpoint": base + INTROSPECTION_PATH,
        "revocation_endpoint": base + REVOCATION_PATH,
        "end_session_endpoint": base + END_SESSION_PATH,
        "scopes_supported": list(CLIENT_SCOPES),  # the OIDC scopes, then the API's
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        # Introspection: confidential clients only; revocation: public clients name
        # themselves with client_id, as at the token endpoint.
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        # RS256 always (OIDC Discovery §3), first; ES256 for clients that register it
        "id_token_signing_alg_values_supported": signing_algorithms(),
        "subject_types_supported": ["public"],
        "claims_supported": CLAIMS,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "acr_values_supported": [ACR_ONE_FACTOR, ACR_MULTI_FACTOR],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,  # the scopes alone choose the claims
        "ui_locales_supported": list(LOCALES),  # the hosted pages' languages
    }
