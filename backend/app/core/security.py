"""The token format: claims, types, encoding and decoding, strict parsing. Pure functions,
no database; the keys are core/keys.py's."""

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jose import jws, jwt
from jose.exceptions import JOSEError

from app.core.config import SettingsError, get_settings
from app.core.keys import (
    DEFAULT_ALGORITHM,
    ID_TOKEN_TYPE,
    MAX_CLOCK_SKEW_S,
    PrivateKey,
    SigningKey,
    access_key,
    key_set,
    oidc_keys,
    signing_key,
    unknown_key_seen,
)
from app.core.keys import b64url as _b64url
from app.errors import InvalidToken

MAX_TOKEN_LENGTH = 4096
ES256_SIGNATURE_BYTES = 64


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
    scope: frozenset[str] | None = None  # an OAuth access token's; None: the service's own


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


def _b64url_decode(segment: str) -> bytes:
    """A base64url segment without padding (RFC 7515 §2), strictly: any other character,
    padding, or non-zero bits after the last whole byte is a ValueError (_canonical)."""
    if not _B64URL_SEGMENT.fullmatch(segment) or not _canonical(segment):
        raise ValueError("not a canonical base64url segment")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _canonical(segment: str) -> bool:
    """Whether a segment of base64url characters is the one encoding of its bytes: a length
    that whole bytes give, and the bits after the last whole byte zero (decoders drop them,
    so `...Q` and `...R` would be one value). Looks at the length and last character only."""
    rest = len(segment) % 4
    return (
        rest == 0
        or (rest == 2 and segment[-1] in _LAST_OF_ONE_BYTE)
        or (rest == 3 and segment[-1] in _LAST_OF_TWO_BYTES)
    )


