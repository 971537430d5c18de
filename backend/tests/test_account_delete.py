"""/account/delete: the account deleted after the password (and a code while TOTP is on),
each wrong answer counted toward the lockout and audited like the API's re-authentication;
never the last active admin (DELETE /users/{id}'s rule, 409); every session ends with it;
then a page that says so, this browser signed out."""

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.permissions import Role
from app.models.session import AuthSession
from app.models.user import User
from app.web.account import messages
from tests.test_mfa import code_at, enable_totp
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import events
from tests.utils.account_manage import consented_app
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    inputs,
    post_form,
    signed_in_overview,
)
from tests.utils.oidc import browser, refresh_grant, submit_login

pytestmark = pytest.mark.usefixtures("oidc_issuer")

WRONG_CODE = "That code is not right. Enter the current code from your app, or a recovery code."


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


def signed_in(client: TestClient, user: User) -> httpx.Client:
    b = browser(client)
    signed_in_overview(b, user.email)
    return b


def exists(db: Session, user_id: object) -> bool:
    db.expire_all()
    return db.get(User, user_id) is not None


def test_the_account_is_deleted_and_every_session_ends(
    client: TestClient, db: Session, user: User
) -> None:
    user_id, email = user.id, user.email
    api_tokens = login(client, user.email)
    app = consented_app(client, db, user)
    b = signed_in(client, user)
    page = b.get("/account/delete")
    assert page.status_code == 200
    assert_account_headers(page)
    assert inputs(page) == {"password": "current-password"}  # no code: TOTP is off

    wrong = post_form(b, page, "/account/delete", password="not-it")
    assert wrong.status_code == 400 and alerts(wrong) == [messages.WRONG_PASSWORD]
    [failed] = events("auth.reauthentication_failed")
    assert failed.subject_id == user_id and failed.detail == {"what": "password"}
    empty = post_form(b, page, "/account/delete", password="")
    assert empty.status_code == 422 and alerts(empty) == [messages.ENTER_PASSWORD]
    assert exists(db, user_id)

    deleted = post_form(b, page, "/account/delete", password=PASSWORD)
    assert deleted.status_code == 200
    assert_account_headers(deleted)
    assert "Your account is deleted" in deleted.text
    assert 'action="/account/sign-out"' not in deleted.text  # no one is signed in
    assert "Max-Age=0" in deleted.headers["set-cookie"]
    assert not exists(db, user_id)
    assert db.exec(select(AuthSession).where(col(AuthSession.user_id) == user_id)).all() == []
    [event] = events("user.deleted")
    assert event.subject_id == user_id and event.actor_id == user_id

    assert client.get(api("/users/me"), headers=auth_header(api_tokens)).status_code == 401
    assert refresh_grant(client, app.registered, app.tokens["refresh_token"]).status_code == 400
    assert b.get("/account").status_code == 303  # to the login
    gone = submit_login(b, b.get("/account/login"), email, PASSWORD)
    assert gone.status_code == 400


def test_with_totp_on_a_current_code_is_needed_too(
    client: TestClient, db: Session, user: User, user_headers: dict[str, str]
) -> None:
    secret, recovery_codes = enable_totp(client, user_headers)
    b = browser(client)
    second = submit_login(b, b.get("/account/login"), user.email, PASSWORD)
    post_form(b, second, "/oauth/authorize/mfa", code=code_at(secret, 1))
    page = b.get("/account/delete")
    assert inputs(page) == {"password": "current-password", "code": "one-time-code"}

    missing = post_form(b, page, "/account/delete", password=PASSWORD, code="")
    assert missing.status_code == 422
    assert alerts(missing) == ["Enter the code from your authenticator app."]
    wrong = post_form(b, page, "/account/delete", password=PASSWORD, code="000000")
    assert wrong.status_code == 400 and alerts(wrong) == [WRONG_CODE]
    assert [e.detail["what"] for e in events("auth.reauthentication_failed")] == ["code"]
    assert exists(db, user.id)

    deleted = post_form(b, page, "/account/delete", password=PASSWORD, code=recovery_codes[0])
    assert deleted.status_code == 200 and not exists(db, user.id)


def test_the_last_admin_cannot_delete_their_account(
    client: TestClient, db: Session, admin: User, user_factory: Callable[..., User]
) -> None:
    b = signed_in(client, admin)
    page = b.get("/account/delete")
    refused = post_form(b, page, "/account/delete", password=PASSWORD)
    assert refused.status_code == 409
    assert alerts(refused) == [
        "You are the last administrator of this service, so your account cannot be deleted. "
        "Make another person an administrator first."
    ]
    assert exists(db, admin.id) and events("user.deleted") == []
    assert b.get("/account").status_code == 200  # still signed in

    user_factory(Role.ADMIN, email="second-admin@example.com")
    deleted = post_form(b, page, "/account/delete", password=PASSWORD)
    assert deleted.status_code == 200 and not exists(db, admin.id)


def test_a_locked_account_is_not_deleted(
    client: TestClient, db: Session, user: User, settings: Callable[..., Settings]
) -> None:
    settings(ACCOUNT_LOCKOUT_THRESHOLD=2)
    b = signed_in(client, user)
    page = b.get("/account/delete")
    for _ in range(2):
        assert post_form(b, page, "/account/delete", password="wrong").status_code == 400
    locked = post_form(b, page, "/account/delete", password=PASSWORD)
    assert locked.status_code == 429 and "retry-after" in locked.headers
    assert exists(db, user.id)


def test_deleting_needs_this_browsers_csrf_token(
    client: TestClient, db: Session, user: User
) -> None:
    b = signed_in(client, user)
    forged = b.post("/account/delete", data={"csrf_token": "forged", "password": PASSWORD})
    assert forged.status_code == 403
    missing = b.post("/account/delete", data={"password": PASSWORD})
    assert missing.status_code == 403
    assert exists(db, user.id)
