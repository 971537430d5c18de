"""Password rules and bcrypt hashing (passlib API, the maintained `libpass` fork).

Hashing is slow on purpose, so it runs in a bounded pool of threads (bcrypt releases the GIL):
a storm of logins queues there instead of starving the event loop and the other requests. The
queue itself is bounded too (PASSWORD_HASH_QUEUE): past it a hash is refused at once
(HashQueueFull, 503 + Retry-After) rather than making every later login wait behind the storm.
"""

import asyncio
import os
import secrets
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

from passlib.context import CryptContext

from app.core.config import get_settings
from app.core.i18n import N_
from app.errors import HashQueueFull

BCRYPT_MAX_BYTES = 72
T = TypeVar("T")


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    minimum = get_settings().PASSWORD_MIN_LENGTH
    if len(password) < minimum:
        return N_("Password must be at least %(minimum)s characters", minimum=minimum)
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        return N_("Password must be at most %(maximum)s bytes in UTF-8", maximum=BCRYPT_MAX_BYTES)
    if "\x00" in password:
        return N_("Password must not contain NUL characters")
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
    """A bcrypt hash of `password`; HashQueueFull (503) when the hashing queue is full."""
    return await _queue().run(hash_password_sync, password)


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one should be upgraded). `hashed=None` costs the same.
    HashQueueFull (503) when the hashing queue is full."""
    return await _queue().run(_verify_and_update, password, hashed)


def warm_up() -> None:
    """Build the dummy hash before the first login, so the first unknown email is not slower."""
    _dummy_hash()
