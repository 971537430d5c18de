"""The engine (SQLite pragmas, PostgreSQL pool), the per-request database session, and the
per-request read of the caller on the event loop (read_first, PreparedRead, AsyncReadPool)."""

import asyncio
import contextlib
import functools
import hashlib
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
from psycopg import pq
from psycopg._queries import PostgresQuery
from psycopg.abc import Transformer as TransformerProtocol
from psycopg.adapt import Transformer
from sqlalchemy import Connection, Engine, Select, event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from app.core.config import get_settings

SQLITE_BUSY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 5  # PostgreSQL
# Reads on the event loop wait for a lock at most this long (WAL readers almost never wait):
# a stuck database then answers 503 instead of freezing every request.
SQLITE_READ_BUSY_TIMEOUT_S = 2
# Reads map the database file rather than copy its pages into each connection's 2 MiB page
# cache, which the index of a count(*) over 100,000 users outgrows (and which a write by any
# other connection empties): that count costs 50-90 µs mapped, 900 µs through the cache.
SQLITE_MMAP_BYTES = 256 * 1024 * 1024


def create_db_engine(url: str) -> Engine:
    settings = get_settings()
    if url.startswith("sqlite"):
        _create_private_file(make_url(url).database)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        event.listen(engine, "connect", _sqlite_on_connect)
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


def retry_conflicts(
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """Run a transaction function (its first argument the Session) again, after a rollback,
    when the database aborted it as a deadlock or a serialisation failure: such a conflict
    between concurrent writes is retried, never answered 503."""

    @functools.wraps(fn)
    def run(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, MAX_TRANSACTION_TRIES + 1):
            try:
                return fn(session, *args, **kwargs)
            except DBAPIError as error:
                sqlstate = getattr(error.orig, "sqlstate", None)
                if sqlstate not in RETRIED_SQLSTATES or attempt == MAX_TRANSACTION_TRIES:
                    raise
                session.rollback()
                time.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 (jitter, not a secret)
        raise AssertionError("unreachable")

    return run


async def read_first(statement: "PreparedRead", params: Mapping[str, Any]) -> list[Any] | None:
    """The per-request read (one row of `statement`), on the event loop: no worker-thread
        hop. SQLite: the thread's own query-only connection (a short indexed read of a local
        file). PostgreSQL: this loop's AsyncReadPool, which sends the reads of the requests waiting
    at that moment together, in one pipeline on one connection."""
    if statement.sqlite:
        return statement.first(_sqlite_reader(), params)
    return await async_read_pool().first(statement, params)


@contextmanager
def read_connection() -> Iterator[DBAPIConnection]:
    """A driver connection for a read through PreparedRead. Never write through it.

    SQLite: the calling thread's own query-only connection, opened once; a thread runs one
    read at a time, so it never needs two and no pool is asked per request. PostgreSQL (from
    a worker thread: the event loop has read_first): a pooled connection in autocommit (no
    BEGIN and ROLLBACK round trips)."""
    if get_settings().is_sqlite:
        yield _sqlite_reader()
        return
    with _autocommit_engine().connect() as connection:
        try:
            yield connection.connection
        except DBAPIError as error:
            if error.connection_invalidated:
                connection.invalidate(error.orig)  # the pool drops it; the next read reconnects
            raise


_sqlite_readers: dict[int, DBAPIConnection] = {}  # thread id -> that thread's reader


def _sqlite_reader() -> DBAPIConnection:
    thread = threading.get_ident()
    connection = _sqlite_readers.get(thread)
    if connection is None:
        engine = get_engine()
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        # the timeout covers the connect-time pragmas; then its PRAGMA busy_timeout rules
        kwargs.update(check_same_thread=False, timeout=SQLITE_READ_BUSY_TIMEOUT_S)
        connection = engine.dialect.connect(*args, **kwargs)
        _sqlite_on_connect(connection, None)
        _sqlite_reader_on_connect(connection, None)
        _sqlite_readers[thread] = connection  # a reused thread id reuses it: one user at a time
    return connection


def close_readers() -> None:
    """Close the SQLite reader connections (at shutdown)."""
    while _sqlite_readers:
        _sqlite_readers.popitem()[1].close()


@lru_cache
def _autocommit_engine() -> Engine:
    # One statement needs no transaction: no BEGIN and no ROLLBACK round trips.
    return get_engine().execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_reader_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only=ON")
    dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_TIMEOUT_S * 1000}")