_B64URL_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_COMPACT = re.compile(r"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
_LAST_OF_ONE_BYTE = "AQgw"  # 2 bits of data, 4 zero bits
_LAST_OF_TWO_BYTES = "AEIMQUYcgkosw048"  # 4 bits of data, 2 zero bits


# --- Strict token parsing (OIDC.md, revision 2): one token string for the same claims ----

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _es256_r_s(signature: bytes) -> tuple[int, int]:
    """R and S of a raw ES256 signature (RFC 7518 §3.4: 32 bytes each), S low only: (R, S)
    and (R, n - S) both verify under ECDSA, so only S <= n/2 is accepted, and _sign writes
    that one. Anything else is a ValueError."""
    if len(signature) != ES256_SIGNATURE_BYTES:
        raise ValueError("not an ES256 signature")
    half = ES256_SIGNATURE_BYTES // 2
    r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    if s > P256_ORDER // 2:
        raise ValueError("high-S ES256 signature")
    return r, s


def _check_compact(token: str, algorithm: str) -> None:
    """ValueError unless `token` is in its one accepted form, checked before the signature:
    three canonical base64url segments (_b64url_decode) and, for ES256, a low-S signature.
    python-jose accepts padding, stray trailing bits and either S: each a second string
    that would verify with the same claims."""
    compact = _COMPACT.fullmatch(token)
    if compact is None or not all(_canonical(segment) for segment in compact.groups()):
        raise ValueError("not a compact JWS of canonical base64url segments")
    if algorithm == "ES256":
        _es256_r_s(_b64url_decode(compact.group(3)))


def _sign(
    claims: dict[str, Any], key: str | PrivateKey, algorithm: str, headers: dict[str, str]
) -> str:
    """python-jose's compact JWS (header JSON compact and sorted, as header_segment and
    _oauth_header_segment expect), with an ES256 signature's S made low: ECDSA gives a
    random one of S and n - S, _check_compact accepts the low one only."""
    token = jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    if algorithm != "ES256":
        return token
    signing_input, _, signature_segment = token.rpartition(".")
    signature = _b64url_decode(signature_segment)
    half = ES256_SIGNATURE_BYTES // 2
    s = int.from_bytes(signature[half:], "big")
    if s > P256_ORDER // 2:
        signature = signature[:half] + (P256_ORDER - s).to_bytes(half, "big")
    return f"{signing_input}.{_b64url(signature)}"


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
    token = _sign(claims, keys.signing_key, keys.algorithm, {"kid": keys.kid})
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

    The token must be in its one accepted form (_check_compact); python-jose then verifies
    the signature and the algorithm (one in the list: the key set's).
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
        _check_compact(token, keys.algorithm)
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


# --- ID tokens and RFC 9068 access tokens, signed with the OIDC keys (core/keys.py) -------


def _access_payload(key: SigningKey, token: str) -> bytes:
    """The payload of `token`, an access token whose first segment the caller found to be
    `key.access_header`, once its signature is verified: with cryptography on this cached
    key, without python-jose, which spends a third as long again as the signature check
    itself around it (header parse, algorithm list, key lookup, DER conversion). The header
    segment, compared whole, fixes the algorithm: none other is tried. A bad signature or a
    malformed segment raises InvalidSignature or ValueError."""
    signing_input, _, signature_segment = token.rpartition(".")
    payload_segment = signing_input.partition(".")[2]
    signature = _b64url_decode(signature_segment)
    message = signing_input.encode("ascii")
    public = key.public_key
    if key.algorithm == "ES256" and isinstance(public, ec.EllipticCurvePublicKey):
        r, s = _es256_r_s(signature)  # low S only (_check_compact)
        public.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    elif key.algorithm == "RS256" and isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise InvalidSignature()  # no other algorithm, nor a key of another type
    return _b64url_decode(payload_segment)


@dataclass(frozen=True, slots=True)
class OAuthAccessClaims:
    """The checked claims of an RFC 9068 access token of this issuer."""

    sub: str
    client_id: str
    scope: frozenset[str]
    jti: str
    exp: datetime
    sid: uuid.UUID | None
    auth_time: int | None
    iat: int = 0


def sign_oidc_jwt(claims: dict[str, Any], *, typ: str, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """Sign ID token (typ JWT) or OAuth access token (typ at+jwt) claims with the OIDC key
    of `algorithm` that signs now."""
    key = signing_key(algorithm)
    return _sign(claims, key.private_key, key.algorithm, {"kid": key.kid, "typ": typ})


def decode_oauth_access_token(token: str) -> OAuthAccessClaims:
    """An unexpired at+jwt of this issuer, for the service's own API (aud = the issuer)."""
    issuer = get_settings().PUBLIC_URL
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    key = access_key(token)
    if key is None:
        unknown_key_seen()
        raise InvalidToken()
    try:
        payload = json.loads(_access_payload(key, token))
        exp, iat, jti, sub, client_id = (
            payload["exp"],
            payload["iat"],
            payload["jti"],
            payload["sub"],
            payload["client_id"],
        )
        scope = payload["scope"]
        sid = uuid.UUID(payload["sid"]) if "sid" in payload else None
        auth_time = payload.get("auth_time")
        expires_at = datetime.fromtimestamp(exp, UTC)  # past year 9999: ValueError
    except (
        InvalidSignature,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        OSError,
    ):
        raise InvalidToken() from None
    if (
        type(exp) is not int
        or type(iat) is not int
        or not all(type(value) is str for value in (jti, sub, client_id, scope))
        or (auth_time is not None and type(auth_time) is not int)
        or exp <= time.time()
        or payload.get("iss") != issuer
        or payload.get("aud") != issuer
    ):
        raise InvalidToken()
    return OAuthAccessClaims(
        sub=sub,
        client_id=client_id,
        scope=frozenset(scope.split()),
        jti=jti,
        exp=expires_at,
        sid=sid,
        auth_time=auth_time,
        iat=iat,
    )


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    """The claims RP-initiated logout reads of an ID token this issuer signed."""

    sub: str
    aud: str
    sid: str | None
    exp: int


def decode_id_token_hint(token: str) -> IdTokenHint:
    """An ID token of this issuer (typ JWT, signed with an OIDC key it still holds: active
    or retired), expired or not: RPs send the one they got at sign-in, which lives minutes
    (OIDC RP-Initiated Logout §2)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    try:
        header = jwt.get_unverified_header(token)
        key = oidc_keys().by_kid.get(header.get("kid", ""))
        if key is None or header.get("alg") != key.algorithm:
            unknown_key_seen()
            raise InvalidToken()
        _check_compact(token, key.algorithm)
        payload = json.loads(jws.verify(token, key.verifier, [key.algorithm]))
        sub, aud, sid, exp = payload["sub"], payload["aud"], payload.get("sid"), payload["exp"]
    except (JOSEError, SettingsError, KeyError, TypeError, ValueError, AttributeError):
        raise InvalidToken() from None
    if (
        header.get("typ") != ID_TOKEN_TYPE
        or header.get("kid") != key.kid
        or payload.get("iss") != get_settings().PUBLIC_URL
        or type(sub) is not str
        or type(aud) is not str
        or (sid is not None and type(sid) is not str)
        or type(exp) is not int
    ):
        raise InvalidToken()
    return IdTokenHint(sub=sub, aud=aud, sid=sid, exp=exp)


def decode_access_token(token: str) -> TokenClaims:
    """A bearer token of the service's API: its own access token, or an OAuth access token
    of a user session (told apart by the header segment, without parsing it)."""
    if access_key(token) is None:
        return decode_token(token, TokenType.ACCESS)
    claims = decode_oauth_access_token(token)
    if claims.sid is None:
        raise InvalidToken()  # a client's own token (client_credentials) names no user
    try:
        subject = uuid.UUID(claims.sub)
    except ValueError:
        raise InvalidToken() from None
    return TokenClaims(
        sub=subject,
        sid=claims.sid,
        type=TokenType.ACCESS,
        jti=claims.jti,
        exp=claims.exp,
        scope=claims.scope,
    )


def half_hash(value: str) -> str:
    """OIDC's at_hash: the left half of the SHA-256 of the token, base64url (for *S256)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])


def pkce_s256(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def token_digest(value: str) -> str:
    """SHA-256 of a high-entropy token, for storing it without keeping it."""
    return hashlib.sha256(value.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())
