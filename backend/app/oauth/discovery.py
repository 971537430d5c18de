"""RFC 8414 / OpenID Connect Discovery metadata: only the endpoints that exist."""

from typing import Any

from app.core.config import get_settings
from app.core.security import oidc_signing_key
from app.models.client import Scope

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
USERINFO_PATH = "/oauth/userinfo"
JWKS_PATH = "/.well-known/jwks.json"
CLAIMS = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr",
    "email", "email_verified", "name", "updated_at", "role",
]  # fmt: skip


def issuer() -> str:
    return get_settings().PUBLIC_URL


def metadata() -> dict[str, Any]:
    """Introspection, revocation and end-session are listed once they are built."""
    base = issuer()
    return {
        "issuer": base,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "userinfo_endpoint": base + USERINFO_PATH,
        "jwks_uri": base + JWKS_PATH,
        "scopes_supported": [scope.value for scope in Scope],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "id_token_signing_alg_values_supported": [oidc_signing_key().algorithm],
        "subject_types_supported": ["public"],
        "claims_supported": CLAIMS,
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
