"""The token format: claims, types, keys and the algorithm list. Pure functions, no database."""

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jws, jwt
from jose.exceptions import JOSEError, JWTError

from app.core.config import SettingsError, get_settings
from app.errors import InvalidToken

MAX_TOKEN_LENGTH = 4096
MAX_CLOCK_SKEW_S = 60  # an `iat` or `nbf` further in the future than this is refused
MIN_RSA_BITS = 2048

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


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
    """The current key signs; it and the extra public keys verify, chosen by the token's kid."""

    algorithm: str
    kid: str
    signing_key: str | PrivateKey
    verifying_keys: dict[str, str | PublicKey]
    jwks: tuple[dict[str, str], ...] = ()
    verifiers: dict[str, jwk.Key] = field(default_factory=dict)  # built once, used per request
    by_header: dict[str, jwk.Key] = field(default_factory=dict)  # a token's first segment

    def __post_init__(self) -> None:
        for kid, key in self.verifying_keys.items():
            self.verifiers[kid] = jwk.construct(key, self.algorithm)
            self.by_header[header_segment(self.algorithm, kid)] = self.verifiers[kid]

    def verifier(self, token: str) -> jwk.Key:
        """The key that must have signed `token`, chosen by its kid. The header of the
        service's own tokens is known in advance, so finding their key takes no parse;
        any other header is parsed. The algorithm is checked again by jws.verify."""
        key = self.by_header.get(token.partition(".")[0])
        if key is None:
            header = jwt.get_unverified_header(token)
            key = self.verifiers.get(header.get("kid", self.kid))
            if key is None or header.get("alg") != self.algorithm:
                raise JWTError("unknown kid or algorithm")
        return key


def header_segment(algorithm: str, kid: str) -> str:
    """The first segment of the tokens create_token signs with key `kid` (python-jose writes
    the header as compact JSON with sorted keys)."""
    header = {"alg": algorithm, "kid": kid, "typ": "JWT"}
    return _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


@lru_cache
def key_set() -> KeySet:
    """The configured keys, loaded once. A bad key file raises SettingsError (one line)."""
    settings = get_settings()
    if settings.ALGORITHM == "HS256":
        assert settings.SECRET_KEY is not None  # settings fill it in or refuse to start
        secret = settings.SECRET_KEY
        kid = hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:16]
        return KeySet(algorithm="HS256", kid=kid, signing_key=secret, verifying_keys={kid: secret})
    assert settings.JWT_PRIVATE_KEY_FILE is not None  # settings refuse RS256/ES256 without it
    private_key = _load_private_key(settings.JWT_PRIVATE_KEY_FILE, settings.ALGORITHM)
    current = private_key.public_key()
    verifying_keys: dict[str, PublicKey] = {key_id(current): current}
    for path in settings.JWT_EXTRA_PUBLIC_KEY_FILES:
        extra = _load_public_key(path, settings.ALGORITHM)
        verifying_keys.setdefault(key_id(extra), extra)
    return KeySet(
        algorithm=settings.ALGORITHM,
        kid=key_id(current),
        signing_key=private_key,
        verifying_keys=dict(verifying_keys),
        jwks=tuple(public_jwk(key, settings.ALGORITHM) for key in verifying_keys.values()),
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int, size: int | None = None) -> str:
    """Big-endian unsigned bytes, minimal (RSA n, e) or of a fixed size (EC coordinates)."""
    return _b64url(value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big"))


def _jwk_members(key: PublicKey) -> dict[str, str]:
    """The members that define a public key as a JWK (RFC 7638's required members)."""
    if isinstance(key, rsa.RSAPublicKey):
        rsa_numbers = key.public_numbers()
        return {"kty": "RSA", "n": _b64url_uint(rsa_numbers.n), "e": _b64url_uint(rsa_numbers.e)}
    ec_numbers = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url_uint(ec_numbers.x, size),
        "y": _b64url_uint(ec_numbers.y, size),
    }


