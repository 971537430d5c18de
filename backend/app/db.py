"""The engine (SQLite pragmas, PostgreSQL pool) and the per-request database session."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlmodel import Session, create_engine

from app.core.config import get_settings

SQLITE_BUSY_TIMEOUT_S = 30
# Reads on the event loop wait for a lock at most this long (WAL readers almost never wait):
# a stuck database then answers 503 instead of freezing every request.
SQLITE_READ_BUSY_TIMEOUT_S = 2


def create_db_engine(url: str) -> Engine:
    settings = get_settings()
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(
        url,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is kept on purpose: reads run outside
    # transactions (no lock held, no stale snapshot) and BEGIN comes just before the first
    # write, which then waits for the write lock (busy_timeout) instead of failing. A step
    # that must read and write atomically takes the write lock first (crud.users).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@lru_cache
def get_engine() -> Engine:
    return create_db_engine(get_settings().DATABASE_URL)


def get_session() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def reads_on_event_loop() -> bool:
    """Whether read_connection() may run on the event loop: on SQLite a short indexed read of
    a local file costs less than the hop to a worker thread; PostgreSQL reads go over the
    network, so they run in a worker thread."""
    return get_settings().is_sqlite


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A connection for short reads (the per-request token check). Never write through it:
    on SQLite its connections are query-only."""
    with _read_only_engine().connect() as connection:
        yield connection


@lru_cache
def _read_only_engine() -> Engine:
    settings = get_settings()
    if not settings.is_sqlite:
        # One statement needs no transaction: no BEGIN and no ROLLBACK round trips.
        return get_engine().execution_options(isolation_level="AUTOCOMMIT")
    # Its own pool, which never makes a caller wait (on the event loop a wait would stall
    # every request): one connection in steady use, since the loop reads one at a time.
    engine = create_engine(
        settings.DATABASE_URL,
        connect_args={"check_same_thread": False, "timeout": SQLITE_READ_BUSY_TIMEOUT_S},
        pool_size=1,
        max_overflow=-1,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "connect", _sqlite_reader_on_connect)
    return engine


def _sqlite_reader_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only=ON")
    dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_TIMEOUT_S * 1000}")


def ping() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
