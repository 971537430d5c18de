"""Outages: the database or Redis goes away under a running server, and comes back.

The tests put a TCP proxy of their own (tests/utils/proxy.py) between a real server and
PostgreSQL or Redis, and cut it. While PostgreSQL is away: /health stays 200, /health/ready
answers 503 naming the database, requests that need the database answer 503 (never 500, no
traceback); when it is back, the same process serves again (the pool pings a connection
idle for over a second before handing it out, and empties itself at a dropped one), and a
registration in flight at the cut exists whole or not at all. While Redis is away: the
service keeps answering, rate limits fail open or closed as RATE_LIMIT_FAIL_OPEN says (and
say so in the log), and /health/ready names Redis.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, func, select

from app import db
from app.auth.tokens import start_session
from app.core.config import get_settings
from app.crud.audit import SYSTEM
from app.db import get_engine
from app.models.audit import AuditEvent
from app.models.user import User
from tests.utils import PASSWORD, auth_header, login, make_user, random_email
from tests.utils.proxy import TcpProxy, tcp_proxy
from tests.utils.server import free_port, running_server

API = get_settings().API_V1_STR
needs_postgresql = pytest.mark.skipif(
    get_settings().is_sqlite,
    reason="needs PostgreSQL (TEST_DATABASE_URL), as .ci/run provides: the proxy cuts a"
    " database server's connections",
)
needs_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL), as .ci/run provides"
)


class Client:
    """Requests to one server; `token` is sent as a bearer token when set."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = path if path.startswith("/health") or path == "/metrics" else f"{API}{path}"
        return httpx.request(method, f"{self.base}{url}", headers=headers, timeout=30, **kwargs)

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self("POST", "/auth/login", data={"username": email, "password": password})

    def register(self, email: str) -> httpx.Response:
        return self("POST", "/auth/register", json={"email": email, "password": PASSWORD})

    def started_at(self) -> str:
        """The process's start time, from /metrics: unchanged means not restarted."""
        found = re.search(r"^process_start_time_seconds (\S+)$", self("GET", "/metrics").text, re.M)
        assert found, "no process_start_time_seconds in /metrics"
        return found.group(1)


def assert_unavailable(response: httpx.Response) -> None:
    """A clean 503: JSON detail, Retry-After, nothing of the failure's internals."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"detail"}
    assert "retry-after" in response.headers
    for leak in ("Traceback", "psycopg", "sqlalchemy", "OperationalError", "127.0.0.1"):
        assert leak not in response.text


# -- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    url = make_url(get_settings().DATABASE_URL)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


def through(proxy: TcpProxy) -> str:
    """The suite's database URL, by way of the proxy."""
    url = make_url(get_settings().DATABASE_URL).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


