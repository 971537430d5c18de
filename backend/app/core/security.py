"""The token format: claims, types, signing, strict parsing, and decode(token, kind), the
one parser and claim validator of every kind of token the service reads (TokenKind). Pure
functions, no database; the keys are core/keys.py's."""

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jose import jws, jwt
from jose.exceptions import JOSEError

from app.core.config import Settings, get_settings
from app.core.keys import (
    DEFAULT_ALGORITHM,
    ID_TOKEN_TYPE,
    MAX_CLOCK_SKEW_S,
    OAUTH_ACCESS_TYPE,
    PrivateKey,
    SigningKey,
    access_key,
    header_key,
    key_set,
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


def sign_oidc_jwt(claims: dict[str, Any], *, typ: str, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """Sign ID token (typ JWT) or OAuth access token (typ at+jwt) claims with the OIDC key
    of `algorithm` that signs now."""
    key = signing_key(algorithm)
    return _sign(claims, key.private_key, key.algorithm, {"kid": key.kid, "typ": typ})


# --- Decoding: one parser and claim validator, parametrised by the kind of token ----------


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
    aud: str = ""  # the issuer (the service's own API) or an API resource's identifier
    org_id: str | None = None  # the organization the sign-in selected


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    """The claims RP-initiated logout reads of an ID token this issuer signed."""

    sub: str
    aud: str
    sid: str | None
    exp: int


class KeyFamily(StrEnum):
    """The keys that verify a kind of token."""

    SERVICE = "service"  # key_set(): ALGORITHM's (SECRET_KEY, or the JWT key files)
    OIDC = "oidc"  # oidc_keys(): the RS256 and ES256 keys the ring holds (next, active, retired)


Claims = TypeVar("Claims")
Claim = tuple[str, type]  # a claim's name and its JSON type (str or int; a bool is no int)


@dataclass(frozen=True, slots=True)
class TokenKind(Generic[Claims]):
    """What a token of one kind must be for decode() to return its claims (`claims`).

    Every kind: at most MAX_TOKEN_LENGTH characters in its one accepted form (canonical
    base64url segments, a low-S ES256 signature); signed with a key of `keys`, by the one
    algorithm of that key; `exp` and `iat` integers, `nbf` absent or one; neither `iat` nor
    `nbf` more than `leeway_s` ahead (no clock of ours made such a token)."""

    name: str
    keys: KeyFamily
    # The header's typ. Of an OIDC key's token, the header segment is compared whole with
    # the one it writes for this typ (keys.header_key): alg, kid and typ with no parse.
    # None: the service's own tokens, told apart by their `type` claim (`values`).
    typ: str | None
    required: tuple[Claim, ...]  # beyond exp and iat
    claims: Callable[[dict[str, Any]], Claims]  # the checked payload -> what decode returns
    optional: tuple[Claim, ...] = ()  # absent, or of this type
    values: tuple[tuple[str, str], ...] = ()  # claims that must have this very value
    absent: tuple[str, ...] = ()  # claims a token of this kind never carries
    issuer: Callable[[Settings], str | None] = lambda _: None  # the `iss`; None: any
    audience: Callable[[Settings], str | None] = lambda _: None  # the `aud`; None: any
    expires: bool = True  # False: an expired token is accepted too (id_token_hint)
    leeway_s: int = MAX_CLOCK_SKEW_S  # how far ahead of our clock `iat` and `nbf` may be

    ACCESS: ClassVar["TokenKind[TokenClaims]"]
    REFRESH: ClassVar["TokenKind[TokenClaims]"]
    MFA: ClassVar["TokenKind[TokenClaims]"]
    OAUTH_ACCESS: ClassVar["TokenKind[OAuthAccessClaims]"]
    RESOURCE_ACCESS: ClassVar["TokenKind[OAuthAccessClaims]"]
    ID_TOKEN_HINT: ClassVar["TokenKind[IdTokenHint]"]


def decode(token: str, kind: TokenKind[Claims]) -> Claims:
    """The claims of `token` if it is a valid token of `kind` (TokenKind says what that
    takes); else InvalidToken.

    The claims are checked here, against the format this service writes, rather than by
    python-jose's jwt.decode, which parses the header a second time and runs nine generic
    checks: on every request, a good part of the token's cost (bench/README.md, "Where GET
    /users/me spends its time")."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    try:
        payload = json.loads(_verified_payload(token, kind))
        exp, iat, nbf = payload["exp"], payload["iat"], payload.get("nbf", 0)
        if type(exp) is not int or type(iat) is not int or type(nbf) is not int:
            raise InvalidToken()
        for name, json_type in kind.required:
            if type(payload[name]) is not json_type:
                raise InvalidToken()
        for name, json_type in kind.optional:
            if name in payload and type(payload[name]) is not json_type:
                raise InvalidToken()
        for name, value in kind.values:
            if payload.get(name) != value:
                raise InvalidToken()
        if any(name in payload for name in kind.absent):
            raise InvalidToken()
        now = time.time()
        if (kind.expires and exp <= now) or max(iat, nbf) > now + kind.leeway_s:
            raise InvalidToken()
        settings = get_settings()
        issuer, audience = kind.issuer(settings), kind.audience(settings)
        if (issuer is not None and payload.get("iss") != issuer) or (
            audience is not None and payload.get("aud") != audience
        ):
            raise InvalidToken()
        return kind.claims(payload)
    except (
        JOSEError,
        InvalidSignature,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        OSError,
    ):
        raise InvalidToken() from None


def _verified_payload(token: str, kind: TokenKind[Any]) -> bytes:
    """The payload segment of `token`, decoded, once its form and signature are checked with
    the key that signed it.

    The service's own tokens: the key set finds the key by the header segment (or, for
    another header, its kid) and python-jose verifies signature and algorithm (the key
    set's one). OIDC tokens: the header segment must be the one this service writes for a
    key it holds and `kind.typ`; the signature is checked by _oidc_payload."""
    if kind.keys is KeyFamily.SERVICE:
        keys = key_set()
        _check_compact(token, keys.algorithm)
        return jws.verify(token, keys.verifier(token), [keys.algorithm])
    assert kind.typ is not None
    key = header_key(token, kind.typ)
    if key is None:
        unknown_key_seen()
        raise InvalidToken()
    return _oidc_payload(key, token)


def _oidc_payload(key: SigningKey, token: str) -> bytes:
    """The payload of `token`, a token whose first segment the caller found to be the one
    `key` writes, once its signature is verified: with cryptography on this cached key,
    without python-jose, whose wrapping (header parse, algorithm list, key lookup, DER
    conversion) costs a good part of the check again (bench/README.md, introspection). The
    header segment, compared whole, fixes the algorithm: none other is tried. A bad
    signature or a malformed segment raises InvalidSignature or ValueError."""
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


def _service_claims(payload: dict[str, Any]) -> TokenClaims:
    return TokenClaims(
        sub=uuid.UUID(payload["sub"]),
        sid=uuid.UUID(payload["sid"]),
        type=TokenType(payload["type"]),
        jti=payload["jti"],
        exp=datetime.fromtimestamp(payload["exp"], UTC),
    )


def _oauth_access_claims(payload: dict[str, Any]) -> OAuthAccessClaims:
    return OAuthAccessClaims(
        sub=payload["sub"],
        client_id=payload["client_id"],
        scope=frozenset(payload["scope"].split()),
        jti=payload["jti"],
        exp=datetime.fromtimestamp(payload["exp"], UTC),  # past year 9999: ValueError
        sid=uuid.UUID(payload["sid"]) if "sid" in payload else None,
        auth_time=payload.get("auth_time"),
        iat=payload["iat"],
        aud=payload["aud"] if isinstance(payload.get("aud"), str) else "",
        org_id=payload.get("org_id"),
    )


def _id_token_hint(payload: dict[str, Any]) -> IdTokenHint:
    return IdTokenHint(
        sub=payload["sub"], aud=payload["aud"], sid=payload.get("sid"), exp=payload["exp"]
    )


def _service_kind(token_type: TokenType) -> TokenKind[TokenClaims]:
    """The service's own tokens (create_token): iss and aud checked when configured."""
    return TokenKind(
        name=token_type.value,
        keys=KeyFamily.SERVICE,
        typ=None,
        required=(("sub", str), ("sid", str), ("jti", str)),
        values=(("type", token_type.value),),
        issuer=lambda settings: settings.JWT_ISSUER,
        audience=lambda settings: settings.JWT_AUDIENCE,
        claims=_service_claims,
    )


def _public_url(settings: Settings) -> str:
    return settings.PUBLIC_URL


TokenKind.ACCESS = _service_kind(TokenType.ACCESS)
TokenKind.REFRESH = _service_kind(TokenType.REFRESH)
TokenKind.MFA = _service_kind(TokenType.MFA)
# An RFC 9068 access token of this issuer, for the service's own API (aud = the issuer).
TokenKind.OAUTH_ACCESS = TokenKind(
    name="oauth_access",
    keys=KeyFamily.OIDC,
    typ=OAUTH_ACCESS_TYPE,
    required=(("sub", str), ("client_id", str), ("scope", str), ("jti", str)),
    optional=(("sid", str), ("auth_time", int), ("org_id", str)),
    issuer=_public_url,
    audience=_public_url,
    claims=_oauth_access_claims,
)
# The same for any audience: the service's own API or an API resource (RFC 8707), as
# introspection and revocation see the tokens they are given.
TokenKind.RESOURCE_ACCESS = TokenKind(
    name="resource_access",
    keys=KeyFamily.OIDC,
    typ=OAUTH_ACCESS_TYPE,
    required=(("sub", str), ("client_id", str), ("scope", str), ("jti", str), ("aud", str)),
    optional=(("sid", str), ("auth_time", int), ("org_id", str)),
    issuer=_public_url,
    claims=_oauth_access_claims,
)
# An ID token of this issuer given back as id_token_hint, signed with an OIDC key it still
# holds (active or retired), expired or not: RPs send the one they got at sign-in, which
# lives minutes (OIDC RP-Initiated Logout §2). Its audience is the client it was issued to.
TokenKind.ID_TOKEN_HINT = TokenKind(
    name="id_token_hint",
    keys=KeyFamily.OIDC,
    typ=ID_TOKEN_TYPE,
    required=(("sub", str), ("aud", str)),
    optional=(("sid", str),),
    # the service's own tokens (`type`), should an RS256 JWT key share the OIDC key's header
    absent=("type",),
    issuer=_public_url,
    expires=False,
    claims=_id_token_hint,
)


def decode_access_token(token: str) -> TokenClaims:
    """A bearer token of the service's API: its own access token, or an OAuth access token
    of a user session (told apart by the header segment, without parsing it)."""
    if access_key(token) is None:
        return decode(token, TokenKind.ACCESS)
    claims = decode(token, TokenKind.OAUTH_ACCESS)
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
