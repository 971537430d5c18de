"""The per-request check (GET /users/me and every authenticated route): one read, no write,
no worker-thread hop on SQLite, and nothing cached, so changes show on the very next request."""

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import column, create_engine, event, table, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, select

from app import db, reads
from app.auth.tokens import CALLER
from app.core.config import get_settings
from app.core.permissions import Role
from app.crud.clients import CLIENT_AUTH
from app.db import get_engine
from app.models.session import AuthSession
from app.models.user import USER_READ_FIELDS, User
from app.reads import (
    AsyncReadPool,
    PreparedRead,
    close_async_reads,
    prepared,
    read_connection,
    read_first,
)
from tests.utils import PASSWORD, api, assert_unauthorized, auth_header, login
from tests.utils.server import free_port


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement sent to the database while the test runs: through the engines,
    and the prepared reads that go to the driver's cursor directly."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    first, pooled_first = PreparedRead.first, AsyncReadPool.first

    def recorded_first(self: PreparedRead, *args: Any) -> Any:
        sent.append(self.sql)
        return first(self, *args)

    async def recorded_pooled_first(
        self: AsyncReadPool, statement: PreparedRead, *args: Any
    ) -> Any:
        sent.append(statement.sql)
        return await pooled_first(self, statement, *args)

    monkeypatch.setattr(PreparedRead, "first", recorded_first)
    monkeypatch.setattr(AsyncReadPool, "first", recorded_pooled_first)

    event.listen(get_engine(), "before_cursor_execute", record)
    yield sent
    event.remove(get_engine(), "before_cursor_execute", record)


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every call handed to a worker thread (Starlette's and FastAPI's run_in_threadpool)."""
    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return hops


def test_me_is_one_select_and_no_write(
    client: TestClient, user: User, statements: list[str], thread_hops: list[object]
) -> None:
    headers = auth_header(login(client, user.email, PASSWORD))
    statements.clear()
    thread_hops.clear()
    response = client.get(api("/users/me"), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == user.email
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, statements
    assert all(s.lstrip().upper().startswith(("SELECT", "BEGIN", "ROLLBACK")) for s in statements)
    assert thread_hops == []  # read on the event loop, on SQLite and PostgreSQL alike


def test_role_change_deactivation_and_logout_show_on_the_next_request(
    client: TestClient, user: User, db: Session
) -> None:
    headers = auth_header(login(client, user.email, PASSWORD))
    assert client.get(api("/users/me"), headers=headers).json()["role"] == "user"
    assert client.get(api("/users"), headers=headers).status_code == 403

    db.exec(update(User).where(col(User.id) == user.id).values(role=Role.MODERATOR))
    db.commit()
    assert client.get(api("/users/me"), headers=headers).json()["role"] == "moderator"
    assert client.get(api("/users"), headers=headers).status_code == 200

    db.exec(update(User).where(col(User.id) == user.id).values(is_active=False))
    db.commit()
    assert_unauthorized(client.get(api("/users/me"), headers=headers))

    db.exec(update(User).where(col(User.id) == user.id).values(is_active=True))
    db.commit()
    assert client.get(api("/users/me"), headers=headers).status_code == 200
    assert client.post(api("/auth/logout"), headers=headers).status_code == 204
    assert_unauthorized(client.get(api("/users/me"), headers=headers))


def test_expired_session_is_refused(client: TestClient, user: User, db: Session) -> None:
    headers = auth_header(login(client, user.email, PASSWORD))
    db.exec(
        update(AuthSession)
        .where(col(AuthSession.user_id) == user.id)
        .values(expires_at=AuthSession.created_at)
    )
    db.commit()
    assert_unauthorized(client.get(api("/users/me"), headers=headers))


@pytest.mark.skipif(not get_settings().is_sqlite, reason="SQLite's reader connections")
def test_reader_connections_cannot_write(user: User) -> None:
    with read_connection() as connection, pytest.raises(sqlite3.OperationalError, match="readonly"):
        connection.execute("UPDATE user SET full_name = 'x'")


def test_the_prepared_read_returns_what_connection_execute_returns(
    client: TestClient, user: User, db: Session
) -> None:
    login(client, user.email, PASSWORD)
    session_id = db.exec(select(AuthSession.id).where(AuthSession.user_id == user.id)).one()
    params = {"sid": session_id, "sub": user.id}
    with get_engine().connect() as connection:
        expected = list(connection.execute(CALLER, params).one())
    with read_connection() as connection:
        row = prepared(CALLER).first(connection, params)
    on_loop = on_a_loop(lambda: read_first(prepared(CALLER), params))
    for found in (row, on_loop):
        assert found == expected
        assert [type(value) for value in found] == [type(value) for value in expected]
        assert found[USER_READ_FIELDS.index("created_at")].tzinfo is not None
    assert on_a_loop(lambda: read_first(prepared(CALLER), {**params, "sid": uuid.uuid4()})) is None
    with read_connection() as connection:
        assert prepared(CALLER).first(connection, {"sid": uuid.uuid4(), "sub": user.id}) is None


def test_a_driver_error_in_the_prepared_read_is_raised_as_sqlalchemys() -> None:
    statement = sa_select(column("x")).select_from(table("no_such_table"))
    with read_connection() as connection, pytest.raises(DBAPIError) as caught:
        PreparedRead(statement, get_engine()).first(connection, {})
    assert isinstance(caught.value.orig, get_engine().dialect.loaded_dbapi.Error)
    assert "no_such_table" in str(caught.value.orig)
    with read_connection() as connection:  # the connection is still good
        assert (
            prepared(CALLER).first(connection, {"sid": uuid.uuid4(), "sub": uuid.uuid4()}) is None
        )


def on_a_loop(read: Callable[[], Awaitable[Any]]) -> Any:
    """`read()` on an event loop of its own, whose read connections are closed after."""

    async def run() -> Any:
        try:
            return await read()
        finally:
            await close_async_reads()

    return asyncio.run(run())


needs_postgresql = pytest.mark.skipif(
    get_settings().is_sqlite, reason="PostgreSQL's read pool (TEST_DATABASE_URL)"
)


def read_pool(size: int = 1, timeout: float = 5, **connect_args: Any) -> AsyncReadPool:
    engine = get_engine()
    _args, kwargs = engine.dialect.create_connect_args(engine.url)
    return AsyncReadPool({**kwargs, **connect_args}, engine.dialect, size=size, timeout=timeout)


@needs_postgresql
def test_a_driver_error_on_the_loop_is_sqlalchemys_and_keeps_the_connection() -> None:
    missing = sa_select(column("x")).select_from(table("no_such_table"))
    statement = PreparedRead(missing, get_engine())
    nobody = {"sid": uuid.uuid4(), "sub": uuid.uuid4()}

    async def run() -> None:
        pool = read_pool()
        with pytest.raises(DBAPIError) as caught:
            await pool.first(statement, {})
        assert isinstance(caught.value.orig, psycopg.errors.UndefinedTable)
        assert not caught.value.connection_invalidated
        assert pool.idle == 1  # not a dropped connection: it stays
        assert await pool.first(prepared(CALLER), nobody) is None
        await pool.close()

    asyncio.run(run())


@needs_postgresql
def test_reads_asked_together_share_one_pipeline_and_each_gets_its_own_answer(
    client: TestClient, user: User, db: Session
) -> None:
    """Forty requests' reads at once, on a pool of one connection: one pipeline, every read
    its own row (or None); a failing statement among them fails that read alone (each read is
    isolated: OIDC.md, revision 2), and the connection stays."""
    login(client, user.email, PASSWORD)
    session_id = db.exec(select(AuthSession.id).where(AuthSession.user_id == user.id)).one()
    mine = {"sid": session_id, "sub": user.id}
    nobody = {"sid": uuid.uuid4(), "sub": user.id}
    missing = PreparedRead(sa_select(column("x")).select_from(table("no_such_table")), get_engine())
    pipelines: list[int] = []

    async def run() -> None:
        pool = read_pool(size=1)
        pipeline = pool._pipeline

        async def counted(connection: Any, batch: list[Any], answers: Any) -> None:
            pipelines.append(len(batch))
            await pipeline(connection, batch, answers)

        pool._pipeline = counted  # type: ignore[method-assign]
        reads = [pool.first(prepared(CALLER), mine if i % 2 else nobody) for i in range(40)]
        rows = await asyncio.gather(*reads)
        assert pipelines == [40]
        assert [row is not None for row in rows] == [i % 2 == 1 for i in range(40)]
        assert all(row[USER_READ_FIELDS.index("email")] == user.email for row in rows if row)

        pipelines.clear()
        answers = await asyncio.gather(
            pool.first(prepared(CALLER), mine),
            pool.first(missing, {}),
            pool.first(prepared(CALLER), mine),
            return_exceptions=True,
        )
        assert pipelines == [3]
        assert answers[0] is not None and answers[0][USER_READ_FIELDS.index("id")] == user.id
        assert isinstance(answers[1], DBAPIError)
        assert isinstance(answers[1].orig, psycopg.errors.UndefinedTable)
        assert answers[2] is not None and answers[2][USER_READ_FIELDS.index("id")] == user.id
        assert pool.idle == 1
        assert await pool.first(prepared(CALLER), mine) is not None  # prepared again
        await pool.close()

    asyncio.run(run())


@needs_postgresql
def test_a_read_with_a_value_the_driver_refuses_fails_alone(
    client: TestClient, user: User, db: Session
) -> None:
    """Issue 19, finding 3: a NUL byte or a lone surrogate in one read's values (a client_id,
    say) is that read's own DataError (a 400), sent in the same batch as good reads, which
    each get their own row; and the connection stays in the pool."""
    login(client, user.email, PASSWORD)
    session_id = db.exec(select(AuthSession.id).where(AuthSession.user_id == user.id)).one()
    mine = {"sid": session_id, "sub": user.id}
    client_read = prepared(CLIENT_AUTH)
    bad_values = ["a\x00b", "\ud800", "\x00" * 300]

    async def run() -> None:
        pool = read_pool(size=1)
        for bad in bad_values:
            for first in (True, False):  # before the statement is prepared, and after
                reads = [pool.first(prepared(CALLER), mine) for _ in range(5)]
                hostile = pool.first(client_read, {"client_id": bad})
                reads.insert(0 if first else 3, hostile)
                answers = await asyncio.gather(*reads, return_exceptions=True)
                refused = answers.pop(0 if first else 3)
                assert isinstance(refused, DataError), refused
                for row in answers:
                    assert not isinstance(row, BaseException), row
                    assert row is not None and row[USER_READ_FIELDS.index("id")] == user.id
                assert pool.idle == 1
                await pool.close()  # next round: a new connection, nothing prepared
        assert await pool.first(client_read, {"client_id": "no-such-client"}) is None
        await pool.close()

    asyncio.run(run())


@needs_postgresql
def test_a_read_cancelled_in_flight_leaves_the_others_and_the_connection(
    client: TestClient, user: User, db: Session
) -> None:
    """A client that goes away mid-read (its request task cancelled) takes nothing with it:
    the batch's other reads are answered and the connection goes back to the pool."""
    login(client, user.email, PASSWORD)
    session_id = db.exec(select(AuthSession.id).where(AuthSession.user_id == user.id)).one()
    mine = {"sid": session_id, "sub": user.id}

    async def run() -> None:
        pool = read_pool(size=1)
        await pool.first(prepared(CALLER), mine)  # connected and prepared
        gone = asyncio.ensure_future(pool.first(prepared(CALLER), mine))
        kept = asyncio.ensure_future(pool.first(prepared(CALLER), mine))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the batch is on its way
        gone.cancel()
        assert (await kept) is not None
        with pytest.raises(asyncio.CancelledError):
            await gone
        await asyncio.gather(*pool._tasks)  # the batch ends: its connection goes back
        assert pool.idle == 1
        assert await pool.first(prepared(CALLER), mine) is not None
        await pool.close()

    asyncio.run(run())


