"""Email changes: pending until the new address confirms, the password asked, rate limited,
and links bound to the address they were mailed to, also when raced."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.crud import action_tokens
from app.db import get_engine
from app.models.action_token import TokenPurpose
from app.models.common import utcnow
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import events, fresh_user, register

ROUNDS = 20
ME = "/users/me"


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


def issue(user_id: object, email: str, purpose: TokenPurpose) -> str:
    with Session(get_engine()) as session:
        token = action_tokens.issue(
            session,
            user_id=user_id,  # type: ignore[arg-type]
            purpose=purpose,
            expires_at=utcnow() + timedelta(hours=1),
            email=email,
        )
        session.commit()
        return token


def test_a_stolen_access_token_alone_cannot_move_the_account(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    without = client.patch(api(ME), headers=user_headers, json={"email": "thief@evil.io"})
    assert without.status_code == 400
    assert without.json() == {"detail": "Incorrect password"}
    body = {"email": "thief@evil.io", "current_password": "guessed-wrong"}
    wrong = client.patch(api(ME), headers=user_headers, json=body)
    assert wrong.status_code == 400
    stored = fresh_user(user.email)
    assert (stored.email, stored.pending_email) == (user.email, None)
    by_id = client.patch(
        api(f"/users/{user.id}"), headers=user_headers, json={"email": "t@evil.io"}
    )
    assert by_id.status_code == 400
    assert fresh_user(user.email).pending_email is None


def test_the_pending_address_moves_the_account_only_through_its_own_link(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    body = {"email": "new@example.com", "current_password": PASSWORD}
    assert client.patch(api(ME), headers=user_headers, json=body).status_code == 200
    assert events("user.email_change_requested")
    # a link bound to the old address cannot confirm the new one, nor one for another address
    old = issue(user.id, user.email, TokenPurpose.CHANGE_EMAIL)
    other = issue(user.id, "other@example.com", TokenPurpose.CHANGE_EMAIL)
    for token in (old, other):
        assert client.post(api("/auth/verify-email"), json={"token": token}).status_code == 400
    assert fresh_user(user.email).pending_email == "new@example.com"
    # the login stays at the old address until the move
    assert login(client, user.email)["access_token"]


def test_a_pending_address_taken_meanwhile_is_409_and_moves_nothing(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    body = {"email": "wanted@example.com", "current_password": PASSWORD}
    client.patch(api(ME), headers=user_headers, json=body)
    token = issue(user.id, "wanted@example.com", TokenPurpose.CHANGE_EMAIL)
    register(client, "wanted@example.com", PASSWORD)
    response = client.post(api("/auth/verify-email"), json={"token": token})
    assert response.status_code == 409
    assert fresh_user(user.email).email == user.email


def test_email_changes_are_rate_limited_per_user_before_any_check(
    client: TestClient, user: User, user_headers: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_ENABLED=True, RATE_LIMIT_EMAIL_CHANGE="3/hour")
    statuses = [
        client.patch(
            api(ME),
            headers=user_headers,
            json={"email": f"probe{i}@example.com", "current_password": PASSWORD},
        ).status_code
        for i in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    # an existence probe of a taken address is limited alike
    taken = {"email": "root@example.com", "current_password": PASSWORD}
    limited = client.patch(api(ME), headers=user_headers, json=taken)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # the name is still the caller's to change
    assert client.patch(api(ME), headers=user_headers, json={"full_name": "N"}).status_code == 200


def test_verification_racing_an_email_change_never_verifies_the_new_address(
    client: TestClient, user_factory: Callable[..., User]
) -> None:
    """Finding: verify-email with A's link fired together with a change to B ended with B
    verified. Now B is verified only by B's own link, whatever the interleaving."""
    for round_ in range(ROUNDS):
        user = user_factory(email=f"a{round_}@example.com")
        headers = auth_header(login(client, user.email))
        token = issue(user.id, user.email, TokenPurpose.VERIFY_EMAIL)
        barrier = threading.Barrier(2)
        new = f"b{round_}@example.com"

        def verify(barrier: threading.Barrier = barrier, token: str = token) -> int:
            barrier.wait()
            return client.post(api("/auth/verify-email"), json={"token": token}).status_code

        def change(
            barrier: threading.Barrier = barrier, headers: dict[str, str] = headers, new: str = new
        ) -> int:
            barrier.wait()
            body = {"email": new, "current_password": PASSWORD}
            return client.patch(api(ME), headers=headers, json=body).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = [f.result(timeout=30) for f in [pool.submit(verify), pool.submit(change)]]
        assert statuses == [200, 200], f"round {round_}: {statuses}"  # no 503, no deadlock
        stored = fresh_user(user.email)
        assert (stored.email, stored.is_verified, stored.pending_email) == (user.email, True, new)


def test_an_admin_move_racing_a_recovery_request_leaves_no_working_link_for_the_old_address(
    client: TestClient, user_factory: Callable[..., User], admin_headers: dict[str, str]
) -> None:
    """A reset link mailed to the old address (issued before or after the move) never acts
    on the account at its new address."""
    for round_ in range(ROUNDS // 2):
        user = user_factory(email=f"old{round_}@example.com")
        barrier = threading.Barrier(2)
        new = f"moved{round_}@example.com"

        def move(barrier: threading.Barrier = barrier, user: User = user, new: str = new) -> int:
            barrier.wait()
            body = {"email": new}
            return client.patch(
                api(f"/users/{user.id}"), headers=admin_headers, json=body
            ).status_code

        def link(barrier: threading.Barrier = barrier, user: User = user) -> str:
            barrier.wait()
            return issue(user.id, user.email, TokenPurpose.RESET_PASSWORD)

        with ThreadPoolExecutor(2) as pool:
            moved, token = pool.submit(move), pool.submit(link)
            assert moved.result(timeout=30) == 200
            reset_token = token.result(timeout=30)
        body = {"token": reset_token, "new_password": "taken-over-password"}
        assert client.post(api("/auth/reset-password"), json=body).status_code == 400
        assert fresh_user(new).email == new
