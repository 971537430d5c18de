"""Several instances on one PostgreSQL database and one Redis: what one instance does, the
other sees on its next request; limits, lockouts and refresh rotation are shared.

Two real servers (`manage serve`, two uvicorn workers each) on different ports stand for two
hosts. Every check at "the other" instance is made several times over fresh connections, so
that both of its workers answer.
"""

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, func, select

from app.core.config import get_settings
from app.core.permissions import Role
from app.models.audit import AuditEvent
from app.models.session import AuthSession
from app.models.user import User
from tests.utils import PASSWORD, make_user
from tests.utils.server import running_servers

pytestmark = pytest.mark.skipif(
    get_settings().is_sqlite or not os.environ.get("REDIS_URL"),
    reason="needs PostgreSQL (TEST_DATABASE_URL) and Redis (REDIS_URL), as .ci/run provides",
)

API = get_settings().API_V1_STR
TRIES = 4  # requests per check at the other instance, each on a new connection
RACERS = 8  # concurrent refreshes of one token, spread over both instances
INSTANCE_ENV = {
    "RATE_LIMIT_LOGIN": "4/minute",
    "MAX_FAILED_LOGINS": "3",
    "LOCKOUT_MINUTES": "5",
    "REFRESH_REUSE_GRACE_SECONDS": "0",
}


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two hosts, A and B, on the suite's PostgreSQL database and Redis."""
    log_dir = tmp_path_factory.mktemp("scale-out")
    with running_servers([INSTANCE_ENV, INSTANCE_ENV], workers=2, log_dir=log_dir) as bases:
        yield bases[0], bases[1]


