"""The per-request read on the event loop (read_first): one SELECT compiled once
(PreparedRead) and run on the driver's own connection, SQLite's per-thread reader or
PostgreSQL's AsyncReadPool, which sends the reads asked for at one moment together.

Only the drivers' public APIs: psycopg's libpq layer (`psycopg.pq`, a connection's `pgconn`)
and its adapters (`psycopg.adapt.Transformer`). Each read is isolated from the others of its
batch: its values are adapted on their own (a NUL byte or a value the driver cannot encode
fails that read alone, before anything is sent), and it is followed by a Sync of its own (a
statement the server refuses aborts nothing after it); a cancelled request's read is
skipped, or its answer dropped. Figures: bench/README.md."""

import asyncio
import functools
import hashlib
import threading
import time
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import psycopg
import psycopg_pool
from psycopg import pq
from psycopg.abc import Transformer as TransformerProtocol
from psycopg.adapt import PyFormat, Transformer
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, Engine, Select
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import DataError, DBAPIError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import db
from app.core.config import get_settings
from app.db import CONNECT_TIMEOUT_S, configure_sqlite, get_engine

# Reads on the event loop wait for a lock at most this long (WAL readers almost never wait):
# a stuck database then answers 503 instead of freezing every request.
SQLITE_READ_BUSY_TIMEOUT_S = 2


async def read_first(statement: "PreparedRead", params: Mapping[str, Any]) -> list[Any] | None:
    """The per-request read (one row of `statement`), on the event loop: no worker-thread
    hop. SQLite: the thread's own query-only connection (a short indexed read of a local
    file). PostgreSQL: this loop's AsyncReadPool, which sends the reads of the requests
    waiting at that moment together, on one connection, each isolated from the others."""
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
        configure_sqlite(connection, None)
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
    """A Core SELECT compiled once and run on the driver's own cursor (or, on PostgreSQL's
    event loop, in AsyncReadPool's batches): for the one statement every authenticated
    request runs.

    Connection.execute's execution context and result object cost several times the read
    itself (bench/README.md). This keeps what matters of it: SQLAlchemy's compiled SQL with
    bound parameters (values are never formatted into it), its bind and result processors
    (the values are those Connection.execute returns: UUIDs, enums, aware datetimes), and its
    exceptions (a driver error is raised as SQLAlchemy's, so that a lost database answers 503
    here too, and a dropped connection leaves the pool)."""

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
        processors = dict(self.binds)
        if self.sqlite:
            self.pipeline_sql = b""
            self.pipeline_binds: list[tuple[str, Any]] = []
        else:  # PostgreSQL's own placeholders ($1, $2...), for libpq's prepared statements
            numeric: Any = type(dialect)  # the same dialect, with PostgreSQL's placeholders
            numbered = statement.compile(dialect=numeric(paramstyle="numeric_dollar"))
            self.pipeline_sql = numbered.string.encode()
            self.pipeline_binds = [(name, processors[name]) for name in numbered.positiontup or ()]

    def first(self, connection: DBAPIConnection, params: Mapping[str, Any]) -> list[Any] | None:
        rows = self._run(connection, params, one=True)
        return self._row(rows[0]) if rows else None

    def all(self, connection: DBAPIConnection, params: Mapping[str, Any]) -> list[list[Any]]:
        return [self._row(row) for row in self._run(connection, params, one=False)]

    @functools.cached_property
    def statement_name(self) -> bytes:
        """The name of this statement when prepared on a PostgreSQL connection (pipelines)."""
        return b"read_" + hashlib.sha256(self.pipeline_sql).hexdigest()[:24].encode()

    def _row(self, row: Sequence[Any]) -> list[Any]:
        return [f(value) if f else value for f, value in zip(self.results, row, strict=True)]

    def _args(self, params: Mapping[str, Any]) -> Any:
        """The statement's own names bound from `params` (other keys ignored), processed."""
        values = [f(params[name]) if f else params[name] for name, f in self.binds]
        return values if self.positional else dict(zip(self.names, values, strict=True))

    def pipeline_args(self, params: Mapping[str, Any]) -> list[Any]:
        """The values of pipeline_sql's $1, $2... from `params`, processed."""
        return [f(params[name]) if f else params[name] for name, f in self.pipeline_binds]

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
        except UnicodeError as error:  # a value the driver cannot encode: this read's own 400
            raise DataError(self.sql, None, error, hide_parameters=True) from error
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