class PreparedRead:
    """A Core SELECT compiled once and run on the driver's own cursor: for the one statement
    every authenticated request runs.

    Connection.execute spends about 50 µs a call on its execution context and result
    object, five times the read itself. This keeps what matters of it: SQLAlchemy's compiled
    SQL with bound parameters (values are never formatted into it), its bind and result
    processors (the values are those Connection.execute returns: UUIDs, enums, aware
    datetimes), and its exceptions (a driver error is raised as SQLAlchemy's, so that a lost
    database answers 503 here too, and a dropped connection leaves the pool)."""

    def __init__(self, statement: Select[Any], engine: Engine | Connection) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = compiled.positiontup or list(compiled.binds)  # in order if positional
        self.positional = compiled.positiontup is not None
        self.binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in self.names
        ]
        self.results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self.dialect = dialect
        self.sqlite = dialect.name == "sqlite"
        self.error = dialect.loaded_dbapi.Error

    def first(self, connection: DBAPIConnection, params: Mapping[str, Any]) -> list[Any] | None:
        rows = self._run(connection, params, one=True)
        return self._row(rows[0]) if rows else None

    def all(self, connection: DBAPIConnection, params: Mapping[str, Any]) -> list[list[Any]]:
        return [self._row(row) for row in self._run(connection, params, one=False)]

    @functools.cached_property
    def statement_name(self) -> bytes:
        """The name of this statement when prepared on a PostgreSQL connection (pipelines)."""
        return b"read_" + hashlib.sha256(self.sql.encode()).hexdigest()[:24].encode()

    def _row(self, row: Sequence[Any]) -> list[Any]:
        return [f(value) if f else value for f, value in zip(self.results, row, strict=True)]

    def _args(self, params: Mapping[str, Any]) -> Any:
        """The statement's own names bound from `params` (other keys ignored), processed."""
        values = [f(params[name]) if f else params[name] for name, f in self.binds]
        return values if self.positional else dict(zip(self.names, values, strict=True))

    def _wrap(self, error: Any, args: Any, connection: Any, cursor: Any) -> StatementError:
        lost = self.dialect.is_disconnect(error, connection, cursor)
        return DBAPIError.instance(
            self.sql,
            args,
            error,
            self.error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=self.dialect,
        )

    def _run(
        self, connection: DBAPIConnection, params: Mapping[str, Any], *, one: bool
    ) -> Sequence[Sequence[Any]]:
        """The statement's raw rows (the first only, if `one`)."""
        args = self._args(params)
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, args)
            if one:
                row = cursor.fetchone()
                return [] if row is None else [row]
            return cursor.fetchall()
        except self.error as error:
            raise self._wrap(error, args, connection, cursor) from error
        finally:
            cursor.close()


@lru_cache
def prepared(statement: Select[Any]) -> PreparedRead:
    """`statement` compiled for the service's database."""
    return PreparedRead(statement, get_engine())


POOL_RECYCLE_S = 1800  # as the engine's pool_recycle


MAX_BATCH = 64  # reads sent in one pipeline
Answers = dict[int, "list[Any] | BaseException | None"]  # a batch's, by id() of its _Waiting


@dataclass(slots=True)
class _Waiting:
    """A request's read, waiting for its batch."""

    statement: PreparedRead
    params: Mapping[str, Any]
    future: "asyncio.Future[list[Any] | None]"
    since: float  # loop time when it asked


