"""/auth: register, login, refresh, logout, logout-all."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from passlib.hash import bcrypt
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.models.audit import AuditEvent
from app.models.user import User
from tests.utils import (
    PASSWORD,
    api,
    assert_unauthorized,
    auth_header,
    login,
    make_user,
    refresh_tokens,
    register,
)

THREADS = 8
PASSWORD_72_BYTES = "é" * 36  # 72 bytes in UTF-8: the most bcrypt can take


def test_register_returns_user_without_secrets(client: TestClient) -> None:
    response = client.post(
        api("/auth/register"),
        json={"email": "Ada@Example.com", "password": "securepassword123", "full_name": "Ada"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["role"] == "user"
    assert not {"password", "hashed_password", "mfa_secret"} & body.keys()


def test_register_ignores_role_in_body(client: TestClient) -> None:
    response = client.post(
        api("/auth/register"),
        json={"email": "eve@example.com", "password": "securepassword123", "role": "admin"},
    )
    assert response.status_code == 201
    assert response.json()["role"] == "user"


def test_register_returns_the_documented_user_fields(client: TestClient) -> None:
    response = register(client, "grace@example.com", full_name="Grace")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "full_name",
        "role",
        "is_active",
        "is_verified",
        "mfa_enabled",
        "pending_email",
        "created_at",
        "updated_at",
    }
    assert body["full_name"] == "Grace"
    assert body["pending_email"] is None
    assert body["is_active"] is True
    assert body["is_verified"] is False
    assert body["mfa_enabled"] is False


def test_register_ignores_is_active_and_is_verified_in_body(client: TestClient) -> None:
    response = register(client, "mallory@example.com", is_active=False, is_verified=True)
    assert response.status_code == 201
    assert response.json()["is_active"] is True
    assert response.json()["is_verified"] is False


def test_register_with_a_taken_email_is_409(client: TestClient, user: User) -> None:
    response = register(client, user.email)
    assert response.status_code == 409


def test_register_treats_emails_case_insensitively(client: TestClient) -> None:
    assert register(client, "Ada@X.io").status_code == 201
    assert register(client, "ada@x.io").status_code == 409
    assert register(client, "ADA@X.IO").status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "not-an-email", "password": PASSWORD}, id="bad-email"),
        pytest.param({"password": PASSWORD}, id="no-email"),
        pytest.param({"email": "a@example.com"}, id="no-password"),
        pytest.param({"email": "a@example.com", "password": "short"}, id="short-password"),
        pytest.param({"email": "a@example.com", "password": "é" * 40}, id="password-over-72-bytes"),
        pytest.param(
            {"email": "a@example.com", "password": PASSWORD, "full_name": "x" * 256},
            id="full-name-too-long",
        ),
        pytest.param({"email": "a@example.com", "password": None}, id="null-password"),
    ],
)
def test_register_with_invalid_body_is_422(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post(api("/auth/register"), json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_register_password_shorter_than_configured_minimum_is_422(
    client: TestClient, settings: Callable[..., Settings]
) -> None:
    settings(PASSWORD_MIN_LENGTH=12)
    assert register(client, "a@example.com", password="elevenchars").status_code == 422
    assert register(client, "b@example.com", password="twelve-chars").status_code == 201


def test_register_accepts_a_password_of_exactly_72_bytes(client: TestClient) -> None:
    assert register(client, "max@example.com", password=PASSWORD_72_BYTES).status_code == 201
    assert login(client, "max@example.com", PASSWORD_72_BYTES)["access_token"]


def test_register_when_registration_is_closed_is_403(
    client: TestClient, settings: Callable[..., Settings], db: Session
) -> None:
    settings(USERS_OPEN_REGISTRATION=False)
    response = register(client, "late@example.com")
    assert response.status_code == 403
    assert db.exec(select(User).where(User.email == "late@example.com")).first() is None


def test_register_records_an_audit_event(client: TestClient, db: Session) -> None:
    user_id = register(client, "audited@example.com").json()["id"]
    events = db.exec(select(AuditEvent).where(AuditEvent.event == "user.registered")).all()
    assert [str(e.subject_id) for e in events] == [user_id]
    assert "password" not in str(events[0].detail)


def test_concurrent_registrations_of_one_email_create_one_account(
    client: TestClient, db: Session, settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_ENABLED=False)
    barrier = threading.Barrier(THREADS)

    def attempt(_: int) -> int:
        barrier.wait()
        return register(client, "race@example.com").status_code

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(attempt, range(THREADS)))

    assert sorted(statuses) == [201] + [409] * (THREADS - 1)
    assert len(db.exec(select(User).where(User.email == "race@example.com")).all()) == 1


def test_login_returns_a_token_pair(client: TestClient, user: User) -> None:
    response = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert client.get(api("/users/me"), headers=auth_header(body)).json()["email"] == user.email


def test_login_works_with_either_spelling_of_the_email(client: TestClient) -> None:
    assert register(client, "Ada@X.io").status_code == 201
    assert login(client, "ada@x.io")["access_token"]
    assert login(client, "Ada@X.io")["access_token"]
    assert login(client, "ADA@X.IO")["access_token"]


def test_login_refresh_logout(client: TestClient, user: User) -> None:
    tokens = login(client, user.email.upper())
    assert client.get(api("/users/me"), headers=auth_header(tokens)).json()["id"] == str(user.id)
    rotated = client.post(api("/auth/refresh"), json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()
    assert client.post(api("/auth/logout"), headers=auth_header(new)).status_code == 204
    after = client.get(api("/users/me"), headers=auth_header(new))
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"


def test_wrong_password_and_unknown_email_answer_alike(client: TestClient, user: User) -> None:
    wrong = client.post(api("/auth/login"), data={"username": user.email, "password": "nope-nope"})
    unknown = client.post(
        api("/auth/login"), data={"username": "ghost@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Incorrect email or password"}


def test_login_of_inactive_user_with_correct_password_is_403(
    client: TestClient, db: Session
) -> None:
    sleeper = make_user(db, email="sleeper@example.com", is_active=False)
    response = client.post(
        api("/auth/login"), data={"username": sleeper.email, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Inactive user"}


def test_login_of_inactive_user_with_wrong_password_is_401(client: TestClient, db: Session) -> None:
    sleeper = make_user(db, email="sleeper@example.com", is_active=False)
    response = client.post(
        api("/auth/login"), data={"username": sleeper.email, "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect email or password"}


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"username": "a@example.com"}, id="no-password"),
        pytest.param({"password": PASSWORD}, id="no-username"),
        pytest.param({}, id="empty"),
    ],
)
def test_login_with_missing_fields_is_422(client: TestClient, form: dict[str, str]) -> None:
    assert client.post(api("/auth/login"), data=form).status_code == 422


def test_login_with_json_instead_of_form_is_422(client: TestClient, user: User) -> None:
    response = client.post(api("/auth/login"), json={"username": user.email, "password": PASSWORD})
    assert response.status_code == 422


def test_login_never_matches_a_password_cut_at_72_bytes(client: TestClient, db: Session) -> None:
    make_user(db, email="long@example.com", password=PASSWORD_72_BYTES)
    response = client.post(
        api("/auth/login"),
        data={"username": "long@example.com", "password": PASSWORD_72_BYTES + "tail"},
    )
    assert response.status_code == 401


def test_login_upgrades_a_hash_of_another_bcrypt_cost(client: TestClient, db: Session) -> None:
    old = make_user(db, email="old@example.com")
    old.hashed_password = bcrypt.using(rounds=5, ident="2b").hash(PASSWORD)
    db.add(old)
    db.commit()
    assert old.hashed_password.startswith("$2b$05$")

    login(client, old.email)

    db.refresh(old)
    db.commit()
    assert old.hashed_password.startswith("$2b$04$")
    assert login(client, old.email)["access_token"]


def test_login_records_success_and_failure_audit_events(
    client: TestClient, user: User, db: Session
) -> None:
    client.post(api("/auth/login"), data={"username": user.email, "password": "wrong-password"})
    client.post(api("/auth/login"), data={"username": "nobody@example.com", "password": "x" * 9})
    login(client, user.email)
    events = db.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    logins = [(e.event, e.subject_id, e.detail) for e in events if e.event.startswith("auth.")]
    assert logins == [
        ("auth.login_failed", user.id, {}),
        ("auth.login_failed", None, {"email": "nobody@example.com"}),
        ("auth.login_succeeded", user.id, {}),
    ]


def test_refresh_with_missing_or_oversized_token_is_422(client: TestClient) -> None:
    assert client.post(api("/auth/refresh"), json={}).status_code == 422
    assert refresh_tokens(client, "x" * 5000).status_code == 422


def test_refresh_with_an_access_token_is_401(client: TestClient, user: User) -> None:
    tokens = login(client, user.email)
    assert_unauthorized(refresh_tokens(client, tokens["access_token"]))


def test_logout_ends_only_the_current_session(client: TestClient, user: User) -> None:
    first = login(client, user.email)
    second = login(client, user.email)

    assert client.post(api("/auth/logout"), headers=auth_header(first)).status_code == 204

    assert_unauthorized(client.get(api("/users/me"), headers=auth_header(first)))
    assert_unauthorized(refresh_tokens(client, first["refresh_token"]))
    assert client.get(api("/users/me"), headers=auth_header(second)).status_code == 200
    assert refresh_tokens(client, second["refresh_token"]).status_code == 200


def test_logout_twice_with_one_token_is_401(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    assert client.post(api("/auth/logout"), headers=user_headers).status_code == 204
    assert_unauthorized(client.post(api("/auth/logout"), headers=user_headers))


def test_logout_all_ends_every_session_at_once(client: TestClient, user: User) -> None:
    sessions = [login(client, user.email) for _ in range(3)]

    response = client.post(api("/auth/logout-all"), headers=auth_header(sessions[0]))
    assert response.status_code == 204

    for tokens in sessions:
        assert_unauthorized(client.get(api("/users/me"), headers=auth_header(tokens)))
        assert_unauthorized(refresh_tokens(client, tokens["refresh_token"]))
    assert login(client, user.email)["access_token"]  # a new login opens a new session


def test_logout_all_leaves_other_users_sessions_alone(
    client: TestClient, user_headers: dict[str, str], moderator_headers: dict[str, str]
) -> None:
    assert client.post(api("/auth/logout-all"), headers=user_headers).status_code == 204
    assert client.get(api("/users/me"), headers=moderator_headers).status_code == 200


@pytest.mark.parametrize("path", ["/auth/logout", "/auth/logout-all"])
def test_logout_without_a_token_is_401(client: TestClient, path: str) -> None:
    assert_unauthorized(client.post(api(path)))


@pytest.mark.parametrize(
    ("registered", "other_spelling"),
    [
        ("jose\u0301@example.com", "jos\u00e9@example.com"),  # decomposed, composed
        ("jos\u00e9@example.com", "JOSE\u0301@EXAMPLE.COM"),
        ("ada@example.com", "\uff41\uff44\uff41@\uff45xample.com"),  # full-width lookalike
        ("strasse@example.com", "Stra\u00dfe@Example.com"),  # case folding
    ],
)
def test_every_spelling_of_an_address_reaches_one_account(
    client: TestClient, registered: str, other_spelling: str
) -> None:
    assert register(client, registered).status_code == 201
    assert register(client, other_spelling).status_code == 409
    for spelling in (registered, other_spelling):  # with the very string it registered with
        assert "access_token" in login(client, spelling)
