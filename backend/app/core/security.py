"""The token format: claims, types, keys and the algorithm list. Pure functions, no database."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError

from app.core.config import get_settings
from app.errors import InvalidToken

MAX_TOKEN_LENGTH = 4096


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"
    MFA = "mfa"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: uuid.UUID
    sid: uuid.UUID
    type: TokenType
    jti: str
    exp: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class KeySet:
    algorithm: str
    kid: str
    signing_key: str
    verifying_keys: dict[str, str]


@lru_cache
def key_set() -> KeySet:
    settings = get_settings()
    assert settings.SECRET_KEY is not None  # settings fill it in or refuse to start
    secret = settings.SECRET_KEY
    kid = hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:16]
    return KeySet(algorithm="HS256", kid=kid, signing_key=secret, verifying_keys={kid: secret})


def new_jti() -> str:
    return secrets.token_urlsafe(16)


def create_token(
    *,
    subject: uuid.UUID,
    session_id: uuid.UUID,
    token_type: TokenType,
    expires_at: datetime,
    jti: str | None = None,
) -> IssuedToken:
    settings = get_settings()
    keys = key_set()
    jti = jti or new_jti()
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(subject),
        "sid": str(session_id),
        "type": token_type.value,
        "jti": jti,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if settings.JWT_ISSUER:
        claims["iss"] = settings.JWT_ISSUER
    if settings.JWT_AUDIENCE:
        claims["aud"] = settings.JWT_AUDIENCE
    token = jwt.encode(
        claims, keys.signing_key, algorithm=keys.algorithm, headers={"kid": keys.kid}
    )
    return IssuedToken(token=token, jti=jti, expires_at=datetime.fromtimestamp(claims["exp"], UTC))


def access_expiry() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=get_settings().ACCESS_TOKEN_EXPIRE_MINUTES)


def refresh_expiry() -> datetime:
    return datetime.now(UTC) + timedelta(days=get_settings().REFRESH_TOKEN_EXPIRE_DAYS)


def decode_token(token: str, expected: TokenType) -> TokenClaims:
    """Verify signature, algorithm, expiry, issuer/audience and type; raise InvalidToken."""
    settings = get_settings()
    keys = key_set()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    try:
        header = jwt.get_unverified_header(token)
        key = keys.verifying_keys.get(header.get("kid", keys.kid))
        if key is None or header.get("alg") != keys.algorithm:
            raise InvalidToken()
        payload = jwt.decode(
            token,
            key,
            algorithms=[keys.algorithm],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            options={
                "verify_aud": settings.JWT_AUDIENCE is not None,
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                "require_jti": True,
            },
        )
        claims = TokenClaims(
            sub=uuid.UUID(payload["sub"]),
            sid=uuid.UUID(payload["sid"]),
            type=TokenType(payload["type"]),
            jti=str(payload["jti"]),
            exp=datetime.fromtimestamp(payload["exp"], UTC),
        )
    except (JOSEError, KeyError, TypeError, ValueError, AttributeError):
        raise InvalidToken() from None
    if claims.type is not expected:
        raise InvalidToken()
    return claims


def token_digest(value: str) -> str:
    """SHA-256 of a high-entropy token, for storing it without keeping it."""
    return hashlib.sha256(value.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())