class AsyncReadPool:
    """PostgreSQL connections of psycopg's asyncio API, for the per-request read on the event
    loop that made the pool (a connection belongs to its loop).

    Reads are batched: the reads asked for while the loop runs one round of callbacks go to
    the server together, on one connection, as one pipeline (each statement prepared once
    per connection, one write, one wake-up of one server process, one Sync), and each
    request gets its own row or its own error. At most `size` batches are in flight, one per
    connection; reads asked for meanwhile wait for the next one, so under load the batches
    grow instead of the connections (fewer processes on the machine, fewer wake-ups).

    The engine pool's semantics, on the loop: at most `size` connections; a read that waits
    over `timeout` for one fails with PoolTimeout (503); one idle for over PING_AFTER_IDLE_S
    is pinged before use and replaced if dead, along with every idle one (a restart drops
    them all); one that breaks in use leaves the pool, and the idle ones with it; a failed
    connect raises SQLAlchemy's OperationalError at once (503). psycopg_pool was not used:
    it reconnects in the background while requests wait for its timeout, so a database
    outage would hold every authenticated request for DB_POOL_TIMEOUT instead of answering
    503."""

    def __init__(
        self, connect_args: Mapping[str, Any], dialect: Dialect, *, size: int, timeout: float
    ) -> None:
        self.connect_args = dict(connect_args)
        self.dialect = dialect
        self.size = size
        self.timeout = timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: deque[tuple[psycopg.AsyncConnection[Any], float, float]] = deque()
        self._waiting: list[_Waiting] = []
        self._in_flight = 0  # batches
        self._dispatch_due = False
        self._expiry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._prepared: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[bytes]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def idle(self) -> int:
        """Connections in the pool, not in use."""
        return len(self._idle)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no read connection free within {self.timeout} s") from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            connection, created = await self._checkout()
            try:
                yield connection
            except DBAPIError as error:
                if error.connection_invalidated:
                    await self.discard_idle()
                raise
            finally:
                await self._checkin(connection, created)
        finally:
            self._slots.release()

    async def _checkout(self) -> tuple[psycopg.AsyncConnection[Any], float]:
        while self._idle:
            connection, created, returned = self._idle.pop()  # the most recently used
            now = time.monotonic()
            if connection.broken or now - created > POOL_RECYCLE_S:
                await _close(connection)
                continue
            if now - returned <= PING_AFTER_IDLE_S:
                return connection, created  # busy a moment ago
            try:
                await connection.execute("SELECT 1")
                return connection, created
            except psycopg.Error:
                await _close(connection)
                await self.discard_idle()
        try:
            connection = await psycopg.AsyncConnection.connect(**self.connect_args, autocommit=True)
        except psycopg.Error as error:
            raise _wrapped(self.dialect, error, invalidated=True) from error
        return connection, time.monotonic()

    async def _checkin(self, connection: psycopg.AsyncConnection[Any], created: float) -> None:
        if (
            connection.broken
            or connection.info.transaction_status != IDLE_STATUS
            or connection.pgconn.pipeline_status != pq.PipelineStatus.OFF
        ):
            await _close(connection)  # broken, or left mid-statement (a cancelled request)
        else:
            self._idle.append((connection, created, time.monotonic()))

    async def discard_idle(self) -> None:
        while self._idle:
            await _close(self._idle.pop()[0])

    async def first(self, statement: PreparedRead, params: Mapping[str, Any]) -> list[Any] | None:
        """The first row of `statement` (SQLAlchemy's values, as PreparedRead.first gives),
        sent with the other reads waiting at this moment."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any] | None] = loop.create_future()
        self._waiting.append(_Waiting(statement, params, future, loop.time()))
        if not self._dispatch_due:
            self._dispatch_due = True
            loop.call_soon(self._dispatch)
        return await future

    def _dispatch(self) -> None:
        """Start a batch on each free connection slot; what is left waits for one."""
        self._dispatch_due = False
        loop = asyncio.get_running_loop()
        while self._waiting and self._in_flight < self.size:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            self._in_flight += 1
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._waiting and self._expiry is None:
            self._expiry = loop.call_at(self._waiting[0].since + self.timeout, self._expire)

    def _expire(self) -> None:
        """PoolTimeout for the reads that waited over `timeout` for a connection."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() - self.timeout
        while self._waiting and self._waiting[0].since <= deadline:
            waiting = self._waiting.pop(0)
            if not waiting.future.done():
                waiting.future.set_exception(
                    PoolTimeout(f"no read connection free within {self.timeout} s")
                )
        if self._waiting:
            self._expiry = loop.call_at(self._waiting[0].since + self.timeout, self._expire)

    async def _run(self, batch: list[_Waiting]) -> None:
        """The batch on a connection. Its answers go out once the connection is back in
        the pool, or gone with the idle ones if it broke: a request answered 503 for a dead
        connection is never followed by another sent to its dead neighbour."""
        answers: Answers = {}
        failure: BaseException | None = None
        try:
            async with self.connection() as connection:
                await self._pipeline(connection, batch, answers)
        except Exception as error:  # each read raises it: a DBAPIError or PoolTimeout is a 503
            failure = error
        except BaseException:
            for waiting in batch:
                waiting.future.cancel()
            raise
        finally:
            self._in_flight -= 1
            if self._waiting and not self._dispatch_due:
                self._dispatch_due = True
                asyncio.get_running_loop().call_soon(self._dispatch)
        for waiting in batch:
            if waiting.future.done():
                continue  # its request went away (cancelled)
            if id(waiting) in answers:
                answer = answers[id(waiting)]
            else:  # the pipeline broke before its result
                missing = psycopg.OperationalError("the pipeline ended before this read's result")
                answer = failure or _wrapped(self.dialect, missing)
            if isinstance(answer, BaseException):
                waiting.future.set_exception(answer)
            else:
                waiting.future.set_result(answer)

    async def _pipeline(
        self, connection: psycopg.AsyncConnection[Any], batch: list[_Waiting], answers: "Answers"
    ) -> None:
        """The batch's reads in one pipeline on `connection`; each one's row or error into
        `answers`, by the id of its _Waiting."""
        pgconn = connection.pgconn
        prepared = self._prepared.setdefault(connection, set())
        transformer = Transformer(connection)
        expected: list[tuple[bytes, _Waiting | None]] = []  # (statement name, read | a prepare)
        try:
            pgconn.enter_pipeline_mode()
            for waiting in batch:
                if waiting.future.done():
                    continue  # its request went away while it waited
                statement = waiting.statement
                query = PostgresQuery(transformer)
                query.convert(statement.sql, statement._args(waiting.params))
                name = statement.statement_name
                if name not in prepared:
                    pgconn.send_prepare(name, query.query, param_types=query.types)
                    expected.append((name, None))
                    prepared.add(name)  # taken back below if the prepare fails
                pgconn.send_query_prepared(name, query.params, param_formats=query.formats)
                expected.append((name, waiting))
            pgconn.pipeline_sync()
            while pgconn.flush():
                await _ready(pgconn.socket, write=True)
            await self._collect(connection, transformer, expected, prepared, answers)
        except psycopg.Error as error:  # from libpq: the connection failed mid-pipeline
            lost = connection.broken or connection.closed
            raise _wrapped(self.dialect, error, invalidated=lost) from error
        finally:
            if pgconn.pipeline_status != pq.PipelineStatus.OFF and not pgconn.is_busy():
                with suppress(psycopg.Error):
                    pgconn.exit_pipeline_mode()

    async def _collect(
        self,
        connection: psycopg.AsyncConnection[Any],
        transformer: TransformerProtocol,
        expected: list[tuple[bytes, "_Waiting | None"]],
        prepared: set[bytes],
        answers: "Answers",
    ) -> None:
        """Read the pipeline's results up to its Sync: each command's result, then a None."""
        pgconn = connection.pgconn
        encoding = connection.info.encoding
        position = 0
        failure: DBAPIError | None = None  # the error that aborted the rest of the pipeline
        results: list[pq.abc.PGresult] = []
        while True:
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    if not results:
                        break  # nothing more has arrived yet
                    name, waiting = expected[position]
                    position += 1
                    outcome = results[-1]
                    results = []
                    status = outcome.status
                    if status == pq.ExecStatus.FATAL_ERROR:
                        failure = _wrapped(
                            self.dialect, psycopg.errors.error_from_result(outcome, encoding)
                        )
                    if waiting is None:  # a prepare
                        if status != pq.ExecStatus.COMMAND_OK:
                            prepared.discard(name)
                    elif status == pq.ExecStatus.TUPLES_OK:
                        row = None
                        if outcome.ntuples:
                            transformer.set_pgresult(outcome)
                            row = waiting.statement._row(transformer.load_row(0, tuple))
                        answers[id(waiting)] = row
                    else:  # its own error, or aborted by an earlier one's
                        unexpected = psycopg.OperationalError(f"unexpected result: {status}")
                        answers[id(waiting)] = failure or _wrapped(self.dialect, unexpected)
                elif result.status == pq.ExecStatus.PIPELINE_SYNC:
                    return
                else:
                    results.append(result)
            await _ready(pgconn.socket, write=False)