@needs_postgresql
def test_reads_waiting_for_a_busy_pool_time_out() -> None:
    """Every connection held (here: taken out of the pool), a read waits `timeout`, then
    fails with PoolTimeout (a 503), and the next read once one is free is served."""

    async def run() -> float:
        pool = read_pool(size=1, timeout=0.3)
        nobody = {"sid": uuid.uuid4(), "sub": uuid.uuid4()}
        async with pool.connection():
            began = time.monotonic()
            with pytest.raises(PoolTimeout):
                await pool.first(prepared(CALLER), nobody)
            waited = time.monotonic() - began
        assert await pool.first(prepared(CALLER), nobody) is None
        await pool.close()
        return waited

    assert 0.25 <= asyncio.run(run()) < 2


@needs_postgresql
def test_the_read_pool_waits_for_a_connection_then_times_out() -> None:
    async def run() -> float:
        pool = read_pool(size=1, timeout=0.3)
        async with pool.connection():
            began = time.monotonic()
            with pytest.raises(PoolTimeout):
                async with pool.connection():
                    pass
            waited = time.monotonic() - began
        async with pool.connection():  # free again
            pass
        await pool.close()
        return waited

    assert 0.25 <= asyncio.run(run()) < 2


@needs_postgresql
def test_a_failed_connect_is_operational_error_at_once() -> None:
    async def run() -> None:
        pool = read_pool(host="127.0.0.1", port=free_port(), connect_timeout=5)
        began = time.monotonic()
        with pytest.raises(OperationalError):
            async with pool.connection():
                pass
        assert time.monotonic() - began < 2  # refused: no waiting for a pool to reconnect
        began = time.monotonic()
        nobody = {"sid": uuid.uuid4(), "sub": uuid.uuid4()}
        asked = [pool.first(prepared(CALLER), nobody) for _ in range(3)]
        answers = await asyncio.gather(*asked, return_exceptions=True)
        assert all(isinstance(answer, OperationalError) for answer in answers), answers
        assert time.monotonic() - began < 2  # the reads waiting for it fail with it
        await pool.close()

    asyncio.run(run())


