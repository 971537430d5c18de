"""Credential versions: a reset, a password change or an admin-set password ends every session
and every login still in flight; a cost upgrade never writes over a newer hash.

The interleavings an attacker aims for are made certain with a pause after the login's hash
check; the free race is then repeated a bounded number of times."""

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from passlib.hash import bcrypt
from sqlalchemy import update
from sqlmodel import Session, col

from app.auth import login as login_flow
from app.core.config import Settings
from app.crud import action_tokens, sessions
from app.db import get_engine
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login, make_user
from tests.utils.account import fresh_user

NEW_PASSWORD = "a-brand-new-password"
ROUNDS = 10


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


@pytest.fixture
def pause_after_check(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Logins stop right after their password check (`checked` is set) until `resume`."""
    checked, resume = threading.Event(), threading.Event()
    real = login_flow.verify_password

    async def paused(password: str, hashed: str | None) -> tuple[bool, str | None]:
        result = await real(password, hashed)
        checked.set()
        await asyncio.to_thread(resume.wait, 10)
        return result

    monkeypatch.setattr(login_flow, "verify_password", paused)
    return checked, resume


def old_cost_hash(password: str) -> str:
    """A hash of another cost than the configured one: the next login upgrades it."""
    return bcrypt.using(rounds=5).hash(password)


@pytest.fixture
def racer(db: Session) -> User:
    return make_user(db, email="racer@example.com")


def with_old_cost(user: User) -> None:
    with Session(get_engine()) as session:
        session.exec(
            update(User)
            .where(col(User.id) == user.id)
            .values(hashed_password=old_cost_hash(PASSWORD))
        )
        session.commit()


def reset_token(user: User) -> str:
    with Session(get_engine()) as session:
        token = action_tokens.issue(
            session,
            user_id=user.id,
            purpose=TokenPurpose.RESET_PASSWORD,
            expires_at=utcnow() + timedelta(minutes=5),
            email=user.email,
        )
        session.commit()
        return token


def live_sessions(user: User) -> int:
    with Session(get_engine()) as session:
        return len(sessions.live_sessions(session, user.id))


def post_login(client: TestClient, email: str, password: str) -> int:
    response = client.post(api("/auth/login"), data={"username": email, "password": password})
    return response.status_code


def password_works(client: TestClient, email: str, password: str) -> bool:
    return post_login(client, email, password) == 200


def login_in_flight(
    client: TestClient,
    pause: tuple[threading.Event, threading.Event],
    change: Callable[[], int],
    *,
    email: str = "racer@example.com",
) -> int:
    """Start a login with the current password, make `change` (expecting its status) land
    between its hash check and its end, then let the login finish: its status."""
    checked, resume = pause
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(post_login, client, email, PASSWORD)
        assert checked.wait(10), "the login never reached its hash check"
        change()
        resume.set()
        return in_flight.result(timeout=10)


def test_a_login_in_flight_when_the_password_is_reset_gets_no_session(
    client: TestClient, racer: User, pause_after_check: tuple[threading.Event, threading.Event]
) -> None:
    with_old_cost(racer)  # the login would also upgrade the hash of the old password
    token = reset_token(racer)

    def reset() -> int:
        body = {"token": token, "new_password": NEW_PASSWORD}
        status = client.post(api("/auth/reset-password"), json=body).status_code
        assert status == 204
        return status

    assert login_in_flight(client, pause_after_check, reset) == 401
    assert live_sessions(racer) == 0
    assert not password_works(client, racer.email, PASSWORD)  # no upgrade wrote it back
    assert password_works(client, racer.email, NEW_PASSWORD)
    assert bcrypt.verify(NEW_PASSWORD, fresh_user(racer.email).hashed_password)


def test_a_login_in_flight_when_the_password_is_changed_gets_no_session(
    client: TestClient, racer: User, pause_after_check: tuple[threading.Event, threading.Event]
) -> None:
    checked, resume = pause_after_check
    resume.set()
    headers = auth_header(login(client, racer.email))  # the owner's own session
    resume.clear()
    checked.clear()
    with_old_cost(racer)

    def change() -> int:
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        status = client.post(api("/users/me/password"), headers=headers, json=body).status_code
        assert status == 204
        return status

    assert login_in_flight(client, pause_after_check, change) == 401
    assert live_sessions(racer) == 1  # the owner's, kept by the change; no other
    assert not password_works(client, racer.email, PASSWORD)
    assert password_works(client, racer.email, NEW_PASSWORD)


def test_a_login_in_flight_when_an_admin_sets_the_password_gets_no_session(
    client: TestClient,
    racer: User,
    admin_headers: dict[str, str],
    pause_after_check: tuple[threading.Event, threading.Event],
) -> None:
    def admin_sets() -> int:
        body = {"password": NEW_PASSWORD}
        response = client.patch(api(f"/users/{racer.id}"), headers=admin_headers, json=body)
        assert response.status_code == 200
        return response.status_code

    assert login_in_flight(client, pause_after_check, admin_sets) == 401
    assert live_sessions(racer) == 0
    assert password_works(client, racer.email, NEW_PASSWORD)


def test_an_mfa_token_from_before_a_reset_never_logs_in(
    client: TestClient, racer: User, user_factory: Callable[..., User]
) -> None:
    headers = auth_header(login(client, racer.email))
    setup = client.post(api("/users/me/mfa/totp"), headers=headers, json={"password": PASSWORD})
    totp = pyotp.TOTP(setup.json()["secret"])
    confirm = client.post(
        api("/users/me/mfa/totp/confirm"), headers=headers, json={"code": totp.now()}
    )
    assert confirm.status_code == 200
    recovery_code = confirm.json()["recovery_codes"][0]
    response = client.post(api("/auth/login"), data={"username": racer.email, "password": PASSWORD})
    mfa_token = response.json()["mfa_token"]

    body = {"token": reset_token(racer), "new_password": NEW_PASSWORD}
    assert client.post(api("/auth/reset-password"), json=body).status_code == 204
    second = client.post(
        api("/auth/login/mfa"), json={"mfa_token": mfa_token, "code": recovery_code}
    )
    assert second.status_code == 401
    assert live_sessions(racer) == 0


def test_an_mfa_challenge_issued_under_old_credentials_is_refused(
    client: TestClient, racer: User, db: Session
) -> None:
    """Even one that no reset spent (issued by a login in flight): its version decides."""
    headers = auth_header(login(client, racer.email))
    setup = client.post(api("/users/me/mfa/totp"), headers=headers, json={"password": PASSWORD})
    totp = pyotp.TOTP(setup.json()["secret"])
    client.post(api("/users/me/mfa/totp/confirm"), headers=headers, json={"code": totp.now()})
    codes_left = client.post(
        api("/auth/login"), data={"username": racer.email, "password": PASSWORD}
    )
    mfa_token = codes_left.json()["mfa_token"]
    db.exec(
        update(User)
        .where(col(User.id) == racer.id)
        .values(credentials_version=col(User.credentials_version) + 1)
    )
    db.commit()
    code = pyotp.TOTP(setup.json()["secret"]).at(utcnow() + timedelta(seconds=30))
    second = client.post(api("/auth/login/mfa"), json={"mfa_token": mfa_token, "code": code})
    assert second.status_code == 401


def test_reset_racing_logins_never_leaves_a_session_or_the_old_password(
    client: TestClient, racer: User
) -> None:
    """The free race, repeated: whoever wins, once both are done no session lives and only
    the new password works."""
    for round_ in range(ROUNDS):
        with_old_cost(racer)
        new_password = f"{NEW_PASSWORD}-{round_}"
        body = {"token": reset_token(racer), "new_password": new_password}
        barrier = threading.Barrier(3)

        def reset(barrier: threading.Barrier = barrier, body: dict[str, str] = body) -> int:
            barrier.wait()
            return client.post(api("/auth/reset-password"), json=body).status_code

        def old_login(barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return post_login(client, racer.email, PASSWORD)

        with ThreadPoolExecutor(3) as pool:
            results = [pool.submit(f) for f in (reset, old_login, old_login)]
            statuses = [r.result(timeout=30) for r in results]
        assert statuses[0] == 204, statuses
        assert set(statuses[1:]) <= {200, 401}, statuses
        assert live_sessions(racer) == 0, f"round {round_}: {statuses}"
        stored = fresh_user(racer.email).hashed_password
        assert bcrypt.verify(new_password, stored) and not bcrypt.verify(PASSWORD, stored)
        with Session(get_engine()) as session:  # back to the old password for the next round
            session.exec(
                update(User)
                .where(col(User.id) == racer.id)
                .values(hashed_password=old_cost_hash(PASSWORD))
            )
            session.commit()
