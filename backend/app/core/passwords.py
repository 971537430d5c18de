"""Password rules and bcrypt hashing (passlib API, the maintained `libpass` fork).

Hashing is slow on purpose, so it runs in a bounded pool of threads (bcrypt releases the GIL):
a storm of logins queues there instead of starving the event loop and the other requests.
"""

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from passlib.context import CryptContext

from app.core.config import get_settings

BCRYPT_MAX_BYTES = 72


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    minimum = get_settings().PASSWORD_MIN_LENGTH
    if len(password) < minimum:
        return f"Password must be at least {minimum} characters"
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        return f"Password must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8"
    if "\x00" in password:
        return "Password must not contain NUL characters"
    return None


def _hashable(password: str) -> bool:
    return "\x00" not in password and len(password.encode()) <= BCRYPT_MAX_BYTES


@lru_cache
def _context() -> CryptContext:
    rounds = get_settings().BCRYPT_ROUNDS
    # min = max = default: a hash of any other cost "needs update" and is re-hashed at login.
    return CryptContext(
        schemes=["bcrypt"],
        bcrypt__default_rounds=rounds,
        bcrypt__min_rounds=rounds,
        bcrypt__max_rounds=rounds,
    )


@lru_cache
def _pool() -> ThreadPoolExecutor:
    workers = get_settings().PASSWORD_HASH_WORKERS
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")


@lru_cache
def _dummy_hash() -> str:
    """A hash of the configured cost to verify against when the email is unknown."""
    return _context().hash(secrets.token_urlsafe(16))


def hash_password_sync(password: str) -> str:
    return _context().hash(password)


def _verify_and_update(password: str, hashed: str | None) -> tuple[bool, str | None]:
    if not _hashable(password):
        # Can never match (bcrypt would refuse or truncate it): still spend one verification.
        _context().verify("x", hashed or _dummy_hash())
        return False, None
    if hashed is None:
        _context().verify(password, _dummy_hash())
        return False, None
    return _context().verify_and_update(password, hashed)


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool(), hash_password_sync, password)


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one should be upgraded). `hashed=None` costs the same."""
    return await asyncio.get_running_loop().run_in_executor(
        _pool(), _verify_and_update, password, hashed
    )


def warm_up() -> None:
    """Build the dummy hash before the first login, so the first unknown email is not slower."""
    _dummy_hash()
