"""The password hashes other systems leave, each checked and verified by its own rules, through
the maintained library that defines it where one exists (passlib's handlers in the libpass
fork, argon2-cffi under them, hashlib and cryptography for the rest):

- bcrypt `$2a$`, `$2b$`, `$2y$` and argon2 `$argon2id$`, `$argon2i$`: the service's own
  schemes, which core/passwords.py verifies as it verifies its own hashes;
- Django `pbkdf2_sha256$…` and `bcrypt_sha256$…`; passlib `$pbkdf2-sha256$…`: passlib;
- Werkzeug `pbkdf2:sha256:N$salt$hex` and `scrypt:N:r:p$salt$hex`: hashlib, as Werkzeug does;
- Firebase's modified scrypt: hashlib's scrypt, then AES-256-CTR of the project's signer key
  (firebase.py), stored with the project's parameters.

A stored hash of any of them is replaced by the service's own at the user's first login.
A hash whose parameters would make one login cost more than COST_LIMITS is refused at import.
"""

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

from passlib.hash import (
    argon2,
    bcrypt,
    django_bcrypt_sha256,
    django_pbkdf2_sha256,
    pbkdf2_sha256,
)

from app.imports import firebase

# What one verification may cost at most (a login verifies an imported hash once).
MAX_BCRYPT_COST = 16
MAX_PBKDF2_ITERATIONS = 10_000_000
MAX_ARGON2_MEMORY_KIB = 1_048_576  # 1 GiB
MAX_ARGON2_PASSES = 20
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024


class MalformedHash(ValueError):
    """A hash of a known format that does not parse, or costs too much; the message names the
    format and what is wrong, never the hash."""


@dataclass(frozen=True, slots=True)
class HashFormat:
    name: str
    prefixes: tuple[str, ...]
    check: Callable[[str], None]  # MalformedHash when the hash is not well formed
    verify: Callable[[str, str], bool] | None  # (password, hash); None: core/passwords' own
    native: bool = False  # verified by core/passwords' CryptContext (bcrypt, argon2)


def _bounded(name: str, value: int, limit: int, what: str) -> None:
    if value > limit:
        raise MalformedHash(f"{name} hash too costly to verify: {what} {value} > {limit}")


def _parsed(name: str, handler: object, hashed: str) -> object:
    try:
        parsed = handler.from_string(hashed)  # type: ignore[attr-defined]
    except (ValueError, TypeError) as error:
        raise MalformedHash(f"malformed {name} hash ({_reason(error, hashed)})") from None
    if getattr(parsed, "checksum", None) is None:  # a configuration string: salt, no digest
        raise MalformedHash(f"malformed {name} hash (no digest)")
    return parsed


def _reason(error: Exception, hashed: str) -> str:
    """passlib's reason, cut before any value it quotes, and dropped if it holds a piece of
    the hash: a reason is shown and kept, a hash never is."""
    reason = str(error).split(":", 1)[0].strip()[:80]
    pieces = re.findall(r"[A-Za-z0-9./+=]{6,}", hashed.split("$", 2)[-1])
    if not reason or any(piece in reason for piece in pieces):
        return "it does not parse"
    return reason


def _check_bcrypt(hashed: str) -> None:
    parsed = _parsed("bcrypt", bcrypt, hashed)
    _bounded("bcrypt", parsed.rounds, MAX_BCRYPT_COST, "cost")  # type: ignore[attr-defined]


def _check_argon2(hashed: str) -> None:
    parsed = _parsed("argon2", argon2, hashed)
    _bounded("argon2", parsed.memory_cost, MAX_ARGON2_MEMORY_KIB, "memory (KiB)")  # type: ignore[attr-defined]
    _bounded("argon2", parsed.rounds, MAX_ARGON2_PASSES, "passes")  # type: ignore[attr-defined]


def _check_pbkdf2(name: str, handler: object) -> Callable[[str], None]:
    def check(hashed: str) -> None:
        parsed = _parsed(name, handler, hashed)
        _bounded(name, parsed.rounds, MAX_PBKDF2_ITERATIONS, "iterations")  # type: ignore[attr-defined]

    return check


def _check_django_bcrypt(hashed: str) -> None:
    _parsed("Django bcrypt_sha256", django_bcrypt_sha256, hashed)
    _check_bcrypt(hashed.removeprefix("bcrypt_sha256$"))


def _passlib_verify(handler: object) -> Callable[[str, str], bool]:
    def verify(password: str, hashed: str) -> bool:
        return bool(handler.verify(password, hashed))  # type: ignore[attr-defined]

    return verify


