"""Firebase Authentication's modified scrypt (github.com/firebase/scrypt): the key derived by
scrypt(password, salt + salt_separator, N=2^mem_cost, r=rounds, p=1) encrypts the project's
signer key with AES-256-CTR (a zero IV); the result, base64, is the user's passwordHash.

An export gives each user's `passwordHash` and `salt`; the project's parameters (signer key,
salt separator, rounds, mem_cost) come once per file, from the command line or the file's
header line. An import line carries `firebase-scrypt$<salt>$<passwordHash>`; it is stored
with the parameters, so a login verifies it alone:
`$firebase-scrypt$m=<mem_cost>,r=<rounds>$<salt separator>$<signer key>$<salt>$<hash>`.
"""

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PREFIX = "$firebase-scrypt$"
LINE_PREFIX = "firebase-scrypt$"
MAX_MEM_COST = 20  # N = 2^20
MAX_ROUNDS = 32
MAX_MEMORY = 1024 * 1024 * 1024
B64 = r"[A-Za-z0-9+/=_-]{1,200}"
STORED = re.compile(
    rf"\$firebase-scrypt\$m=(\d{{1,2}}),r=(\d{{1,2}})\$({B64})\$({B64})\$({B64})\$({B64})"
)
LINE = re.compile(rf"firebase-scrypt\$({B64})\$({B64})")


class FirebaseError(ValueError):
    """A Firebase hash or parameter set that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class FirebaseParameters:
    """A Firebase project's password hash parameters (Authentication > Users > ⋮ > Password
    hash parameters), base64 as the console shows them."""

    signer_key: str
    salt_separator: str
    rounds: int
    mem_cost: int

    def checked(self) -> "FirebaseParameters":
        _decoded(self.signer_key, "signer key")
        _decoded(self.salt_separator, "salt separator", empty=True)
        _cost(self.mem_cost, self.rounds)
        return self


def _decoded(text: str, what: str, *, empty: bool = False) -> bytes:
    try:
        value = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise FirebaseError(f"Firebase {what} is not base64") from None
    if not value and not empty:
        raise FirebaseError(f"Firebase {what} is empty")
    return value


def _cost(mem_cost: int, rounds: int) -> None:
    if not 1 <= mem_cost <= MAX_MEM_COST or not 1 <= rounds <= MAX_ROUNDS:
        raise FirebaseError(
            f"Firebase mem_cost must be 1..{MAX_MEM_COST} and rounds 1..{MAX_ROUNDS}"
        )
    if 128 * (2**mem_cost) * rounds > MAX_MEMORY:
        raise FirebaseError("Firebase hash too costly to verify (scrypt memory over 1 GiB)")


def complete(line_hash: str, parameters: FirebaseParameters | None) -> str:
    """The stored form of a line's `firebase-scrypt$<salt>$<hash>`, with the file's parameters."""
    match = LINE.fullmatch(line_hash)
    if match is None:
        raise FirebaseError("malformed Firebase hash (firebase-scrypt$<salt>$<passwordHash>)")
    if parameters is None:
        raise FirebaseError(
            "Firebase hash without the project's parameters (--firebase-signer-key and the"
            " others, or a firebase_scrypt header line)"
        )
    salt, digest = match.groups()
    _decoded(salt, "salt"), _decoded(digest, "passwordHash")
    p = parameters
    return f"{PREFIX}m={p.mem_cost},r={p.rounds}${p.salt_separator}${p.signer_key}${salt}${digest}"


def _parts(stored: str) -> tuple[int, int, bytes, bytes, bytes, bytes]:
    match = STORED.fullmatch(stored)
    if match is None:
        raise FirebaseError("malformed Firebase scrypt hash")
    mem_cost, rounds = int(match[1]), int(match[2])
    _cost(mem_cost, rounds)
    separator = _decoded(match[3], "salt separator", empty=True)
    signer_key, salt = _decoded(match[4], "signer key"), _decoded(match[5], "salt")
    return mem_cost, rounds, separator, signer_key, salt, _decoded(match[6], "passwordHash")


def check(stored: str) -> None:
    _parts(stored)


def firebase_hash(
    password: str, *, salt: bytes, separator: bytes, signer_key: bytes, mem_cost: int, rounds: int
) -> bytes:
    """Firebase's passwordHash of `password`, raw bytes."""
    n = 2**mem_cost
    key = hashlib.scrypt(
        password.encode(), salt=salt + separator, n=n, r=rounds, p=1, dklen=32,
        maxmem=132 * n * rounds + 1024 * 1024,
    )  # fmt: skip
    encryptor = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    return encryptor.update(signer_key) + encryptor.finalize()


def verify(password: str, stored: str) -> bool:
    mem_cost, rounds, separator, signer_key, salt, digest = _parts(stored)
    derived = firebase_hash(
        password,
        salt=salt,
        separator=separator,
        signer_key=signer_key,
        mem_cost=mem_cost,
        rounds=rounds,
    )
    return hmac.compare_digest(derived, digest)