@needs_postgresql
def test_a_read_connection_dropped_in_use_leaves_the_pool(
    client: TestClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection's server side goes while none is pinged: the request that meets a
    dead one answers 503, the next ones are served (the dead and the idle ones left)."""
    headers = auth_header(login(client, user.email, PASSWORD))
    with ThreadPoolExecutor(6) as executor:  # concurrent reads
        statuses = executor.map(lambda _: me_status(client, headers), range(60))
        assert set(statuses) == {200}

    async def two_connections() -> int:
        pool = reads.async_read_pool()  # the app loop's
        async with pool.connection(), pool.connection():
            pass
        return pool.idle

    assert client.portal is not None
    assert client.portal.call(two_connections) >= 2
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    outsider = create_engine(get_engine().url, poolclass=NullPool)
    with outsider.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    outsider.dispose()
    assert client.get(api("/users/me"), headers=headers).status_code == 503
    for _ in range(3):
        assert client.get(api("/users/me"), headers=headers).status_code == 200
    get_engine().dispose()  # the engine's own connections went too


def me_status(client: TestClient, headers: dict[str, str]) -> int:
    return client.get(api("/users/me"), headers=headers).status_code


def test_the_unfiltered_user_list_reads_on_the_loop_on_sqlite(
    client: TestClient, admin: User, thread_hops: list[object]
) -> None:
    """An index range and count(*) need no worker thread on SQLite; a filtered count or a
    substring search, which read many rows, take one hop (PostgreSQL: always one)."""
    headers = auth_header(login(client, admin.email, PASSWORD))
    thread_hops.clear()
    assert client.get(api("/users"), headers=headers).status_code == 200
    assert len(thread_hops) == (0 if get_settings().is_sqlite else 1)
    for query in ({"role": "admin"}, {"is_active": "true"}, {"q": "admin"}):
        thread_hops.clear()
        response = client.get(api("/users"), params=query, headers=headers)
        assert response.json()["total"] == 1
        assert len(thread_hops) == 1
