"""Lockout per account and source address: no weapon against the owner, no oracle for an
attacker; wrong passwords asked again after login count too; per-address login budgets."""

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import app
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login

ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


def from_address(address: str) -> TestClient:
    """A client whose requests come from `address` (the session's app, no second lifespan)."""
    return TestClient(app, client=(address, 50000))


@pytest.fixture
def attacker() -> Iterator[TestClient]:
    yield from_address(ATTACKER)


@pytest.fixture
def owner() -> Iterator[TestClient]:
    yield from_address(OWNER)


@pytest.fixture(autouse=True)
def lockout_settings(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False, MAX_FAILED_LOGINS=3, ACCOUNT_LOCKOUT_THRESHOLD=7)


def attempt(client: TestClient, email: str, password: str = "wrong-password") -> tuple[int, str]:
    response = client.post(api("/auth/login"), data={"username": email, "password": password})
    return response.status_code, response.headers.get("retry-after", "")


def test_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(
    attacker: TestClient, owner: TestClient, user: User
) -> None:
    assert [attempt(attacker, user.email)[0] for _ in range(3)] == [401, 401, 401]
    locked = attempt(attacker, user.email, PASSWORD)  # even the right password, from there
    assert locked[0] == 429 and int(locked[1]) > 0
    assert attempt(owner, user.email, PASSWORD)[0] == 200


def test_failures_from_all_addresses_together_lock_the_account_for_everyone(
    owner: TestClient, user: User
) -> None:
    for n in range(7):  # 7 addresses, one failure each: no address reaches its own limit
        assert attempt(from_address(f"192.0.2.{n}"), user.email)[0] == 401
    status, retry_after = attempt(owner, user.email, PASSWORD)
    assert status == 429 and int(retry_after) > 0


def test_a_completed_login_forgets_the_address_failures(owner: TestClient, user: User) -> None:
    for _ in range(2):
        attempt(owner, user.email)
    assert attempt(owner, user.email, PASSWORD)[0] == 200
    assert [attempt(owner, user.email)[0] for _ in range(3)] == [401, 401, 401]
    assert attempt(owner, user.email, PASSWORD)[0] == 429


def test_an_unknown_email_is_counted_and_answered_exactly_like_a_real_one(
    attacker: TestClient, user: User
) -> None:
    def run(email: str) -> list[tuple[int, bool, str]]:
        answers = []
        for _ in range(5):
            response = attacker.post(
                api("/auth/login"), data={"username": email, "password": "wrong-password"}
            )
            has_retry = "retry-after" in response.headers
            answers.append((response.status_code, has_retry, response.json()["detail"]))
        return answers

    real, unknown = run(user.email), run("nobody-here@example.com")
    assert real == unknown
    assert [status for status, _, _ in real] == [401, 401, 401, 429, 429]


def test_an_admin_unlock_lifts_every_address_lock(
    attacker: TestClient, user: User, admin_headers: dict[str, str], client: TestClient
) -> None:
    for _ in range(3):
        attempt(attacker, user.email)
    assert attempt(attacker, user.email, PASSWORD)[0] == 429
    assert client.post(api(f"/users/{user.id}/unlock"), headers=admin_headers).status_code == 204
    assert attempt(attacker, user.email, PASSWORD)[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/users/me/password", {"current_password": "guess", "new_password": "x" * 12}),
        ("PATCH", "/users/me", {"email": "thief@evil.io", "current_password": "guess"}),
        ("POST", "/users/me/mfa/totp", {"password": "guess"}),
    ],
)
def test_wrong_passwords_asked_again_count_toward_the_lockout(
    owner: TestClient, user: User, method: str, path: str, body: dict[str, str]
) -> None:
    """A stolen access token is no password oracle: MAX_FAILED_LOGINS guesses, then 429."""
    headers = auth_header(login(owner, user.email))
    statuses = [
        owner.request(method, api(path), headers=headers, json=body).status_code for _ in range(4)
    ]
    assert statuses == [400, 400, 400, 429]
    assert attempt(owner, user.email, PASSWORD)[0] == 429  # and the login from there


def test_spraying_many_emails_from_one_address_hits_its_budget(
    attacker: TestClient, settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_ENABLED=True, RATE_LIMIT_LOGIN_IP="5/minute", RATE_LIMIT_LOGIN="5/minute")
    statuses = [attempt(attacker, f"victim{n}@example.com")[0] for n in range(7)]
    assert statuses == [401] * 5 + [429, 429]
    assert attempt(from_address(OWNER), "victim0@example.com")[0] == 401  # another address