@needs_postgresql
def test_database_outage_answers_503_and_recovers_without_restart(
    pg_proxy: TcpProxy, db: Session, tmp_path: Path
) -> None:
    user = make_user(db)
    log = tmp_path / "server.log"
    with running_server({"DATABASE_URL": through(pg_proxy)}, log_path=log) as base:
        client = Client(base)
        login = client.login(user.email)
        assert login.status_code == 200, login.text
        client.token = login.json()["access_token"]
        refresh_token = login.json()["refresh_token"]
        started_at = client.started_at()
        assert client("GET", "/health/ready").status_code == 200

        pg_proxy.cut()
        assert client("GET", "/health").json() == {"status": "ok"}
        ready = client("GET", "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] != "ok"
        assert ready.json()["database"] == "unreachable"
        assert_unavailable(client("GET", "/users/me"))
        assert_unavailable(client("PATCH", "/users/me", json={"full_name": "During the cut"}))
        assert_unavailable(client("GET", "/users"))
        assert_unavailable(client("POST", "/auth/refresh", json={"refresh_token": refresh_token}))
        assert_unavailable(client("POST", "/auth/logout"))
        anonymous = Client(base)
        assert_unavailable(anonymous.login(user.email))
        assert_unavailable(anonymous.register(random_email()))

        pg_proxy.restore()
        ready = client("GET", "/health/ready")
        assert ready.status_code == 200, ready.text
        me = client("GET", "/users/me")
        assert me.status_code == 200, me.text
        assert me.json()["full_name"] != "During the cut"
        assert client("POST", "/auth/refresh", json={"refresh_token": refresh_token}).is_success
        assert anonymous.register(random_email()).status_code == 201
        assert client.started_at() == started_at  # the same process: no restart

    text = log.read_text(errors="replace")
    assert "database unavailable" in text
    assert "Traceback" not in text


@needs_postgresql
@pytest.mark.parametrize(
    ("patterns", "forward"),
    [
        ((b'INSERT INTO "user"', b"INSERT INTO audit_event"), False),
        ((b'INSERT INTO "user"', b"INSERT INTO audit_event", b"COMMIT"), True),
    ],
    ids=["cut-before-commit", "cut-at-commit"],
)
def test_registration_in_flight_at_the_cut_is_whole_or_absent(
    pg_proxy: TcpProxy,
    db: Session,
    tmp_path: Path,
    patterns: tuple[bytes, ...],
    forward: bool,
) -> None:
    """The proxy cuts the database while a registration's transaction is on the wire: after
    the user row was sent and its audit event was not (nothing may be left), or with its
    COMMIT sent but its answer lost (the row and its event may exist, but only together)."""
    email = random_email()
    with running_server({"DATABASE_URL": through(pg_proxy)}, log_path=tmp_path / "log") as base:
        client = Client(base)
        pg_proxy.cut_on(*patterns, forward=forward)
        assert_unavailable(client.register(email))
        assert pg_proxy.triggered.wait(10), "the armed cut never fired"
        pg_proxy.restore()

        users = db.exec(select(User).where(col(User.email) == email)).all()
        events = db.exec(
            select(func.count())
            .select_from(AuditEvent)
            .where(col(AuditEvent.event) == "user.registered")
        ).one()
        if forward:
            assert len(users) == events <= 1  # the user with its event, or neither
        else:
            assert (len(users), events) == (0, 0)

        # recovered: the retry is refused as a duplicate exactly when the first one landed
        retry = client.register(email)
        assert retry.status_code == (409 if users else 201), retry.text
        assert client.login(email).status_code == 200
        assert client("GET", "/health/ready").status_code == 200


# -- Redis ------------------------------------------------------------------------------


def _session_token(db: Session, user: User) -> str:
    """An access token made without logging in (logins need the rate limiter)."""
    pair = start_session(db, user=user, actor=SYSTEM)
    db.commit()
    return pair.access_token


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_redis_unreachable_keeps_the_service_answering(
    fail_open: bool, db: Session, tmp_path: Path
) -> None:
    """REDIS_URL names a port where nothing listens: readiness names Redis, and rate-limited
    routes let requests through (RATE_LIMIT_FAIL_OPEN=true, the default) or answer 503."""
    user = make_user(db)
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    if not fail_open:  # failing open is the default
        env["RATE_LIMIT_FAIL_OPEN"] = "false"
    log = tmp_path / "server.log"
    with running_server(env, log_path=log) as base:
        client = Client(base)
        assert client("GET", "/health").status_code == 200
        ready = client("GET", "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["redis"] == "unreachable"
        assert ready.json()["database"] == "ok"

        login = client.login(user.email)
        register = client.register(random_email())
        if fail_open:
            assert login.status_code == 200, login.text
            assert register.status_code == 201, register.text
        else:
            assert_unavailable(login)
            assert_unavailable(register)
        client.token = _session_token(db, user)
        assert client("GET", "/users/me").status_code == 200  # no rate limit: no Redis needed

    text = log.read_text(errors="replace")
    outcome = "open" if fail_open else "closed"
    assert f"rate limit storage unavailable (ConnectionError); failing {outcome}" in text
    assert "Traceback" not in text


@needs_redis
def test_redis_outage_and_recovery(db: Session, tmp_path: Path) -> None:
    """Redis cut under a running server: counts stop (fail open) and resume when it is back."""
    user = make_user(db)
    redis_url = make_url(os.environ["REDIS_URL"])
    with tcp_proxy(redis_url.host or "127.0.0.1", redis_url.port or 6379) as proxy:
        proxied = redis_url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        env = {"REDIS_URL": proxied, "RATE_LIMIT_LOGIN": "3/minute", "MAX_FAILED_LOGINS": "100"}
        with running_server(env, log_path=tmp_path / "server.log") as base:
            client = Client(base)
            ready = client("GET", "/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["redis"] == "ok"

            proxy.cut()
            assert client("GET", "/health").status_code == 200
            ready = client("GET", "/health/ready")
            assert ready.status_code == 503
            assert (ready.json()["redis"], ready.json()["database"]) == ("unreachable", "ok")
            assert [client.login(user.email).status_code for _ in range(4)] == [200] * 4

            proxy.restore()
            assert client("GET", "/health/ready").status_code == 200
            statuses = [client.login(user.email).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]  # counting again, from zero

        text = (tmp_path / "server.log").read_text(errors="replace")
        assert "failing open" in text


@needs_postgresql
def test_a_pooled_connection_cut_while_idle_is_replaced_unseen(
    client: TestClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server side of every pooled connection goes (a database restart, a firewall's
    idle timeout); the next requests are served, none answers 503."""
    headers = auth_header(login(client, user.email, PASSWORD))
    assert client.get(f"{API}/users/me", headers=headers).status_code == 200
    outsider = create_engine(get_engine().url, poolclass=NullPool)  # not one of the pool's
    with outsider.connect() as connection:
        cut = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    assert cut >= 1
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every connection has been idle since
    for _ in range(3):
        assert client.get(f"{API}/users/me", headers=headers).status_code == 200
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    get_engine().dispose()  # dead connections not handed out yet, before the cleanup's turn