IDLE_STATUS = psycopg.pq.TransactionStatus.IDLE


def _wrapped(dialect: Dialect, error: psycopg.Error, *, invalidated: bool = False) -> DBAPIError:
    """A driver error as SQLAlchemy's (so that it answers 503), parameters hidden."""
    wrapped = DBAPIError.instance(
        None,
        None,
        error,
        psycopg.Error,
        hide_parameters=True,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped


async def _ready(fileno: int, *, write: bool) -> None:
    """Until the socket can be read (or written) without blocking."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    watch, unwatch = (
        (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)
    )
    watch(fileno, wake)
    try:
        await ready
    finally:
        unwatch(fileno)


async def _close(connection: psycopg.AsyncConnection[Any]) -> None:
    with suppress(psycopg.Error):
        await connection.close()


_async_read_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncReadPool]" = (
    weakref.WeakKeyDictionary()
)


def async_read_pool() -> AsyncReadPool:
    """The running event loop's AsyncReadPool, made at its first read."""
    loop = asyncio.get_running_loop()
    pool = _async_read_pools.get(loop)
    if pool is None:
        settings, engine = get_settings(), get_engine()
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        pool = AsyncReadPool(
            {**kwargs, "connect_timeout": CONNECT_TIMEOUT_S},
            engine.dialect,
            size=settings.DB_READ_POOL_SIZE,
            timeout=settings.DB_POOL_TIMEOUT,
        )
        _async_read_pools[loop] = pool
    return pool


async def close_async_reads() -> None:
    """Close the running loop's read connections (at shutdown)."""
    pool = _async_read_pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.discard_idle()


def ping() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
