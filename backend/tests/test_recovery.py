"""Password recovery over HTTP, with the reset link read from a mail a real SMTP server got."""

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.core import mail
from app.core.config import Settings, get_settings
from app.models.action_token import TokenPurpose
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import all_event_text, events, expire_tokens, tokens_of
from tests.utils.mailbox import Mailbox, html_of, token_in
from tests.utils.server import free_port

NEW_PASSWORD = "a-brand-new-password"


def recover(client: TestClient, email: str) -> dict[str, str]:
    response = client.post(api("/auth/password-recovery"), json={"email": email})
    assert response.status_code == 202, response.text
    return response.json()


def reset(client: TestClient, token: str, password: str = NEW_PASSWORD) -> int:
    response = client.post(
        api("/auth/reset-password"), json={"token": token, "new_password": password}
    )
    return response.status_code


def test_reset_link_works_once_and_ends_every_session(
    client: TestClient, mailbox: Mailbox, user: User, user_headers: dict[str, str]
) -> None:
    recover(client, user.email.upper())
    message = mailbox.last_to(user.email)
    token = mailbox.token_for(user.email, "/account/reset-password")
    assert f"{get_settings().PUBLIC_URL}/account/reset-password?token={token}" in html_of(message)

    assert reset(client, token) == 204
    assert client.get(api("/users/me"), headers=user_headers).status_code == 401
    wrong = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert wrong.status_code == 401
    login(client, user.email, NEW_PASSWORD)

    assert reset(client, token, "yet-another-password") == 400
    assert client.post(
        api("/auth/reset-password"), json={"token": token, "new_password": "yet-another-password"}
    ).json() == {"detail": "Invalid or expired token"}


def test_unknown_email_gets_the_same_answer_and_no_mail(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    known = recover(client, user.email)
    unknown = recover(client, "nobody@example.com")
    assert known == unknown
    assert [m["To"] for m in mailbox.wait()] == [user.email]
    [unknown_event] = [e for e in events("auth.password_reset_requested") if e.subject_id is None]
    assert unknown_event.detail == {"mailed": False, "email": "nobody@example.com"}


def test_inactive_user_gets_no_mail(
    client: TestClient, mailbox: Mailbox, user_factory: Callable[..., User]
) -> None:
    inactive = user_factory(is_active=False)
    recover(client, inactive.email)
    assert mail.flush(5)
    assert mailbox.messages == []


def test_only_a_digest_of_the_token_is_stored(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    recover(client, user.email)
    token = mailbox.token_for(user.email, "/account/reset-password")
    [row] = tokens_of(TokenPurpose.RESET_PASSWORD)
    assert row.token_hash != token and token not in row.token_hash
    assert len(row.token_hash) == 64


def test_expired_token_is_refused(client: TestClient, mailbox: Mailbox, user: User) -> None:
    recover(client, user.email)
    token = mailbox.token_for(user.email, "/account/reset-password")
    assert expire_tokens(TokenPurpose.RESET_PASSWORD) == 1
    assert reset(client, token) == 400
    login(client, user.email)  # the password is unchanged


@pytest.mark.parametrize("token", ["", "x" * 513])
def test_malformed_token_is_422(client: TestClient, token: str) -> None:
    response = client.post(
        api("/auth/reset-password"), json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 422


def test_garbage_token_is_400(client: TestClient) -> None:
    assert reset(client, "not-a-token") == 400


def test_weak_password_is_422_and_keeps_the_token(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    recover(client, user.email)
    token = mailbox.token_for(user.email, "/account/reset-password")
    assert reset(client, token, "short") == 422
    assert reset(client, token, "x" * 73) == 422
    assert reset(client, token) == 204


def test_a_reset_spends_the_other_reset_links(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    recover(client, user.email)
    recover(client, user.email)
    first, second = mailbox.wait(2)
    assert reset(client, token_in(second, "/account/reset-password")) == 204
    assert reset(client, token_in(first, "/account/reset-password"), "yet-another-password") == 400


def test_reset_is_audited_without_the_token(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    recover(client, user.email)
    token = mailbox.token_for(user.email, "/account/reset-password")
    assert reset(client, token) == 204
    [requested] = events("auth.password_reset_requested")
    assert requested.subject_id == user.id
    [done] = events("auth.password_reset")
    assert done.subject_id == done.actor_id == user.id
    text = all_event_text()
    assert token not in text
    assert NEW_PASSWORD not in text


def test_reset_clears_a_lockout_and_verifies_the_address(
    client: TestClient, mailbox: Mailbox, user: User, settings: Callable[..., Settings]
) -> None:
    settings(MAX_FAILED_LOGINS=2, RATE_LIMIT_ENABLED=False)
    for _ in range(2):
        client.post(api("/auth/login"), data={"username": user.email, "password": "wrong-one"})
    locked = client.post(api("/auth/login"), data={"username": user.email, "password": PASSWORD})
    assert locked.status_code == 429
    recover(client, user.email)
    assert reset(client, mailbox.token_for(user.email, "/account/reset-password")) == 204
    me = client.get(api("/users/me"), headers=auth_header(login(client, user.email, NEW_PASSWORD)))
    assert me.json()["is_verified"] is True


def test_recovery_answers_202_when_the_mail_server_is_down(
    client: TestClient,
    user: User,
    settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings(EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_TLS=False)
    recover(client, user.email)
    assert mail.flush(5)
    assert f"mail to {user.email} not sent" in caplog.text
    assert "token=" not in caplog.text


def test_recovery_answers_before_a_slow_mail_server(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    mailbox.gate.clear()
    recover(client, user.email)
    assert mailbox.messages == []  # answered while the server still holds the mail
    mailbox.gate.set()
    assert mailbox.last_to(user.email)


def test_recovery_rate_limit_is_the_same_for_unknown_addresses(
    client: TestClient, mailbox: Mailbox, user: User, settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_PASSWORD_RECOVERY="2/hour")
    for email in (user.email, "nobody@example.com"):
        for _ in range(2):
            recover(client, email)
        over = client.post(api("/auth/password-recovery"), json={"email": email})
        assert over.status_code == 429
        assert "retry-after" in over.headers
    assert len(mailbox.wait(2)) == 2


def test_malformed_email_is_422(client: TestClient) -> None:
    response = client.post(api("/auth/password-recovery"), json={"email": "not-an-email"})
    assert response.status_code == 422
