"""The token format: claims, types, keys and the algorithm list. Pure functions, no database."""

import base64
import hashlib
import json
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jose import jwk, jws, jwt
from jose.exceptions import JOSEError, JWTError

from app.core.config import SettingsError, get_settings
from app.errors import InvalidToken, ServiceUnavailable

MAX_TOKEN_LENGTH = 4096
MAX_CLOCK_SKEW_S = 60  # an `iat` or `nbf` further in the future than this is refused
MIN_RSA_BITS = 2048
ES256_SIGNATURE_BYTES = 64

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
    scope: frozenset[str] | None = None  # an OAuth access token's; None: the service's own


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


def _load_private_key(
    path: Path, algorithm: str | None, setting: str = "JWT_PRIVATE_KEY_FILE"
) -> PrivateKey:
    """A PEM private key for `algorithm` (None: RS256 or ES256, whichever the key is)."""
    data = _read_key_file(setting, path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise _key_file_error(setting, path, "the key is encrypted; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _key_file_error(setting, path, "not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise _key_file_error(setting, path, f"not an RSA or EC key, which {algorithm} needs")
    _check_key_type(setting, path, key.public_key(), algorithm or _algorithm_of(key))
    return key


def _algorithm_of(key: PrivateKey) -> str:
    return "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


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


# --- The OpenID Connect key: ID tokens and RFC 9068 access tokens -------------------------

OAUTH_ACCESS_TYPE = "at+jwt"  # RFC 9068: the `typ` of OAuth access tokens
ID_TOKEN_TYPE = "JWT"
DEV_OIDC_KEY_NAME = ".oidc_signing_key.pem"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The asymmetric key that signs ID tokens and OAuth access tokens, published in the JWKS."""

    algorithm: str
    kid: str
    private_key: PrivateKey
    public_jwk: dict[str, str]
    verifier: jwk.Key
    access_header: str  # the first segment of every OAuth access token it signs
    public_key: PublicKey

    def access_payload(self, token: str) -> bytes:
        """The payload of `token`, an access token whose first segment the caller found to be
        `access_header`, once its signature is verified: with cryptography on this cached
        key, without python-jose, which spends a third as long again as the ES256 check
        itself around it (header parse, algorithm list, key lookup, DER conversion). The
        header segment, compared whole, fixes the algorithm: none other is tried. A bad
        signature or a malformed segment raises InvalidSignature or ValueError."""
        signing_input, _, signature_segment = token.rpartition(".")
        payload_segment = signing_input.partition(".")[2]
        signature = _b64url_decode(signature_segment)
        message = signing_input.encode("ascii")
        key = self.public_key
        if self.algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            r, s = _es256_r_s(signature)  # low S only (_check_compact)
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        elif self.algorithm == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
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


def _oauth_header_segment(algorithm: str, kid: str) -> str:
    header = {"alg": algorithm, "kid": kid, "typ": OAUTH_ACCESS_TYPE}
    return _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


@lru_cache
def oidc_key() -> SigningKey:
    """The OIDC signing key: the JWT key when ALGORITHM is RS256/ES256, else
    OIDC_SIGNING_KEY_FILE, else (outside production) a key generated once beside
    SECRET_KEY_FILE. Production without one raises SettingsError."""
    settings = get_settings()
    private_key: PrivateKey
    if settings.ALGORITHM != "HS256":
        signing_key = key_set().signing_key
        assert not isinstance(signing_key, str)
        private_key = signing_key
    elif settings.OIDC_SIGNING_KEY_FILE is not None:
        private_key = _load_private_key(
            settings.OIDC_SIGNING_KEY_FILE, None, setting="OIDC_SIGNING_KEY_FILE"
        )
    elif settings.ENVIRONMENT == "production":
        raise SettingsError(
            "Invalid setting OIDC_SIGNING_KEY_FILE: required in production with ALGORITHM=HS256"
            " (create one with: manage generate-key --algorithm ES256 --out keys/oidc.pem)"
        )
    else:
        path = settings.SECRET_KEY_FILE.parent / DEV_OIDC_KEY_NAME
        _create_key_file_once(path)
        private_key = _load_private_key(path, None, setting="OIDC_SIGNING_KEY_FILE")
    algorithm = _algorithm_of(private_key)
    public = private_key.public_key()
    kid = key_id(public)
    return SigningKey(
        algorithm=algorithm,
        kid=kid,
        private_key=private_key,
        public_jwk=public_jwk(public, algorithm),
        verifier=jwk.construct(public, algorithm),
        access_header=_oauth_header_segment(algorithm, kid),
        public_key=public,
    )


def _create_key_file_once(path: Path) -> None:
    """Write a new ES256 key to `path` (0600) unless one is there; aside, then linked into
    place, so processes starting together agree on one key."""
    if path.exists():
        return
    pem, _ = generate_private_key("ES256")
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.link(temp, path)
    except FileExistsError:
        pass  # another process linked its key first: use that one
    except OSError as error:
        raise _key_file_error("OIDC_SIGNING_KEY_FILE", path, error.strerror or str(error)) from None
    finally:
        temp.unlink(missing_ok=True)


def oidc_signing_key() -> SigningKey:
    """oidc_key() for a request: a missing production key is a 503, not a crash (start-up
    refuses it already once a client exists; see manage serve)."""
    try:
        return oidc_key()
    except SettingsError as error:
        raise ServiceUnavailable(str(error).removeprefix("Invalid setting ")) from None


def published_jwks() -> list[dict[str, str]]:
    """Every public key of the JWKS: the service's token keys and the OIDC key, by kid."""
    keys = list(key_set().jwks)
    try:
        oidc = oidc_key().public_jwk
    except SettingsError:
        return keys  # production without an OIDC key: no client can exist (see manage serve)
    if all(key["kid"] != oidc["kid"] for key in keys):
        keys.append(oidc)
    return keys


@lru_cache
def oauth_access_header() -> str | None:
    try:
        return oidc_key().access_header
    except SettingsError:
        return None


def sign_oidc_jwt(claims: dict[str, Any], *, typ: str) -> str:
    """Sign ID token (typ JWT) or OAuth access token (typ at+jwt) claims with the OIDC key."""
    key = oidc_signing_key()
    return _sign(claims, key.private_key, key.algorithm, {"kid": key.kid, "typ": typ})


def decode_oauth_access_token(token: str) -> OAuthAccessClaims:
    """An unexpired at+jwt of this issuer, for the service's own API (aud = the issuer)."""
    issuer = get_settings().PUBLIC_URL
    header = oauth_access_header()
    if (
        header is None
        or not token
        or len(token) > MAX_TOKEN_LENGTH
        or token.partition(".")[0] != header
    ):
        raise InvalidToken()
    try:
        payload = json.loads(oidc_key().access_payload(token))
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
    """An ID token of this issuer (typ JWT, signed with the OIDC key), expired or not: RPs
    send the one they got at sign-in, which lives minutes (OIDC RP-Initiated Logout §2)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken()
    try:
        key = oidc_key()
        _check_compact(token, key.algorithm)
        header = jwt.get_unverified_header(token)
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
    header = oauth_access_header()
    if header is None or token.partition(".")[0] != header:
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