def key_id(key: PublicKey) -> str:
    """The RFC 7638 JWK thumbprint: base64url SHA-256 of the sorted, compact required members."""
    canonical = json.dumps(_jwk_members(key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(key: PublicKey, algorithm: str) -> dict[str, str]:
    """`key` as published in the JWKS: its defining members, kid, use and alg; nothing private."""
    return {**_jwk_members(key), "kid": key_id(key), "use": "sig", "alg": algorithm}


def generate_private_key(algorithm: str) -> tuple[bytes, str]:
    """A new unencrypted PKCS#8 PEM key for RS256 (RSA 2048) or ES256 (P-256), and its kid."""
    key: PrivateKey
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    elif algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"no key to generate for {algorithm}")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, key_id(key.public_key())


def _key_file_error(setting: str, path: Path, problem: str) -> SettingsError:
    return SettingsError(f"Invalid setting {setting}: {path}: {problem}")


def _read_key_file(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise _key_file_error(setting, path, error.strerror or str(error)) from None


def _check_key_type(setting: str, path: Path, key: object, algorithm: str) -> PublicKey:
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPublicKey):
            raise _key_file_error(setting, path, "not an RSA key, which RS256 needs")
        if key.key_size < MIN_RSA_BITS:
            raise _key_file_error(
                setting, path, f"RSA key of {key.key_size} bits; RS256 needs {MIN_RSA_BITS} or more"
            )
        return key
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise _key_file_error(setting, path, "not an EC P-256 key, which ES256 needs")
    return key


def _load_private_key(path: Path, algorithm: str) -> PrivateKey:
    setting = "JWT_PRIVATE_KEY_FILE"
    data = _read_key_file(setting, path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise _key_file_error(setting, path, "the key is encrypted; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _key_file_error(setting, path, "not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise _key_file_error(setting, path, f"not an RSA or EC key, which {algorithm} needs")
    _check_key_type(setting, path, key.public_key(), algorithm)
    return key


def _load_public_key(path: Path, algorithm: str) -> PublicKey:
    """A PEM public key, or the public half of a PEM private key."""
    setting = "JWT_EXTRA_PUBLIC_KEY_FILES"
    data = _read_key_file(setting, path)
    try:
        key: object = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (TypeError, ValueError, UnsupportedAlgorithm):
            raise _key_file_error(setting, path, "not a PEM public key") from None
    return _check_key_type(setting, path, key, algorithm)


def new_jti() -> str:
    return secrets.token_urlsafe(16)


def create_token(
    *,
    subject: uuid.UUID,
    session_id: uuid.UUID,
    token_type: TokenType,
    expires_at: datetime,
    jti: str | None = None,
    issued_at: datetime | None = None,
) -> IssuedToken:
    """A signed token. Given `jti` and `issued_at`, the claims are exactly those of the token
    issued with them before (with HS256 and RS256, the very same string)."""
    settings = get_settings()
    keys = key_set()
    jti = jti or new_jti()
    issued = issued_at or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(subject),
        "sid": str(session_id),
        "type": token_type.value,
        "jti": jti,
        "iat": int(issued.timestamp()),
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


MFA_TOKEN_EXPIRE_MINUTES = 5  # the second step of a login: long enough to open the app


def mfa_expiry() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=MFA_TOKEN_EXPIRE_MINUTES)


def decode_token(token: str, expected: TokenType) -> TokenClaims:
    """A token of this service, of the expected type, unexpired; else InvalidToken.

    python-jose verifies the signature and the algorithm (one in the list: the key set's).
    The claims are then checked here, against the format create_token writes, rather than
    by jwt.decode, which parses the header a second time and runs nine generic checks: on
    every request that is a fifth of the token's cost. Issuer and audience are checked
    when configured, as jwt.decode did. A token issued (`iat`) or valid from (`nbf`) more
    than MAX_CLOCK_SKEW_S in the future is refused: no clock of ours made it."""
    settings = get_settings()
    keys = key_set()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    try:
        payload = json.loads(jws.verify(token, keys.verifier(token), [keys.algorithm]))
        exp, iat, jti, nbf = payload["exp"], payload["iat"], payload["jti"], payload.get("nbf")
        claims = TokenClaims(
            sub=uuid.UUID(payload["sub"]),
            sid=uuid.UUID(payload["sid"]),
            type=TokenType(payload["type"]),
            jti=jti,
            exp=datetime.fromtimestamp(exp, UTC),
        )
    except (JOSEError, KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError):
        raise InvalidToken() from None
    now = time.time()
    if (
        claims.type is not expected
        or type(exp) is not int
        or type(iat) is not int
        or type(jti) is not str
        or exp <= now
        or iat > now + MAX_CLOCK_SKEW_S
        or (nbf is not None and (type(nbf) is not int or nbf > now + MAX_CLOCK_SKEW_S))
        or (settings.JWT_ISSUER is not None and payload.get("iss") != settings.JWT_ISSUER)
        or (settings.JWT_AUDIENCE is not None and payload.get("aud") != settings.JWT_AUDIENCE)
    ):
        raise InvalidToken()
    return claims


def token_digest(value: str) -> str:
    """SHA-256 of a high-entropy token, for storing it without keeping it."""
    return hashlib.sha256(value.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())
