"""One holder at a time of a named job, across threads, processes and hosts: on PostgreSQL a
session-level advisory lock on a connection of its own (the database drops it if the
process dies); SQLite is one host's file, and a process-wide lock is enough there."""

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def _local(name: str) -> threading.Lock:
    with _local_guard:
        return _local_locks.setdefault(name, threading.Lock())


def advisory_key(name: str) -> int:
    """A stable 32-bit key for `name` (pg_try_advisory_lock takes a bigint)."""
    return zlib.crc32(f"authsvc:{name}".encode())


@contextmanager
def only_one(engine: Engine, name: str) -> Iterator[bool]:
    """Yield True to the one holder of `name`; False, at once, to anyone else."""
    local = _local(name)
    if not local.acquire(blocking=False):
        yield False
        return
    try:
        if engine.dialect.name != "postgresql":
            yield True
            return
        with _advisory(engine, advisory_key(name)) as held:
            yield held
    finally:
        local.release()


@contextmanager
def _advisory(engine: Engine, key: int) -> Iterator[bool]:
    connection = engine.connect()
    try:
        held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        connection.commit()  # the lock outlives the transaction: none is left open
        if not held:
            yield False
            return
        try:
            yield True
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            connection.commit()
    except BaseException:
        connection.invalidate()  # never hand a connection that may hold the lock to the pool
        raise
    finally:
        connection.close()