# Werkzeug (werkzeug.security): "pbkdf2:sha256:ITERATIONS$SALT$HEX" and "scrypt:N:R:P$SALT$HEX",
# the salt used as its UTF-8 text.
WERKZEUG_PBKDF2 = re.compile(r"pbkdf2:sha256:(\d{1,9})\$([!-#%-~]{1,128})\$([0-9a-f]{64})")
WERKZEUG_SCRYPT = re.compile(
    r"scrypt:(\d{1,8}):(\d{1,3}):(\d{1,3})\$([!-#%-~]{1,128})\$([0-9a-f]{128})"
)


def _werkzeug_parts(hashed: str) -> tuple[str, tuple[int, ...], bytes, str]:
    if (match := WERKZEUG_PBKDF2.fullmatch(hashed)) is not None:
        iterations, salt, digest = match.groups()
        _bounded("Werkzeug pbkdf2", int(iterations), MAX_PBKDF2_ITERATIONS, "iterations")
        return "pbkdf2", (int(iterations),), salt.encode(), digest
    if (match := WERKZEUG_SCRYPT.fullmatch(hashed)) is not None:
        n, r, p, salt, digest = match.groups()
        cost = (int(n), int(r), int(p))
        if cost[0] < 2 or cost[0] & (cost[0] - 1) or not cost[1] or not cost[2]:
            raise MalformedHash("malformed Werkzeug scrypt hash (N must be a power of 2)")
        _bounded("Werkzeug scrypt", cost[0], MAX_SCRYPT_N, "N")
        _bounded("Werkzeug scrypt", 128 * cost[0] * cost[1] * cost[2], MAX_SCRYPT_MEMORY, "memory")
        return "scrypt", cost, salt.encode(), digest
    raise MalformedHash("malformed Werkzeug hash (method:parameters$salt$hex)")


def _check_werkzeug(hashed: str) -> None:
    _werkzeug_parts(hashed)


def _verify_werkzeug(password: str, hashed: str) -> bool:
    method, cost, salt, digest = _werkzeug_parts(hashed)
    if method == "pbkdf2":
        derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, cost[0]).hex()
    else:
        n, r, p = cost
        derived = hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, maxmem=132 * n * r * p, dklen=64
        ).hex()
    return hmac.compare_digest(derived, digest)


FORMATS = (
    HashFormat("bcrypt", ("$2a$", "$2b$", "$2y$"), _check_bcrypt, None, native=True),
    HashFormat("argon2", ("$argon2id$", "$argon2i$"), _check_argon2, None, native=True),
    HashFormat(
        "Django pbkdf2_sha256",
        ("pbkdf2_sha256$",),
        _check_pbkdf2("Django pbkdf2_sha256", django_pbkdf2_sha256),
        _passlib_verify(django_pbkdf2_sha256),
    ),
    HashFormat(
        "Django bcrypt_sha256",
        ("bcrypt_sha256$",),
        _check_django_bcrypt,
        _passlib_verify(django_bcrypt_sha256),
    ),
    HashFormat(
        "passlib pbkdf2_sha256",
        ("$pbkdf2-sha256$",),
        _check_pbkdf2("passlib pbkdf2_sha256", pbkdf2_sha256),
        _passlib_verify(pbkdf2_sha256),
    ),
    HashFormat("Werkzeug", ("pbkdf2:sha256:", "scrypt:"), _check_werkzeug, _verify_werkzeug),
    HashFormat("Firebase scrypt", (firebase.PREFIX,), firebase.check, firebase.verify),
)


def identify(hashed: str) -> HashFormat | None:
    """The format `hashed` is written in, by its prefix; None when it is none of them."""
    return next((f for f in FORMATS if hashed.startswith(f.prefixes)), None)


def is_foreign(hashed: str) -> bool:
    """Whether core/passwords must verify `hashed` here rather than with its own schemes."""
    found = identify(hashed)
    return found is not None and not found.native


def check(hashed: str) -> HashFormat:
    """The format of a hash to import, checked; MalformedHash (a reason) when it is unknown,
    malformed or too costly."""
    found = identify(hashed)
    if found is None:
        raise MalformedHash(
            "unknown password hash format (bcrypt, argon2id/argon2i, Django pbkdf2_sha256 or"
            " bcrypt_sha256, Werkzeug pbkdf2:sha256 or scrypt, passlib $pbkdf2-sha256$,"
            " Firebase scrypt)"
        )
    found.check(hashed)
    return found


def verify_foreign(password: str, hashed: str) -> bool:
    """Whether `password` matches a foreign `hashed`; False for a malformed one."""
    found = identify(hashed)
    if found is None or found.verify is None:
        return False
    try:
        found.check(hashed)
        return found.verify(password, hashed)
    except (MalformedHash, ValueError):
        return False
