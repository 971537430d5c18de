"""Signing keys: loading them, the key ring of ID tokens and OAuth access tokens (which key
signs, which verify, rotation states) and the published JWKS. Token encoding and decoding is
core/security.py's.

Two families of keys:
- the service's own tokens (`/auth/*`): ALGORITHM with SECRET_KEY (HS256) or
  JWT_PRIVATE_KEY_FILE (+ JWT_EXTRA_PUBLIC_KEY_FILES), loaded once (key_set);
- the OpenID Connect keys (ID tokens, RFC 9068 access tokens): an RS256 and an ES256 key,
  each the configured file key of its algorithm (the JWT key when ALGORITHM is asymmetric,
  else OIDC_SIGNING_KEY_FILE; in development generated once into a 0600 file beside
  SECRET_KEY_FILE), superseded by the keys `manage keys rotate` stages in the database
  (OIDC.md revision 2, "Key rotation that breaks no client"). See oidc_keys().
"""

import base64
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt
from jose.exceptions import JWTError
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import SettingsError, get_settings
from app.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

MIN_RSA_BITS = 2048
MAX_CLOCK_SKEW_S = 60  # an `iat` or `nbf` further in the future than this is refused

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- Public keys as JWKs ---------------------------------------------------------------


def _b64url_uint(value: int, size: int | None = None) -> str:
    """Big-endian unsigned bytes, minimal (RSA n, e) or of a fixed size (EC coordinates)."""
    return b64url(value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big"))


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
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(key: PublicKey, algorithm: str) -> dict[str, str]:
    """`key` as published in the JWKS: its defining members, kid, use and alg; nothing private."""
    return {**_jwk_members(key), "kid": key_id(key), "use": "sig", "alg": algorithm}


def new_private_key(algorithm: str) -> PrivateKey:
    """A new RS256 (RSA 2048) or ES256 (P-256) private key."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"no key to generate for {algorithm}")


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_private_key(algorithm: str) -> tuple[bytes, str]:
    """A new unencrypted PKCS#8 PEM key for RS256 (RSA 2048) or ES256 (P-256), and its kid."""
    key = new_private_key(algorithm)
    return private_pem(key), key_id(key.public_key())


# --- Key files -------------------------------------------------------------------------


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


def load_private_key(
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
    _check_key_type(setting, path, key.public_key(), algorithm or algorithm_of(key))
    return key


def algorithm_of(key: PrivateKey) -> str:
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


def _create_key_file_once(path: Path, algorithm: str) -> None:
    """Write a new key to `path` (0600) unless one is there; aside, then linked into place,
    so processes starting together agree on one key."""
    if path.exists():
        return
    pem, _ = generate_private_key(algorithm)
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


# --- The service's own tokens' keys (ALGORITHM) ----------------------------------------


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


def _header(algorithm: str, kid: str, typ: str) -> str:
    """The first segment of the tokens this service signs (python-jose writes the header as
    compact JSON with sorted keys)."""
    header = {"alg": algorithm, "kid": kid, "typ": typ}
    return b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def header_segment(algorithm: str, kid: str) -> str:
    """The first segment of the tokens create_token signs with key `kid`."""
    return _header(algorithm, kid, "JWT")


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
    private_key = load_private_key(settings.JWT_PRIVATE_KEY_FILE, settings.ALGORITHM)
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


# --- The OpenID Connect keys: ID tokens and RFC 9068 access tokens -------------------------

OAUTH_ACCESS_TYPE = "at+jwt"  # RFC 9068: the `typ` of OAuth access tokens
ID_TOKEN_TYPE = "JWT"
TOKEN_TYPES = (OAUTH_ACCESS_TYPE, ID_TOKEN_TYPE)  # the `typ` of the tokens OIDC keys sign
ID_TOKEN_LIFETIME_S = 300  # an ID token is read once by the client, at sign-in
ALGORITHMS = ("RS256", "ES256")  # what the OIDC keys sign with; RS256 first (OIDC Discovery §3)
DEFAULT_ALGORITHM = "RS256"  # ID tokens unless the client registered ES256; access tokens
DEV_OIDC_KEY_NAMES = {"ES256": ".oidc_signing_key.pem", "RS256": ".oidc_signing_key.rs256.pem"}
DEV_OIDC_KEY_NAME = DEV_OIDC_KEY_NAMES["ES256"]  # the one key of earlier versions
KEY_SET_MAX_AGE_S = 5.0  # how long an instance serves its copy of the key table unread
UNKNOWN_KEY_RELOAD_S = 1.0  # at most this often, a token naming an unknown key reloads it
FILE = "file"
DATABASE = "database"


class KeyState(StrEnum):
    NEXT = "next"  # published, signs nothing yet
    ACTIVE = "active"  # signs, published
    RETIRED = "retired"  # signs nothing, published and verifying until its tokens expired


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An asymmetric key of ID tokens and OAuth access tokens, as held in memory."""

    algorithm: str
    kid: str
    private_key: PrivateKey
    public_key: PublicKey
    public_jwk: dict[str, str]
    verifier: jwk.Key
    headers: dict[str, str]  # typ -> the first segment of the tokens of that typ it signs
    source: str  # FILE (a configured or development key file) or DATABASE (manage keys)
    activates_at: float  # epoch seconds it signs from; a file key: 0, before any rotation
    created_at: float = 0.0


def signing_key_of(
    private_key: PrivateKey, *, source: str, activates_at: float, created_at: float = 0.0
) -> SigningKey:
    algorithm = algorithm_of(private_key)
    public = private_key.public_key()
    kid = key_id(public)
    return SigningKey(
        algorithm=algorithm,
        kid=kid,
        private_key=private_key,
        public_key=public,
        public_jwk=public_jwk(public, algorithm),
        verifier=jwk.construct(public, algorithm),
        headers={typ: _header(algorithm, kid, typ) for typ in TOKEN_TYPES},
        source=source,
        activates_at=activates_at,
        created_at=created_at,
    )


@dataclass(frozen=True, slots=True)
class KeyStatus:
    key: SigningKey
    state: KeyState
    retires_at: float | None  # when its successor started signing
    leaves_at: float | None  # when the last token it signed has expired: unpublished then


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The OIDC keys at one moment: which signs per algorithm, which verify (by kid, and by
    the header segment of their tokens of each typ, so a check parses no header), the JWKS."""

    statuses: tuple[KeyStatus, ...]
    active: dict[str, SigningKey]
    by_kid: dict[str, SigningKey]
    by_header: dict[str, dict[str, SigningKey]]  # typ -> header segment -> key
    jwks: tuple[dict[str, str], ...]
    changes_at: float  # the next activation or departure: the ring is rebuilt then


def retention_s() -> float:
    """How long a retired key keeps verifying: until the last token it signed has expired.
    An access token lives ACCESS_TOKEN_EXPIRE_MINUTES; an ID token 5 minutes, but it is
    still accepted as an expired id_token_hint for a browser session's lifetime
    (oauth/logout.py), so the key stays for that long too."""
    settings = get_settings()
    access = settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    id_token_hint = ID_TOKEN_LIFETIME_S + settings.REFRESH_TOKEN_EXPIRE_DAYS * 86400
    return max(access, id_token_hint) + MAX_CLOCK_SKEW_S


def build_ring(keys: Iterable[SigningKey], now: float, retention: float) -> KeyRing:
    """The state of each key at `now`: per algorithm, the newest key whose activates_at has
    come signs; newer ones are next; older ones are retired from their successor's
    activation until `retention` later, then gone (neither published nor verifying)."""
    statuses: list[KeyStatus] = []
    changes_at = float("inf")
    for algorithm in ALGORITHMS:
        mine = sorted(
            (key for key in keys if key.algorithm == algorithm),
            key=lambda key: (key.activates_at, key.created_at, key.source == DATABASE),
        )
        for index, key in enumerate(mine):
            successor = mine[index + 1] if index + 1 < len(mine) else None
            if key.activates_at > now:
                statuses.append(KeyStatus(key, KeyState.NEXT, None, None))
                changes_at = min(changes_at, key.activates_at)
            elif successor is None or successor.activates_at > now:
                statuses.append(KeyStatus(key, KeyState.ACTIVE, None, None))
            elif successor.activates_at + retention > now:
                leaves_at = successor.activates_at + retention
                statuses.append(KeyStatus(key, KeyState.RETIRED, successor.activates_at, leaves_at))
                changes_at = min(changes_at, leaves_at)
    order = {KeyState.ACTIVE: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}
    statuses.sort(key=lambda status: (ALGORITHMS.index(status.key.algorithm), order[status.state]))
    by_kid: dict[str, SigningKey] = {}
    for status in statuses:
        by_kid.setdefault(status.key.kid, status.key)
    return KeyRing(
        statuses=tuple(statuses),
        active={s.key.algorithm: s.key for s in statuses if s.state is KeyState.ACTIVE},
        by_kid=by_kid,
        by_header={typ: {key.headers[typ]: key for key in by_kid.values()} for typ in TOKEN_TYPES},
        jwks=tuple(key.public_jwk for key in by_kid.values()),
        changes_at=changes_at,
    )


@lru_cache
def file_keys() -> tuple[SigningKey, ...]:
    """The configured OIDC key of each algorithm: the JWT key when ALGORITHM is RS256/ES256,
    OIDC_SIGNING_KEY_FILE for the other algorithm (or both, under HS256), and outside
    production a key generated once beside SECRET_KEY_FILE for an algorithm still without
    one. A bad key file raises SettingsError."""
    settings = get_settings()
    found: dict[str, PrivateKey] = {}
    if settings.ALGORITHM != "HS256":
        signing = key_set().signing_key
        assert not isinstance(signing, str)
        found[settings.ALGORITHM] = signing
    if settings.OIDC_SIGNING_KEY_FILE is not None:
        configured = load_private_key(
            settings.OIDC_SIGNING_KEY_FILE, None, setting="OIDC_SIGNING_KEY_FILE"
        )
        found.setdefault(algorithm_of(configured), configured)
    if settings.ENVIRONMENT != "production":
        for algorithm in ALGORITHMS:
            if algorithm not in found:
                path = settings.SECRET_KEY_FILE.parent / DEV_OIDC_KEY_NAMES[algorithm]
                _create_key_file_once(path, algorithm)
                found[algorithm] = load_private_key(path, algorithm, "OIDC_SIGNING_KEY_FILE")
    return tuple(signing_key_of(key, source=FILE, activates_at=0.0) for key in found.values())


def _stored_keys(known: dict[str, SigningKey]) -> tuple[SigningKey, ...]:
    """The keys `manage keys rotate` staged, from the table every instance reads; each
    decrypted once (`known`, by kid). A key this SECRET_KEY cannot decrypt is skipped."""
    from sqlmodel import Session, select

    from app.core import crypto
    from app.db import get_engine
    from app.models.signing_key import SigningKeyRow

    with Session(get_engine()) as session:
        rows = session.exec(select(SigningKeyRow)).all()
    found = []
    for row in rows:
        key = known.get(row.kid)
        if key is None:
            pem = crypto.decrypt(row.private_key, info=crypto.SIGNING_KEY_INFO)
            private = _stored_private_key(pem)
            if private is None or algorithm_of(private) != row.algorithm:
                logger.warning("signing key %s cannot be read with this SECRET_KEY", row.kid)
                continue
            key = signing_key_of(
                private,
                source=DATABASE,
                activates_at=row.activates_at.timestamp(),
                created_at=row.created_at.timestamp(),
            )
            known[row.kid] = key
        found.append(key)
    return tuple(found)


def _stored_private_key(pem: str | None) -> PrivateKey | None:
    if pem is None:
        return None
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else None


class _Holder:
    """This process's copy of the key ring, shared by its threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ring: KeyRing | None = None
        self.keys: tuple[SigningKey, ...] = ()
        self.loaded_at = 0.0  # time.monotonic() of the last read of the key table
        self.generation = 0  # bumped by forget(): a reload begun before it is dropped
        self.reloading = False
        self.parsed: dict[str, SigningKey] = {}  # stored keys by kid, decrypted once


_holder = _Holder()


def reload() -> KeyRing:
    """Read the keys again (the files once, the key table each time) and rebuild the ring."""
    generation = _holder.generation
    files = file_keys()
    try:
        stored = _stored_keys(_holder.parsed)
    except SQLAlchemyError as error:  # keep serving the keys known; tried again soon
        logger.warning("signing keys not read from the database (%s)", type(error).__name__)
        stored = tuple(key for key in _holder.keys if key.source == DATABASE)
    ring = build_ring((*files, *stored), time.time(), retention_s())
    with _holder.lock:
        if generation == _holder.generation:
            _holder.keys = (*files, *stored)
            _holder.ring = ring
            _holder.loaded_at = time.monotonic()
    return ring


def _reload_in_background() -> None:
    """Start one reload in a thread unless one runs: requests keep the current ring meanwhile
    (the event loop never waits for the database here)."""
    with _holder.lock:
        if _holder.reloading:
            return
        _holder.reloading = True
        _holder.loaded_at = time.monotonic()  # one attempt per interval, even if it fails
    threading.Thread(target=_background_reload, name="signing-keys", daemon=True).start()


def _background_reload() -> None:
    try:
        reload()
    except SettingsError as error:  # a key file changed under a running process
        logger.warning("signing keys not reloaded: %s", error)
    finally:
        _holder.reloading = False


def oidc_keys() -> KeyRing:
    """The key ring. Loaded at first use; then read again in the background when older than
    KEY_SET_MAX_AGE_S, so that every instance sees a key staged by another within seconds
    (long before KEY_PUBLISH_AHEAD_SECONDS lets it sign); rebuilt from memory when a key
    activates or leaves."""
    ring = _holder.ring
    if ring is None:
        return reload()
    if time.monotonic() - _holder.loaded_at > KEY_SET_MAX_AGE_S:
        _reload_in_background()
    now = time.time()
    if now >= ring.changes_at:
        ring = build_ring(_holder.keys, now, retention_s())
        _holder.ring = ring
    return ring


def unknown_key_seen() -> None:
    """A token named a key this process does not hold: perhaps one staged elsewhere a moment
    ago (KEY_PUBLISH_AHEAD_SECONDS=0); read the table again soon, at most once a second."""
    if time.monotonic() - _holder.loaded_at > UNKNOWN_KEY_RELOAD_S:
        _reload_in_background()


def forget() -> None:
    """Drop this process's copy (after a rotation made here, and between tests)."""
    with _holder.lock:
        _holder.generation += 1
        _holder.ring = None
        _holder.keys = ()
        _holder.parsed.clear()
    file_keys.cache_clear()


MISSING_KEY = (
    "OIDC_SIGNING_KEY_FILE: no {algorithm} signing key; production needs one (create one"
    " with: manage generate-key --algorithm {algorithm} --out keys/oidc.pem, or: manage keys"
    " rotate --algorithm {algorithm})"
)


def signing_key(algorithm: str = DEFAULT_ALGORITHM) -> SigningKey:
    """The key that signs `algorithm` now. None in production without one: a 503, not a
    crash (manage serve refuses to start without the RS256 one once a client exists)."""
    try:
        key = oidc_keys().active.get(algorithm)
    except SettingsError as error:
        raise ServiceUnavailable(str(error).removeprefix("Invalid setting ")) from None
    if key is None:
        raise ServiceUnavailable(MISSING_KEY.format(algorithm=algorithm))
    return key


def signing_algorithms() -> list[str]:
    """The algorithms an ID token can be signed with now, RS256 first."""
    active = oidc_keys().active
    return [algorithm for algorithm in ALGORITHMS if algorithm in active]


def header_key(token: str, typ: str) -> SigningKey | None:
    """The OIDC key whose tokens of `typ` start with `token`'s first segment, if any: a dict
    lookup, no header parse."""
    try:
        ring = oidc_keys()
    except SettingsError:
        return None
    return ring.by_header[typ].get(token.partition(".")[0])


def access_key(token: str) -> SigningKey | None:
    """The OIDC key of `token` if it is an OAuth access token's (header_key)."""
    return header_key(token, OAUTH_ACCESS_TYPE)


def published_jwks() -> list[dict[str, str]]:
    """Every public key of the JWKS: the service's token keys and the OIDC keys (next,
    active and retired), each once."""
    keys = list(key_set().jwks)
    try:
        oidc = oidc_keys().jwks
    except SettingsError:
        return keys
    kids = {key["kid"] for key in keys}
    return [*keys, *(key for key in oidc if key["kid"] not in kids)]