class ReadConnection(psycopg.AsyncConnection[Any]):
    """AsyncReadPool's connection: the statements prepared on it, when it was put back."""

    def __init__(self, pgconn: pq.abc.PGconn, row_factory: Any = tuple_row) -> None:
        super().__init__(pgconn, row_factory)
        self.prepared: set[bytes] = set()
        self.returned = time.monotonic()


class AsyncReadPool:
    """psycopg_pool's pool of PostgreSQL connections (psycopg's asyncio API) for the
    per-request read on the event loop that made it (a connection belongs to its loop).

    Reads are batched: a batch takes a connection, then the reads asked for by then, and
    sends them together as one libpq pipeline (each statement prepared once per connection,
    one write, one wake-up of one server process). Each request gets its own row or its own
    error: a read is adapted on its own and followed by a Sync of its own, so that one
    request's bad value, or a statement the server refuses, fails that read alone. One batch
    at a time waits for a connection and at most `size` are in flight, so under load the
    batches grow instead of the connections (fewer processes, fewer wake-ups).

    The engine pool's semantics: at most `size` connections, replaced after POOL_RECYCLE_S;
    a read that waits over `timeout` for one fails with PoolTimeout (503); one idle for over
    PING_AFTER_IDLE_S is pinged before use; one found dead, or broken in use, leaves the pool
    with the idle ones (a restart took them all). A failed connect closes the pool, so that
    the reads waiting fail at once with OperationalError (503; psycopg_pool would reconnect
    in the background while they wait out DB_POOL_TIMEOUT), and the next read opens another."""

    def __init__(
        self, connect_args: Mapping[str, Any], dialect: Dialect, *, size: int, timeout: float
    ) -> None:
        self.connect_args = {**connect_args, "autocommit": True}
        self.dialect = dialect
        self.size = size
        self.timeout = timeout
        self._pool: AsyncConnectionPool[ReadConnection] | None = None
        self._waiting: list[_Waiting] = []
        self._seeking = False  # a batch is waiting for a connection
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def idle(self) -> int:
        """Connections in the pool, not in use."""
        return self._pool.get_stats()["pool_available"] if self._pool else 0

    async def close(self) -> None:
        """Close the connections (those in use as they come back)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[ReadConnection]:
        pool = self._pool
        if pool is None:
            pool = self._pool = AsyncConnectionPool(
                kwargs=self.connect_args,
                connection_class=ReadConnection,
                min_size=0,  # connected on demand
                max_size=self.size,
                timeout=self.timeout,
                max_lifetime=POOL_RECYCLE_S,
                reconnect_timeout=0,  # a connect failed twice in a row: reconnect_failed
                reconnect_failed=self._unreachable,
                num_workers=1,
                open=False,
                name="reads",
            )
            await pool.open()
        connection = await self._getconn(pool)
        while time.monotonic() - connection.returned > db.PING_AFTER_IDLE_S:
            try:
                await pool.check_connection(connection)
                break
            except psycopg.Error:
                await self._putconn(pool, connection, lost=True)
                connection = await self._getconn(pool)
        lost = False
        try:
            yield connection
        except DBAPIError as error:
            lost = error.connection_invalidated
            raise
        finally:
            await self._putconn(pool, connection, lost=lost)

    def _unreachable(self, pool: AsyncConnectionPool[Any]) -> None:
        if self._pool is pool:
            self._pool = None
        self._start(pool.close())  # its waiting getconn() raise PoolClosed

    async def _getconn(self, pool: AsyncConnectionPool[ReadConnection]) -> ReadConnection:
        try:
            return await pool.getconn()
        except psycopg_pool.PoolTimeout:
            raise PoolTimeout(f"no read connection free within {self.timeout} s") from None
        except psycopg_pool.PoolClosed as error:
            lost = psycopg.OperationalError("cannot connect to the database")
            raise _wrapped(self.dialect, lost, invalidated=True) from error

    async def _putconn(
        self, pool: AsyncConnectionPool[ReadConnection], connection: ReadConnection, *, lost: bool
    ) -> None:
        """Closed first (so the pool drops it) if lost or left mid-statement (a cancelled
        batch); if lost, the idle ones go too."""
        status = connection.pgconn.transaction_status, connection.pgconn.pipeline_status
        if lost or status != (pq.TransactionStatus.IDLE, pq.PipelineStatus.OFF):
            with suppress(psycopg.Error):
                await connection.close()
        connection.returned = time.monotonic()
        await pool.putconn(connection)
        if lost:
            await pool.drain()

    async def first(self, statement: PreparedRead, params: Mapping[str, Any]) -> list[Any] | None:
        """The first row of `statement` (SQLAlchemy's values, as PreparedRead.first gives),
        sent with the other reads waiting at this moment."""
        future: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(statement, params, future))
        if not self._seeking:
            self._seeking = True
            self._start(self._batch())
        return await future

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take(self, count: int) -> list[_Waiting]:
        """The `count` oldest reads waiting; another batch for those left."""
        batch = self._waiting[:count]
        del self._waiting[:count]
        self._seeking = bool(self._waiting)
        if self._seeking:
            self._start(self._batch())
        return batch

    async def _batch(self) -> None:
        """A connection, then the oldest reads waiting (MAX_BATCH at most) in one pipeline
        on it. Their answers go out once the connection is back in the pool, or gone with the
        idle ones if it broke: a request answered 503 for a dead connection is never followed
        by another sent to its dead neighbour. If no connection comes, the reads asked before
        this batch began fail with that error (later ones get a batch of their own)."""
        asked = len(self._waiting)
        batch: list[_Waiting] | None = None
        answers: Answers = {}
        failure: Exception | None = None
        try:
            async with self.connection() as connection:
                batch = self._take(MAX_BATCH)
                await self._pipeline(connection, batch, answers)
        except Exception as error:  # each read raises it: a DBAPIError or PoolTimeout is a 503
            failure = error
            if batch is None:
                batch = self._take(asked)
        except BaseException:  # cancelled: the loop is closing
            if batch is None:  # this batch was the one seeking a connection
                batch, self._waiting, self._seeking = self._waiting, [], False
            for waiting in batch:
                waiting.future.cancel()
            raise
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
        self, connection: ReadConnection, batch: list[_Waiting], answers: "Answers"
    ) -> None:
        """The batch's reads in one pipeline on `connection`; each one's row or error into
        `answers`, by the id of its _Waiting. Each read is isolated: its values are adapted on
        their own (one that cannot be sent is answered its error, and nothing of it is sent)
        and a Sync follows it, so that an error of the server's aborts that read alone."""
        pgconn = connection.pgconn
        prepared = connection.prepared
        transformer = Transformer(connection)
        segments: list[_Segment] = []
        try:
            pgconn.enter_pipeline_mode()
            for waiting in batch:
                if waiting.future.done():
                    continue  # its request went away while it waited
                try:
                    values = _adapted(transformer, waiting)
                except (psycopg.Error, UnicodeError) as error:  # a NUL, an unencodable value
                    answers[id(waiting)] = self._own_error(error)
                    continue
                statement, name = waiting.statement, waiting.statement.statement_name
                segment = _Segment(name, waiting, prepares=name not in prepared)
                if segment.prepares:
                    pgconn.send_prepare(name, statement.pipeline_sql, param_types=transformer.types)
                    prepared.add(name)  # taken back if the prepare fails
                pgconn.send_query_prepared(name, values, param_formats=transformer.formats)
                pgconn.pipeline_sync()
                segments.append(segment)
            while pgconn.flush():
                await _ready(pgconn.socket, write=True)
            if segments:
                await self._collect(connection, transformer, segments, prepared, answers)
        except psycopg.Error as error:  # from libpq: the connection failed mid-pipeline
            lost = connection.broken or connection.closed
            raise _wrapped(self.dialect, error, invalidated=lost) from error
        finally:
            if pgconn.pipeline_status != pq.PipelineStatus.OFF and not pgconn.is_busy():
                with suppress(psycopg.Error):
                    pgconn.exit_pipeline_mode()

    def _own_error(self, error: Exception) -> DBAPIError:
        """A read's own value error, as SQLAlchemy's DataError (a 400, not a 503)."""
        if not isinstance(error, psycopg.Error):
            data_error = psycopg.DataError(f"a value cannot be sent: {error}")
            data_error.__cause__ = error
            error = data_error
        assert isinstance(error, psycopg.Error)
        return _wrapped(self.dialect, error)

    async def _collect(
        self,
        connection: psycopg.AsyncConnection[Any],
        transformer: TransformerProtocol,
        segments: list["_Segment"],
        prepared: set[bytes],
        answers: "Answers",
    ) -> None:
        """Read the pipeline's results: for each read, its commands' results (a prepare's,
        then the query's), each ended by a None, then its Sync."""
        pgconn = connection.pgconn
        encoding = connection.info.encoding
        position = 0
        results: list[pq.abc.PGresult] = []  # of the command being read
        while True:
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    if not results:
                        break  # nothing more has arrived yet
                    segments[position].outcomes.append(results[-1])
                    results = []
                elif result.status == pq.ExecStatus.PIPELINE_SYNC:
                    segment = segments[position]
                    answers[id(segment.waiting)] = self._answer(
                        segment, transformer, prepared, encoding
                    )
                    position += 1
                    if position == len(segments):
                        return
                else:
                    results.append(result)
            await _ready(pgconn.socket, write=False)

    def _answer(
        self,
        segment: "_Segment",
        transformer: TransformerProtocol,
        prepared: set[bytes],
        encoding: str,
    ) -> "list[Any] | BaseException | None":
        """One read's row (None: no row) or error, from its commands' results."""
        error: DBAPIError | None = None  # the first refused command's, which aborts the rest
        for outcome in segment.outcomes:
            if outcome.status == pq.ExecStatus.FATAL_ERROR and error is None:
                error = _wrapped(self.dialect, psycopg.errors.error_from_result(outcome, encoding))
        if segment.prepares and (
            not segment.outcomes or segment.outcomes[0].status != pq.ExecStatus.COMMAND_OK
        ):
            prepared.discard(segment.name)
        if error is not None:
            return error
        query = segment.outcomes[-1] if segment.outcomes else None
        if query is None or query.status != pq.ExecStatus.TUPLES_OK:
            status = query.status if query is not None else "none"
            return _wrapped(self.dialect, psycopg.OperationalError(f"unexpected result: {status}"))
        if not query.ntuples:
            return None
        transformer.set_pgresult(query)
        return segment.waiting.statement._row(transformer.load_row(0, tuple))


@dataclass(slots=True)
class _Segment:
    """A read in a pipeline: its commands (a prepare, if it prepares its statement, and its
    query), then a Sync."""

    name: bytes
    waiting: _Waiting
    prepares: bool
    outcomes: list[pq.abc.PGresult] = field(default_factory=list)


def _adapted(transformer: TransformerProtocol, waiting: _Waiting) -> Sequence[Any]:
    """The read's values as the driver sends them (the types and formats in `transformer`)."""
    values = waiting.statement.pipeline_args(waiting.params)
    return transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))


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
        await pool.close()