def call(base: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
    """One request on a new connection (any worker of the instance may take it)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{base}{API}{path}", headers=headers, timeout=30, **kwargs)


def login(base: str, email: str, password: str = PASSWORD) -> httpx.Response:
    return call(base, "POST", "/auth/login", data={"username": email, "password": password})


def tokens_at(base: str, email: str) -> dict[str, str]:
    response = login(base, email)
    assert response.status_code == 200, response.text
    return dict(response.json())


def statuses(base: str, method: str, path: str, token: str) -> list[int]:
    return [call(base, method, path, token).status_code for _ in range(TRIES)]


def test_logout_at_one_instance_ends_the_session_at_the_other(
    instances: tuple[str, str], db: Session
) -> None:
    a, b = instances
    user = make_user(db)
    access = tokens_at(a, user.email)["access_token"]
    assert statuses(b, "GET", "/users/me", access) == [200] * TRIES
    assert call(a, "POST", "/auth/logout", access).status_code == 204
    assert statuses(b, "GET", "/users/me", access) == [401] * TRIES


def test_role_change_at_one_instance_applies_at_the_other(
    instances: tuple[str, str], db: Session
) -> None:
    a, b = instances
    admin = make_user(db, role=Role.ADMIN)
    user = make_user(db)
    admin_token = tokens_at(a, admin.email)["access_token"]
    user_token = tokens_at(b, user.email)["access_token"]
    assert statuses(b, "GET", "/users", user_token) == [403] * TRIES

    promote = call(a, "PATCH", f"/users/{user.id}", admin_token, json={"role": "moderator"})
    assert promote.status_code == 200, promote.text
    assert statuses(b, "GET", "/users", user_token) == [200] * TRIES

    demote = call(a, "PATCH", f"/users/{user.id}", admin_token, json={"role": "user"})
    assert demote.status_code == 200, demote.text
    assert statuses(b, "GET", "/users", user_token) == [403] * TRIES
    assert call(b, "GET", "/users/me", user_token).json()["role"] == "user"


def test_deactivation_at_one_instance_applies_at_the_other(
    instances: tuple[str, str], db: Session
) -> None:
    a, b = instances
    admin = make_user(db, role=Role.ADMIN)
    user = make_user(db)
    admin_token = tokens_at(a, admin.email)["access_token"]
    user_tokens = tokens_at(b, user.email)
    assert statuses(b, "GET", "/users/me", user_tokens["access_token"]) == [200] * TRIES

    response = call(a, "PATCH", f"/users/{user.id}", admin_token, json={"is_active": False})
    assert response.status_code == 200, response.text
    assert statuses(b, "GET", "/users/me", user_tokens["access_token"]) == [401] * TRIES
    refresh = call(b, "POST", "/auth/refresh", json={"refresh_token": user_tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert login(b, user.email).status_code == 403


def test_deletion_at_one_instance_applies_at_the_other(
    instances: tuple[str, str], db: Session
) -> None:
    a, b = instances
    admin = make_user(db, role=Role.ADMIN)
    user = make_user(db)
    admin_token = tokens_at(a, admin.email)["access_token"]
    user_token = tokens_at(b, user.email)["access_token"]
    assert statuses(b, "GET", "/users/me", user_token) == [200] * TRIES

    assert call(a, "DELETE", f"/users/{user.id}", admin_token).status_code == 204
    assert statuses(b, "GET", "/users/me", user_token) == [401] * TRIES
    assert login(b, user.email).status_code == 401


def test_login_rate_limit_counts_across_instances(instances: tuple[str, str], db: Session) -> None:
    """RATE_LIMIT_LOGIN is 4/minute: four logins spread over two hosts (four workers) use it
    up, so the fifth is refused wherever it lands."""
    a, b = instances
    user = make_user(db)
    assert [login(base, user.email).status_code for base in (a, b, a, b)] == [200] * 4
    for base in (a, b):
        refused = login(base, user.email)
        assert refused.status_code == 429
        assert refused.json()["detail"] == "Too many attempts, try again later"
        assert int(refused.headers["retry-after"]) >= 1


def test_lockout_counts_failures_across_instances(instances: tuple[str, str], db: Session) -> None:
    """MAX_FAILED_LOGINS is 3: wrong passwords at A, B and A lock the account at B too."""
    a, b = instances
    user = make_user(db)
    failures = [login(base, user.email, "wrong-password").status_code for base in (a, b, a)]
    assert failures == [401, 401, 401]
    locked = login(b, user.email)  # the right password, at the other host
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Account temporarily locked")
    assert int(locked.headers["retry-after"]) >= 1
    locked_out = db.exec(
        select(func.count())
        .select_from(AuditEvent)
        .where(col(AuditEvent.event) == "auth.locked_out", col(AuditEvent.subject_id) == user.id)
    ).one()
    assert locked_out == 1


def test_refresh_token_rotated_at_one_instance_is_spent_at_the_other(
    instances: tuple[str, str], db: Session
) -> None:
    a, b = instances
    user = make_user(db)
    first = tokens_at(a, user.email)
    rotated = call(a, "POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()

    reuse = call(b, "POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    # reuse revokes the whole session, at both hosts
    assert statuses(a, "GET", "/users/me", second["access_token"]) == [401] * TRIES
    again = call(a, "POST", "/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401
    assert _reuse_events(db, user) == 1


def test_concurrent_refreshes_over_both_instances_have_one_winner(
    instances: tuple[str, str], db: Session
) -> None:
    """RACERS requests present one refresh token at once, half at A and half at B: exactly
    one rotates the session; the others are reuse, which revokes it."""
    a, b = instances
    user = make_user(db)
    for _round in range(3):
        pair = tokens_at(a, user.email)
        results = _race_refresh(pair["refresh_token"], [a, b] * (RACERS // 2))
        assert sorted(results) == [200] + [401] * (RACERS - 1), results
    live = db.exec(
        select(func.count())
        .select_from(AuthSession)
        .where(col(AuthSession.user_id) == user.id, col(AuthSession.revoked_at).is_(None))
    ).one()
    assert live == 0  # each race's losers revoked its session
    assert _reuse_events(db, user) == 3


def _race_refresh(refresh_token: str, bases: list[str]) -> list[int]:
    barrier = threading.Barrier(len(bases), timeout=30)
    results: list[int] = [0] * len(bases)

    def racer(index: int, base: str) -> None:
        with httpx.Client(base_url=f"{base}{API}", timeout=30) as client:
            client.get("/openapi.json")  # connect first, so the refreshes leave together
            barrier.wait()
            response = client.post("/auth/refresh", json={"refresh_token": refresh_token})
            results[index] = response.status_code

    threads = [
        threading.Thread(target=racer, args=(i, base), daemon=True) for i, base in enumerate(bases)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _reuse_events(db: Session, user: User) -> int:
    return db.exec(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            col(AuditEvent.event) == "auth.refresh_reuse_detected",
            col(AuditEvent.subject_id) == user.id,
        )
    ).one()


def test_hosts_starting_together_on_an_empty_database_take_turns(tmp_path: Path) -> None:
    """Two hosts booting at the same moment on a new database: both migrate it (one after
    the other) and come up, with one first admin between them."""
    url = make_url(get_settings().DATABASE_URL)
    name = f"{url.database}_startup_{uuid.uuid4().hex[:8]}"
    maintenance = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with maintenance.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    fresh_url = url.set(database=name).render_as_string(hide_password=False)
    try:
        env = {"DATABASE_URL": fresh_url}
        with running_servers([env, env], log_dir=tmp_path) as bases:
            for base in bases:
                ready = httpx.get(f"{base}/health/ready", timeout=30)
                assert ready.status_code == 200, ready.text
        fresh = create_engine(fresh_url)
        with fresh.connect() as connection:
            users = connection.execute(text('SELECT email FROM "user"')).all()
            versions = connection.execute(text("SELECT count(*) FROM alembic_version")).scalar()
        fresh.dispose()
        assert [row.email for row in users] == [get_settings().FIRST_SUPERUSER_EMAIL]
        assert versions == 1
    finally:
        with maintenance.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        maintenance.dispose()
