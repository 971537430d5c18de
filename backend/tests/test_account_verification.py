"""/account/verify-email and /account/email/confirm: the mailed link's GET asks to confirm and
spends nothing; the POST verifies (or moves the account) as POST /auth/verify-email does, then
goes on to the request this browser was signing in to (signing in first if needed) or the
account."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.action_token import TokenPurpose
from app.models.user import User
from app.web.account import messages
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import events, expire_tokens, fresh_user, tokens_of
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    form_fields,
    is_login_page,
    link,
    mailed_token,
    notices,
    post_form,
)
from tests.utils.mailbox import Mailbox
from tests.utils.oidc import (
    browser,
    make_client,
    oauth_client,
    redirect_params,
    start,
    submit_login,
)

pytestmark = pytest.mark.usefixtures("oidc_issuer")

NEW = {"email": "grace@example.com", "full_name": "Grace", "password": PASSWORD}
VERIFY = "/account/verify-email"
CONFIRM = "/account/email/confirm"


def test_sign_up_verify_in_the_same_browser_then_sign_in_to_the_pending_request(
    client: TestClient, db: Session, mailbox: Mailbox, settings: Callable[..., Settings]
) -> None:
    settings(REQUIRE_EMAIL_VERIFICATION=True)
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered))
    b = browser(client)
    href = link(b.get(started.url), "Create account")
    assert href is not None
    assert post_form(b, b.get(href), "/account/sign-up", **NEW).status_code == 200
    token = mailed_token(mailbox, "grace@example.com", VERIFY)

    for _ in range(2):  # a mail scanner, then the person: the GET spends nothing
        page = b.get(VERIFY, params={"token": token})
        assert page.status_code == 200 and "grace@example.com" in page.text
        assert_account_headers(page)
        assert form_fields(page.text)["token"] == token
    assert all(row.used_at is None for row in tokens_of(TokenPurpose.VERIFY_EMAIL))
    assert not fresh_user("grace@example.com").is_verified

    answer = post_form(b, page, VERIFY)
    assert answer.status_code == 200 and is_login_page(answer)
    assert notices(answer) == [messages.EMAIL_CONFIRMED]
    assert 'value="grace@example.com"' in answer.text
    assert form_fields(answer.text)["request"] == started.url.split("?", 1)[1]
    assert fresh_user("grace@example.com").is_verified
    assert len(events("user.email_verified")) == 1
    params = redirect_params(submit_login(b, answer, "grace@example.com", PASSWORD))
    assert params["state"] == started.state and "code" in params


def test_a_signed_in_person_goes_straight_on_to_the_account(
    client: TestClient, mailbox: Mailbox
) -> None:
    b = browser(client)
    assert post_form(b, b.get("/account/sign-up"), "/account/sign-up", **NEW).status_code == 303
    token = mailed_token(mailbox, "grace@example.com", VERIFY)
    answer = post_form(b, b.get(VERIFY, params={"token": token}), VERIFY)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    assert_account_headers(answer)
    overview = b.get("/account")
    assert ">verified<" in overview.text


def test_another_browser_signs_in_first_then_reaches_the_account(
    client: TestClient, mailbox: Mailbox
) -> None:
    first = browser(client)
    assert (
        post_form(first, first.get("/account/sign-up"), "/account/sign-up", **NEW).status_code
        == 303
    )
    token = mailed_token(mailbox, "grace@example.com", VERIFY)
    other = browser(client)
    answer = post_form(other, other.get(VERIFY, params={"token": token}), VERIFY)
    assert is_login_page(answer) and form_fields(answer.text)["next"] == "/account"
    signed_in = submit_login(other, answer, "grace@example.com", PASSWORD)
    assert signed_in.headers["location"] == "/account"


@pytest.mark.parametrize("path", [VERIFY, CONFIRM])
@pytest.mark.parametrize("token", ["", "nope", "x" * 600])
def test_a_bad_link_is_a_clear_page(client: TestClient, path: str, token: str) -> None:
    b = browser(client)
    page = b.get(path, params={"token": token})
    assert page.status_code == 400 and alerts(page) == [messages.LINK_INVALID]
    csrf_token = form_fields(b.get("/account/login").text)["csrf_token"]
    posted = b.post(path, data={"csrf_token": csrf_token, "token": token})
    assert posted.status_code == 400 and alerts(posted) == [messages.LINK_INVALID]


def test_a_spent_or_expired_link_is_a_clear_page(client: TestClient, mailbox: Mailbox) -> None:
    b = browser(client)
    post_form(b, b.get("/account/sign-up"), "/account/sign-up", **NEW)
    token = mailed_token(mailbox, "grace@example.com", VERIFY)
    page = b.get(VERIFY, params={"token": token})
    assert post_form(b, page, VERIFY).status_code == 303
    again = post_form(b, page, VERIFY)
    assert again.status_code == 400 and alerts(again) == [messages.LINK_INVALID]
    assert b.get(VERIFY, params={"token": token}).status_code == 400

    user = fresh_user("grace@example.com")
    headers = auth_header(login(client, user.email))
    client.patch(
        api("/users/me"),
        headers=headers,
        json={"email": "g2@example.com", "current_password": PASSWORD},
    )
    change = mailed_token(mailbox, "g2@example.com", CONFIRM)
    expire_tokens(TokenPurpose.CHANGE_EMAIL)
    assert b.get(CONFIRM, params={"token": change}).status_code == 400


def test_a_forged_csrf_token_verifies_nothing(client: TestClient, mailbox: Mailbox) -> None:
    first = browser(client)
    post_form(first, first.get("/account/sign-up"), "/account/sign-up", **NEW)
    token = mailed_token(mailbox, "grace@example.com", VERIFY)
    victim, attacker = browser(client), browser(client)
    victim.get("/account/login")
    forged = victim.post(
        VERIFY, data=form_fields(attacker.get(VERIFY, params={"token": token}).text)
    )
    assert forged.status_code == 403
    assert not fresh_user("grace@example.com").is_verified


def test_the_change_link_moves_the_account_after_its_confirmation(
    client: TestClient, user: User, mailbox: Mailbox
) -> None:
    headers = auth_header(login(client, user.email))
    body = {"email": "moved@example.com", "current_password": PASSWORD}
    assert client.patch(api("/users/me"), headers=headers, json=body).status_code == 200
    token = mailed_token(mailbox, "moved@example.com", CONFIRM)
    b = browser(client)
    page = b.get(CONFIRM, params={"token": token})
    assert page.status_code == 200 and "moved@example.com" in page.text
    assert fresh_user(user.email).pending_email == "moved@example.com"  # not yet
    answer = post_form(b, page, CONFIRM)
    assert is_login_page(answer) and 'value="moved@example.com"' in answer.text
    assert fresh_user("moved@example.com").id == user.id
    assert len(events("user.email_changed")) == 1


def test_a_change_to_an_address_taken_meanwhile_is_a_clear_page(
    client: TestClient, user: User, mailbox: Mailbox, user_factory: Callable[..., User]
) -> None:
    headers = auth_header(login(client, user.email))
    body = {"email": "wanted@example.com", "current_password": PASSWORD}
    client.patch(api("/users/me"), headers=headers, json=body)
    token = mailed_token(mailbox, "wanted@example.com", CONFIRM)
    user_factory(email="wanted@example.com")
    b = browser(client)
    answer = post_form(b, b.get(CONFIRM, params={"token": token}), CONFIRM)
    assert answer.status_code == 409
    assert alerts(answer) == [messages.ADDRESS_TAKEN_NOW]
    assert fresh_user(user.email).id == user.id
