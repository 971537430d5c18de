"""The per-request check (GET /users/me and every authenticated route): one read, no write,
no worker-thread hop on SQLite, and nothing cached, so changes show on the very next request."""

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import column, event, table, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from app.auth.tokens import CALLER
from app.core.permissions import Role
from app.db import PreparedRead, get_engine, prepared, read_connection, reads_on_event_loop
from app.models.session import AuthSession
from app.models.user import USER_READ_FIELDS, User
from tests.utils import PASSWORD, api, assert_unauthorized, auth_header, login


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement sent to the database while the test runs: through the engines,
    and the prepared reads that go to the driver's cursor directly."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    first = PreparedRead.first

    def recorded_first(self: PreparedRead, *args: Any) -> Any:
        sent.append(self.sql)
        return first(self, *args)

    monkeypatch.setattr(PreparedRead, "first", recorded_first)

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
    assert len(thread_hops) == (0 if reads_on_event_loop() else 1)


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


@pytest.mark.skipif(not reads_on_event_loop(), reason="SQLite's reader connections")
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
    assert row == expected
    assert [type(value) for value in row] == [type(value) for value in expected]
    assert row[USER_READ_FIELDS.index("created_at")].tzinfo is not None
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
