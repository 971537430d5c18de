"""Email verification over HTTP: the link mailed at registration, on request, after a change."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from app.core import mail
from app.core.config import Settings
from app.models.action_token import TokenPurpose
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import all_event_text, events, expire_tokens, fresh_user, register
from tests.utils.mailbox import Mailbox, text_of, token_in

PATH = "/account/verify-email"
CHANGE_PATH = "/account/email/confirm"


def verify(client: TestClient, token: str) -> tuple[int, dict[str, object]]:
    response = client.post(api("/auth/verify-email"), json={"token": token})
    return response.status_code, response.json()


def test_registration_mails_a_link_that_verifies_once(client: TestClient, mailbox: Mailbox) -> None:
    created = register(client, "ada@example.com", PASSWORD)
    assert created["is_verified"] is False
    token = mailbox.token_for("ada@example.com", PATH)

    status, body = verify(client, token)
    assert status == 200
    assert body["id"] == created["id"]
    assert body["is_verified"] is True
    assert not {"hashed_password", "mfa_secret", "password"} & body.keys()

    assert verify(client, token) == (400, {"detail": "Invalid or expired token"})
    [event] = events("user.email_verified")
    assert str(event.subject_id) == created["id"]
    assert token not in all_event_text()


def test_expired_or_unknown_token_is_400(client: TestClient, mailbox: Mailbox) -> None:
    register(client, "ada@example.com", PASSWORD)
    token = mailbox.token_for("ada@example.com", PATH)
    assert expire_tokens(TokenPurpose.VERIFY_EMAIL) == 1
    assert verify(client, token)[0] == 400
    assert verify(client, "no-such-token")[0] == 400
    assert fresh_user("ada@example.com").is_verified is False


def test_a_reset_token_does_not_verify(client: TestClient, mailbox: Mailbox, user: User) -> None:
    client.post(api("/auth/password-recovery"), json={"email": user.email})
    reset_token = mailbox.token_for(user.email, "/account/reset-password")
    assert verify(client, reset_token)[0] == 400


def test_request_verification_mails_a_new_link_and_spends_the_old(
    client: TestClient, mailbox: Mailbox
) -> None:
    register(client, "ada@example.com", PASSWORD)
    first = mailbox.token_for("ada@example.com", PATH)
    headers = auth_header(login(client, "ada@example.com"))
    response = client.post(api("/auth/request-verification"), headers=headers)
    assert response.status_code == 202
    second = token_in(mailbox.wait(2)[-1], PATH)
    assert second != first
    assert verify(client, first)[0] == 400
    assert verify(client, second)[0] == 200


def test_request_verification_needs_a_bearer_token(client: TestClient) -> None:
    response = client.post(api("/auth/request-verification"))
    assert response.status_code == 401


def test_a_verified_user_gets_no_new_mail(
    client: TestClient, mailbox: Mailbox, user_factory: Callable[..., User]
) -> None:
    verified = user_factory(is_verified=True)
    headers = auth_header(login(client, verified.email))
    assert client.post(api("/auth/request-verification"), headers=headers).status_code == 202
    assert mail.flush(5)
    assert mailbox.messages == []


def test_required_verification_blocks_login_until_verified(
    client: TestClient, mailbox: Mailbox, settings: Callable[..., Settings]
) -> None:
    settings(REQUIRE_EMAIL_VERIFICATION=True)
    register(client, "ada@example.com", PASSWORD)
    form = {"username": "ada@example.com", "password": PASSWORD}

    refused = client.post(api("/auth/login"), data=form)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Email not verified"}
    wrong = client.post(api("/auth/login"), data={**form, "password": "not-the-password"})
    assert wrong.status_code == 401  # the 403 only comes after a correct password

    assert verify(client, mailbox.token_for("ada@example.com", PATH))[0] == 200
    assert client.post(api("/auth/login"), data=form).status_code == 200


def test_an_email_change_waits_for_the_link_mailed_to_the_new_address(
    client: TestClient, mailbox: Mailbox
) -> None:
    register(client, "ada@example.com", PASSWORD)
    verify(client, mailbox.token_for("ada@example.com", PATH))
    headers = auth_header(login(client, "ada@example.com"))
    client.post(api("/auth/password-recovery"), json={"email": "ada@example.com"})
    old_reset = token_in(mailbox.wait(2)[-1], "/account/reset-password")

    body = {"email": "Ada@New.io", "current_password": PASSWORD}
    response = client.patch(api("/users/me"), headers=headers, json=body)
    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"  # still there, still verified
    assert response.json()["is_verified"] is True
    assert response.json()["pending_email"] == "ada@new.io"
    new_token = mailbox.token_for("ada@new.io", CHANGE_PATH)
    notice = text_of(mailbox.last_to("ada@example.com"))  # the old address hears of it
    assert "ada@new.io" in notice and "token" not in notice

    status, body = verify(client, new_token)
    assert status == 200
    assert (body["email"], body["is_verified"], body["pending_email"]) == ("ada@new.io", True, None)
    # the reset link went to the old address: it does not act on the account now elsewhere
    reset = {"token": old_reset, "new_password": "another-password"}
    assert client.post(api("/auth/reset-password"), json=reset).status_code == 400
    assert verify(client, new_token)[0] == 400  # single-use
    assert events("user.email_changed")


def test_a_link_mailed_to_the_old_address_cannot_verify_the_new_one(
    client: TestClient, mailbox: Mailbox
) -> None:
    register(client, "ada@example.com", PASSWORD)
    old_token = mailbox.token_for("ada@example.com", PATH)
    headers = auth_header(login(client, "ada@example.com"))
    body = {"email": "ada@new.io", "current_password": PASSWORD}
    client.patch(api("/users/me"), headers=headers, json=body)
    change_token = mailbox.token_for("ada@new.io", CHANGE_PATH)
    status, user = verify(client, old_token)  # verifies the old address, not the pending one
    assert status == 200
    assert (user["email"], user["is_verified"], user["pending_email"]) == (
        "ada@example.com",
        True,
        "ada@new.io",
    )
    status, user = verify(client, change_token)
    assert (status, user["email"], user["is_verified"]) == (200, "ada@new.io", True)


def test_admin_email_change_mails_the_new_address(
    client: TestClient, mailbox: Mailbox, admin_headers: dict[str, str], user: User
) -> None:
    response = client.patch(
        api(f"/users/{user.id}"), headers=admin_headers, json={"email": "moved@example.com"}
    )
    assert response.status_code == 200
    assert verify(client, mailbox.token_for("moved@example.com", PATH))[0] == 200
