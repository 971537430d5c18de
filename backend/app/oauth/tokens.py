"""The claims of ID tokens and RFC 9068 access tokens, and the token endpoint's answer.
Signing stays in core/security.py."""

import time
from typing import Any, Protocol

from pydantic import BaseModel

from app.auth.tokens import current_refresh_token
from app.core.config import get_settings
from app.core.keys import DEFAULT_ALGORITHM, ID_TOKEN_LIFETIME_S, ID_TOKEN_TYPE, OAUTH_ACCESS_TYPE
from app.core.permissions import Role
from app.core.security import half_hash, new_jti, sign_oidc_jwt
from app.models.session import AuthSession
from app.oauth.discovery import ACR_MULTI_FACTOR, ACR_ONE_FACTOR, issuer


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    id_token: str | None = None
    refresh_token: str | None = None


class Profile(Protocol):
    """What the claims read of a user (User and UserRead both have it)."""

    email: str
    full_name: str | None
    is_verified: bool
    role: Role

    @property
    def updated_at(self) -> Any: ...


def user_claims(user: Profile, scope: set[str] | frozenset[str]) -> dict[str, Any]:
    """The claims the scopes release (OIDC Core §5.4; `role` for the roles scope)."""
    claims: dict[str, Any] = {}
    if "email" in scope:
        claims.update(email=user.email, email_verified=user.is_verified)
    if "profile" in scope:  # the profile claims the service keeps; one without a value is
        if user.full_name:  # omitted, never null (OIDC Core §5.3.2)
            claims["name"] = user.full_name
        claims["updated_at"] = int(user.updated_at.timestamp())
    if "roles" in scope:
        claims["role"] = str(user.role)
    return claims


def acr_level(amr: list[str]) -> str:
    """A login's `acr` (answered when the client sent acr_values) from its `amr`: a TOTP, or
    a passkey with user verification, is a second factor."""
    if "otp" in amr or {"hwk", "user"} <= set(amr):
        return ACR_MULTI_FACTOR
    return ACR_ONE_FACTOR


class Selected(Protocol):
    """The organization a sign-in selected, as its tokens name it."""

    id: Any
    slug: str


def organization_claims(organization: Selected | None) -> dict[str, str]:
    if organization is None:
        return {}
    return {"org_id": str(organization.id), "org_slug": organization.slug}


def access_token(
    row: AuthSession, scope: str, organization: Selected | None = None
) -> tuple[str, int]:
    """An at+jwt naming the session, for its resource (RFC 8707; aud = the issuer, the
    service's own API, without one)."""
    assert row.client_id is not None
    now = int(time.time())
    lifetime = get_settings().ACCESS_TOKEN_EXPIRE_MINUTES * 60
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": str(row.user_id),
        "aud": row.resource or issuer(),
        "client_id": row.client_id,
        "scope": scope,
        "jti": new_jti(),
        "iat": now,
        "exp": now + lifetime,
        "sid": str(row.id),
        **organization_claims(organization),
    }
    if row.auth_time is not None:
        claims["auth_time"] = int(row.auth_time.timestamp())
    return sign_oidc_jwt(claims, typ=OAUTH_ACCESS_TYPE), lifetime


def client_access_token(
    client_id: str, scope: str, *, audience: str | None = None
) -> tuple[str, str, int, int]:
    """An at+jwt for a client itself (client_credentials): `sub` = `client_id`, no `sid`
    (so the service's own API, which needs a user, refuses it). Token, jti, exp, lifetime."""
    now = int(time.time())
    lifetime = get_settings().ACCESS_TOKEN_EXPIRE_MINUTES * 60
    jti = new_jti()
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": client_id,
        "aud": audience or issuer(),
        "client_id": client_id,
        "scope": scope,
        "jti": jti,
        "iat": now,
        "exp": now + lifetime,
    }
    return sign_oidc_jwt(claims, typ=OAUTH_ACCESS_TYPE), jti, now + lifetime, lifetime


def id_token(
    row: AuthSession,
    user: Profile,
    *,
    scope: set[str],
    nonce: str | None,
    access: str,
    acr: str | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
    organization: Selected | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Signed with the client's id_token_signed_response_alg (RS256 unless ES256)."""
    assert row.client_id is not None and row.auth_time is not None
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": str(row.user_id),
        "aud": row.client_id,
        "iat": now,
        "exp": now + ID_TOKEN_LIFETIME_S,
        "auth_time": int(row.auth_time.timestamp()),
        "at_hash": half_hash(access),
        "sid": str(row.browser_session_id or row.id),
        "amr": (row.amr or "").split(),
        **user_claims(user, scope),
        **organization_claims(organization),
        **(extra or {}),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if acr is not None:
        claims["acr"] = acr
    return sign_oidc_jwt(claims, typ=ID_TOKEN_TYPE, algorithm=algorithm)


def token_response(
    row: AuthSession,
    user: Profile,
    *,
    scope: list[str],
    with_refresh: bool,
    access_scope: list[str] | None = None,
    nonce: str | None = None,
    acr: str | None = None,
    id_token_alg: str = DEFAULT_ALGORITHM,
    organization: Selected | None = None,
    extra: dict[str, Any] | None = None,
) -> TokenResponse:
    """Access token, ID token (with openid) and, `with_refresh`, the session's current
    refresh token. `scope`: what the grant holds (the ID token's claims follow it);
    `access_scope`: the access token's (for a resource, the permissions held now)."""
    scope_text = " ".join(scope if access_scope is None else access_scope)
    access, lifetime = access_token(row, scope_text, organization)
    refresh = current_refresh_token(row) if with_refresh else None
    return TokenResponse(
        access_token=access,
        expires_in=lifetime,
        scope=scope_text,
        id_token=(
            id_token(
                row,
                user,
                scope=set(scope),
                nonce=nonce,
                access=access,
                acr=acr,
                algorithm=id_token_alg,
                organization=organization,
                extra=extra,
            )
            if "openid" in scope
            else None
        ),
        refresh_token=refresh,
    )
