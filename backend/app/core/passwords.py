"""Password hashing: bcrypt or argon2id (PASSWORD_HASH), through passlib's API (the maintained
`libpass` fork; argon2 by argon2-cffi).

Both schemes are always verified: a hash of the other scheme, or of other parameters, is
replaced by one of the configured scheme and cost at the next successful login (the login's
compare-and-swap, crud.users.upgrade_hash). Hashing is slow on purpose, so it runs in a bounded
pool of threads (bcrypt and argon2 release the GIL): a storm of logins queues there instead of
starving the event loop and the other requests. The queue itself is bounded too
(PASSWORD_HASH_QUEUE): past it a hash is refused at once (HashQueueFull, 503 + Retry-After)
rather than making every later login wait behind the storm.
"""

import asyncio
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

from passlib.context import CryptContext

from app.core.config import get_settings
from app.errors import HashQueueFull
from app.imports import hash_formats

BCRYPT_MAX_BYTES = 72  # bcrypt reads no further: a longer password is refused, never cut
# argon2id reads any length; a bound keeps one hash's input (and a request) reasonable.
ARGON2_MAX_BYTES = 1024
T = TypeVar("T")


def max_password_bytes() -> int:
    """The longest new password the configured scheme takes, in UTF-8 bytes."""
    return BCRYPT_MAX_BYTES if get_settings().PASSWORD_HASH == "bcrypt" else ARGON2_MAX_BYTES


def _is_bcrypt(hashed: str) -> bool:
    return hashed.startswith(("$2a$", "$2b$", "$2y$", "$2x$"))


def _verifiable(password: str, hashed: str) -> bool:
    """Whether `password` could ever match `hashed`: no NUL (no scheme here was given one) and,
    against a bcrypt hash (an imported one too), at most 72 bytes (bcrypt would refuse or cut
    it)."""
    if "\x00" in password:
        return False
    return not (_is_bcrypt(hashed) and len(password.encode()) > BCRYPT_MAX_BYTES)


@lru_cache
def _context() -> CryptContext:
    """bcrypt and argon2, the configured one first (the default); the other is deprecated, and
    min = max = default cost, so a hash of any other scheme or cost "needs update"."""
    settings = get_settings()
    rounds = settings.BCRYPT_ROUNDS
    schemes = ["bcrypt", "argon2"] if settings.PASSWORD_HASH == "bcrypt" else ["argon2", "bcrypt"]
    return CryptContext(
        schemes=schemes,
        deprecated=["auto"],
        bcrypt__default_rounds=rounds,
        bcrypt__min_rounds=rounds,
        bcrypt__max_rounds=rounds,
        argon2__type="ID",
        argon2__rounds=settings.ARGON2_TIME_COST,
        argon2__memory_cost=settings.ARGON2_MEMORY_COST,
        argon2__parallelism=settings.ARGON2_PARALLELISM,
    )


class HashQueue:
    """A thread pool that takes at most `workers` running and `waiting` queued jobs.

    A job counts from its submission until its thread finishes it (or it is cancelled
    unstarted), not until its caller stops waiting: a request cancelled by a disconnect
    leaves its bcrypt running, and that work still occupies the pool. The count is kept
    under a lock, since jobs finish in the pool's threads."""

    def __init__(self, workers: int, waiting: int) -> None:
        self.capacity = workers + waiting
        self.pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="bcrypt", initializer=_yield_cpu
        )
        self._lock = threading.Lock()
        self._jobs = 0

    @property
    def jobs(self) -> int:
        """Jobs running or waiting now."""
        return self._jobs

    def _leave(self) -> None:
        with self._lock:
            self._jobs -= 1

    def _done(self, _future: Future[Any]) -> None:
        self._leave()

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        """Queue `fn(*args)`, or raise HashQueueFull at once when the queue is full."""
        with self._lock:
            if self._jobs >= self.capacity:
                raise HashQueueFull()
            self._jobs += 1
        try:
            future = self.pool.submit(fn, *args)
        except BaseException:  # the pool is shut down: the job never entered it
            self._leave()
            raise
        future.add_done_callback(self._done)
        return future

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in the pool, awaited; HashQueueFull when the queue is full."""
        return await asyncio.wrap_future(self.submit(fn, *args))


HASH_THREAD_NICENESS = 10


def _yield_cpu() -> None:
    """Lower the calling hash thread's CPU priority (Linux: threads have their own nice
    value). When the cores are busy the event loop wins them, and bcrypt takes what is left:
    a login storm slows the logins, not every other request; an idle machine hashes at full
    speed."""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASH_THREAD_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


@lru_cache
def _queue() -> HashQueue:
    settings = get_settings()
    return HashQueue(settings.PASSWORD_HASH_WORKERS, settings.PASSWORD_HASH_QUEUE)


@lru_cache
def _dummy_hash() -> str:
    """A hash of the configured scheme and cost to verify against when the email is unknown."""
    return _context().hash(secrets.token_urlsafe(16))


def hash_password_sync(password: str) -> str:
    return _context().hash(password)


def _spend_one_check() -> None:
    """What a wrong password costs at least: one verification at the configured cost."""
    _context().verify(secrets.token_urlsafe(16), _dummy_hash())


def _verify_and_update(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one should be replaced). Every refusal costs at least
    one verification at the configured cost, as an unknown email does: a hash of another
    scheme or a cheaper cost adds one when the password is wrong, so a wrong password never
    answers sooner on such an account than on an unknown email (bench/README.md)."""
    if hashed is None or not _verifiable(password, hashed):
        _spend_one_check()
        return False, None
    context = _context()
    if hash_formats.is_foreign(hashed):  # imported from another system (app/imports)
        current, matches = False, hash_formats.verify_foreign(password, hashed)
    elif context.identify(hashed) is None:  # no password (an import without one): never
        _spend_one_check()
        return False, None
    else:
        current = not context.needs_update(hashed)
        matches = context.verify(password, hashed)
    if not matches:
        if not current:
            _spend_one_check()
        return False, None
    if current or len(password.encode()) > max_password_bytes():
        # Current; or a password the configured scheme cannot take (over 72 bytes for bcrypt,
        # set while PASSWORD_HASH was argon2id): it keeps the hash it has.
        return True, None
    return True, context.hash(password)


QUEUE_FULL_PAUSE_S = 0.05


def hash_password_in_pool(password: str) -> str:
    """hash_password for a thread that may block (the command line, an import): made in the
    pool like every hash, waiting for a place when the queue is full (logins go first)."""
    while True:
        try:
            return _queue().submit(hash_password_sync, password).result()
        except HashQueueFull:
            time.sleep(QUEUE_FULL_PAUSE_S)


async def hash_password(password: str) -> str:
    """A hash of `password` in the configured scheme; HashQueueFull (503) when the hashing
    queue is full."""
    return await _queue().run(hash_password_sync, password)


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one should be upgraded). `hashed=None` costs the same.
    HashQueueFull (503) when the hashing queue is full."""
    return await _queue().run(_verify_and_update, password, hashed)


def warm_up() -> None:
    """Build the dummy hash before the first login, so the first unknown email is not slower."""
    _dummy_hash()
