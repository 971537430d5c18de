"""Rate limits and lockout: thresholds, Retry-After, shared state, unlock by API and CLI."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models.lockout import LoginFailure
from app.models.user import User
from tests.utils import PASSWORD, api


def _login(client: TestClient, email: str, password: str) -> int:
    response = client.post(api("/auth/login"), data={"username": email, "password": password})
    return response.status_code


def test_lockout_after_max_failed_logins(
    client: TestClient, user: User, settings: Callable[..., object], db: Session
) -> None:
    settings(MAX_FAILED_LOGINS=3, LOCKOUT_MINUTES=5, RATE_LIMIT_ENABLED=False)
    assert [_login(client, user.email, "wrong-password") for _ in range(3)] == [401, 401, 401]
    locked = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 300
    [row] = db.exec(select(LoginFailure).where(LoginFailure.address == "testclient")).all()
    assert row.locked_until is not None and row.failures == 0  # the count restarts


def test_unlock_by_admin_api(
    client: TestClient,
    user: User,
    admin_headers: dict[str, str],
    settings: Callable[..., object],
) -> None:
    settings(MAX_FAILED_LOGINS=2, RATE_LIMIT_ENABLED=False)
    for _ in range(2):
        _login(client, user.email, "wrong-password")
    assert _login(client, user.email, PASSWORD) == 429
    response = client.post(api(f"/users/{user.id}/unlock"), headers=admin_headers)
    assert response.status_code == 204
    assert _login(client, user.email, PASSWORD) == 200
    events = client.get(
        api("/audit-events"), params={"subject_id": str(user.id)}, headers=admin_headers
    ).json()["items"]
    names = [e["event"] for e in events]
    assert "auth.locked_out" in names and "user.unlocked" in names


def test_unlock_by_cli(client: TestClient, user: User, settings: Callable[..., object]) -> None:
    settings(MAX_FAILED_LOGINS=1, RATE_LIMIT_ENABLED=False)
    _login(client, user.email, "wrong-password")
    assert _login(client, user.email, PASSWORD) == 429
    manage = Path(sys.executable).parent / "manage"
    result = subprocess.run(
        [str(manage), "unlock", user.email], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert _login(client, user.email, PASSWORD) == 200


def test_login_rate_limit_per_ip_and_email(
    client: TestClient, user: User, settings: Callable[..., object]
) -> None:
    settings(RATE_LIMIT_LOGIN="3/minute", MAX_FAILED_LOGINS=100)
    statuses = [_login(client, user.email, "wrong-password") for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # another email from the same client still gets its own count
    assert _login(client, "other@example.com", "wrong-password") == 401


def test_register_rate_limit_per_ip(client: TestClient, settings: Callable[..., object]) -> None:
    settings(RATE_LIMIT_REGISTER="2/hour")
    statuses = [
        client.post(
            api("/auth/register"), json={"email": f"r{i}@example.com", "password": PASSWORD}
        ).status_code
        for i in range(3)
    ]
    assert statuses == [201, 201, 429]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (run in .ci/run)")
def test_redis_count_is_shared_with_another_process(
    client: TestClient, user: User, settings: Callable[..., object]
) -> None:
    """Another worker or host (here: another process) adds to the same login count."""
    settings(RATE_LIMIT_LOGIN="3/minute", MAX_FAILED_LOGINS=100)
    assert _login(client, user.email, "wrong-password") == 401
    other_worker = (
        "from app.core import ratelimit\n"
        "for _ in range(2):\n"
        f"    ratelimit.hit('login', '3/minute', 'testclient', '{user.email}')\n"
    )
    subprocess.run([sys.executable, "-c", other_worker], check=True)
    assert _login(client, user.email, PASSWORD) == 429
