"""The engine (SQLite pragmas, PostgreSQL pool), the per-request database session, and the
transaction retry. The per-request read of the caller on the event loop is app/reads.py."""

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from app.core.config import get_settings

SQLITE_BUSY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 5  # PostgreSQL
# Reads map the database file rather than copy its pages into each connection's 2 MiB page
# cache, which the index of a count(*) over 100,000 users outgrows (and which a write by any
# other connection empties): mapped, that count is an order of magnitude cheaper
# (bench/README.md, the user list rows).
SQLITE_MMAP_BYTES = 256 * 1024 * 1024


def create_db_engine(url: str) -> Engine:
    settings = get_settings()
    if url.startswith("sqlite"):
        _create_private_file(make_url(url).database)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        event.listen(engine, "connect", configure_sqlite)
        return engine
    engine = create_engine(
        url,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_recycle=1800,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle(engine.dialect))
    return engine


def _create_private_file(database: str | None) -> None:
    """Create a new SQLite database file mode 0600 (owner only) before SQLite would create it
    0644: it holds password hashes and sessions. SQLite gives the -wal and -shm files it
    creates beside it the database file's mode. An existing file is left as it is."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or a URI SQLite opens itself
    # OSError: it exists (kept as it is), or cannot be made here (SQLite says so at connect)
    with contextlib.suppress(OSError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# SQLAlchemy's pool_pre_ping costs a round trip at every checkout: a third of the CPU of an
# authenticated request on PostgreSQL. A connection back in use within a second was alive
# a moment ago; only one idle for longer, which a restart or a firewall may have cut, is
# pinged. One cut while busy fails its statement (503) and leaves the pool.
PING_AFTER_IDLE_S = 1.0


def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dialect: Dialect) -> Callable[..., None]:
    def on_checkout(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any
    ) -> None:
        checked_in = record.info.get("checked_in")
        if checked_in is None or time.monotonic() - checked_in <= PING_AFTER_IDLE_S:
            return  # new, or busy a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise DisconnectionError() from error  # the pool drops it and connects afresh

    return on_checkout


def configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is kept on purpose: reads run outside
    # transactions (no lock held, no stale snapshot) and BEGIN comes just before the first
    # write, which then waits for the write lock (busy_timeout) instead of failing. A step
    # that must read and write atomically takes the write lock first (crud.users).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


@lru_cache
def get_engine() -> Engine:
    return create_db_engine(get_settings().DATABASE_URL)


def get_session() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


P = ParamSpec("P")
R = TypeVar("R")
# PostgreSQL's serialization_failure and deadlock_detected: the database aborted one of two
# conflicting transactions, and running it again is the cure.
RETRIED_SQLSTATES = frozenset({"40001", "40P01"})
MAX_TRANSACTION_TRIES = 5


class Remembered(Exception):
    """Raised by a step to refuse and keep a record of the refusal (a wrong password counted
    toward the lockout): the transaction helper rolls the step back, runs `record` as a
    transaction of its own, then raises `refusal`."""

    def __init__(self, refusal: Exception, record: Callable[[Session], object]) -> None:
        super().__init__(refusal)
        self.refusal = refusal
        self.record = record


def transaction(
    step: Callable[Concatenate[Session, P], R],
    session: Session,
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """The one transaction boundary: `step(session, ...)` runs, then one commit. A raise rolls
    it all back (a Remembered refusal then runs its record step, committed on its own); a
    deadlock or serialisation failure between concurrent writers runs the step again, never
    answered 503. Steps never commit or roll back themselves."""
    for attempt in range(1, MAX_TRANSACTION_TRIES + 1):
        try:
            result = step(session, *args, **kwargs)
            session.commit()
            return result
        except Remembered as remembered:
            session.rollback()
            transaction(remembered.record, session)
            raise remembered.refusal from None
        except DBAPIError as error:
            session.rollback()
            sqlstate = getattr(error.orig, "sqlstate", None)
            if sqlstate not in RETRIED_SQLSTATES or attempt == MAX_TRANSACTION_TRIES:
                raise
            time.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 (jitter, not a secret)
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")


def ping() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
