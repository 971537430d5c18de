"""/account/mfa: TOTP set-up after the password (counted toward the lockout like the API's),
the QR code as an SVG inside the page (CSP-safe) and the secret as text, the confirmation
with a code (the same code posted twice at once turns it on once), the recovery codes shown
once, and turning it off with the password and a code."""

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.config import Settings, get_settings
from app.models.action_token import RecoveryCode
from app.models.user import User
from app.web.account import messages
from app.web.account.mfa import qr_svg
from tests.test_mfa import code_at, password_step
from tests.utils import PASSWORD, api
from tests.utils.account import events, fresh_user
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    inputs,
    notices,
    post_form,
    signed_in_overview,
)
from tests.utils.oidc import browser

pytestmark = pytest.mark.usefixtures("oidc_issuer")

WRONG_CODE = "That code is not right. Enter the current code from your app, or a recovery code."


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


def signed_in(client: TestClient, user: User) -> httpx.Client:
    b = browser(client)
    signed_in_overview(b, user.email)
    return b


def secret_of(setup: httpx.Response) -> str:
    found = re.search(r'<code class="secret" id="secret">([A-Z2-7 ]+)</code>', setup.text)
    assert found is not None, setup.text
    return found.group(1).replace(" ", "")


def start_setup(b: httpx.Client) -> httpx.Response:
    page = b.get("/account/mfa")
    setup = post_form(b, page, "/account/mfa/setup", password=PASSWORD)
    assert setup.status_code == 200, setup.text
    return setup


def turn_on(b: httpx.Client) -> tuple[str, list[str]]:
    setup = start_setup(b)
    secret = secret_of(setup)
    done = post_form(b, setup, "/account/mfa/confirm", code=code_at(secret))
    assert done.status_code == 200, done.text
    return secret, codes_of(done)


def codes_of(page: httpx.Response) -> list[str]:
    listed = re.search(r'<ol class="codes">(.*?)</ol>', page.text, re.S)
    assert listed is not None, page.text
    return re.findall(r"<li>([0-9a-f-]+)</li>", listed.group(1))


def test_the_page_offers_the_set_up_behind_the_password(client: TestClient, user: User) -> None:
    b = signed_in(client, user)
    page = b.get("/account/mfa")
    assert page.status_code == 200
    assert_account_headers(page)
    assert "off" in page.text
    assert inputs(page) == {"password": "current-password"}
    assert 'action="/account/mfa/setup"' in page.text


def test_the_set_up_shows_the_qr_code_inline_and_the_secret(client: TestClient, user: User) -> None:
    b = signed_in(client, user)
    setup = start_setup(b)
    assert_account_headers(setup)
    secret = secret_of(setup)
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=user.email, issuer_name=get_settings().PROJECT_NAME
    )
    assert str(qr_svg(uri)) in setup.text  # the code of this very secret, drawn in the page
    assert '<svg xmlns="http://www.w3.org/2000/svg" viewBox=' in setup.text
    # nothing the CSP (style-src 'self', script-src 'self', img-src 'self') would block
    assert "style=" not in setup.text and "<style" not in setup.text
    assert "<script" not in setup.text and "<img" not in setup.text
    csp = setup.headers["content-security-policy"]
    assert "style-src 'self';" in csp and "unsafe-inline" not in csp
    assert inputs(setup) == {"code": "one-time-code"}
    assert fresh_user(user.email).mfa_enabled is False  # not on until confirmed


def test_a_wrong_password_is_refused_and_counted_like_the_apis(
    client: TestClient, user: User
) -> None:
    b = signed_in(client, user)
    page = b.get("/account/mfa")
    wrong = post_form(b, page, "/account/mfa/setup", password="not-my-password")
    assert wrong.status_code == 400
    assert alerts(wrong) == [messages.WRONG_PASSWORD]
    assert "<svg" not in wrong.text
    [failed] = events("auth.reauthentication_failed")
    assert failed.subject_id == user.id and failed.detail == {"what": "password"}
    empty = post_form(b, page, "/account/mfa/setup", password="")
    assert empty.status_code == 422 and alerts(empty) == [messages.ENTER_PASSWORD]
    huge = post_form(b, page, "/account/mfa/setup", password="x" * 100_000)
    assert huge.status_code in (400, 413)


def test_a_locked_account_gets_429_with_retry_after(
    client: TestClient, user: User, settings: Callable[..., Settings]
) -> None:
    settings(ACCOUNT_LOCKOUT_THRESHOLD=2)
    b = signed_in(client, user)
    page = b.get("/account/mfa")
    statuses = [
        post_form(b, page, "/account/mfa/setup", password="wrong").status_code for _ in range(2)
    ]
    assert statuses == [400, 400]
    locked = post_form(b, page, "/account/mfa/setup", password=PASSWORD)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert alerts(locked)[0].startswith("Too many wrong attempts.")


def test_confirming_turns_it_on_and_shows_the_recovery_codes_once(
    client: TestClient, db: Session, user: User
) -> None:
    b = signed_in(client, user)
    setup = start_setup(b)
    secret = secret_of(setup)
    wrong = post_form(b, setup, "/account/mfa/confirm", code="000000")
    assert wrong.status_code == 400 and alerts(wrong) == [WRONG_CODE]
    assert secret.lower() not in wrong.text.lower() and "<svg" not in wrong.text
    empty = post_form(b, setup, "/account/mfa/confirm", code="")
    assert empty.status_code == 422
    assert alerts(empty) == ["Enter the code from your authenticator app."]

    done = post_form(b, wrong, "/account/mfa/confirm", code=code_at(secret))
    assert done.status_code == 200
    assert_account_headers(done)
    codes = codes_of(done)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert fresh_user(user.email).mfa_enabled is True
    assert [e.subject_id for e in events("mfa.enabled")] == [user.id]
    assert password_step(client, user.email)  # the API's login now asks for the code

    again = b.get("/account/mfa")
    assert "on" in again.text and "You have 10 unused recovery codes." in again.text
    for code in codes:
        assert code not in again.text
    assert inputs(again) == {"password": "current-password", "code": "one-time-code"}
    db.expire_all()
    stored = db.exec(select(RecoveryCode).where(col(RecoveryCode.user_id) == user.id)).all()
    assert len(stored) == 10 and all(row.code_hash not in codes for row in stored)


def test_the_same_code_posted_twice_at_once_turns_it_on_once(
    client: TestClient, user: User
) -> None:
    b = signed_in(client, user)
    setup = start_setup(b)
    code = code_at(secret_of(setup))
    cookies = dict(b.cookies)

    def confirm(_: int) -> int:
        # not closed: closing a client closes the shared transport, and with it
        # the other thread's request in flight
        twin = browser(client)
        twin.cookies.update(cookies)
        return post_form(twin, setup, "/account/mfa/confirm", code=code).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(confirm, range(2)))
    assert statuses[0] == 200 and statuses[1] in (400, 409), statuses
    assert len(events("mfa.enabled")) == 1
    assert fresh_user(user.email).mfa_enabled is True


def test_a_second_set_up_while_on_is_409(client: TestClient, user: User) -> None:
    b = signed_in(client, user)
    turn_on(b)
    stale = b.get("/account/mfa")
    # the set-up form of a page opened before (another tab): refused, nothing changes
    again = b.post(
        "/account/mfa/setup",
        data={"csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', stale.text)[0],
              "password": PASSWORD},
    )  # fmt: skip
    assert again.status_code == 409 and alerts(again) == [
        "Two-factor authentication is already on."
    ]
    no_setup = post_form(b, stale, "/account/mfa/confirm", code="123456")
    assert no_setup.status_code == 409


def test_confirming_without_a_set_up_says_to_start_one(client: TestClient, user: User) -> None:
    b = signed_in(client, user)
    page = b.get("/account/mfa")
    answer = post_form(b, page, "/account/mfa/confirm", code="123456")
    assert answer.status_code == 400
    assert alerts(answer) == ["There is no set-up to confirm. Start the set-up again."]


def test_turning_it_off_needs_the_password_and_a_code(client: TestClient, user: User) -> None:
    b = signed_in(client, user)
    secret, codes = turn_on(b)
    page = b.get("/account/mfa")

    wrong_password = post_form(
        b, page, "/account/mfa/disable", password="nope", code=code_at(secret, 1)
    )
    assert wrong_password.status_code == 400
    assert alerts(wrong_password) == [messages.WRONG_PASSWORD]
    wrong_code = post_form(b, page, "/account/mfa/disable", password=PASSWORD, code="000000")
    assert wrong_code.status_code == 400 and alerts(wrong_code) == [WRONG_CODE]
    assert [e.detail["what"] for e in events("auth.reauthentication_failed")] == [
        "password",
        "code",
    ]
    missing = post_form(b, page, "/account/mfa/disable", password="", code="")
    assert missing.status_code == 422
    assert alerts(missing) == [
        messages.ENTER_PASSWORD,
        "Enter the code from your authenticator app.",
    ]
    assert fresh_user(user.email).mfa_enabled is True

    off = post_form(b, page, "/account/mfa/disable", password=PASSWORD, code=codes[0])
    assert off.status_code == 303 and off.headers["location"] == "/account/mfa?done=off"
    after = b.get(off.headers["location"])
    assert notices(after) == [
        "Two-factor authentication is off. You sign in with your password alone."
    ]
    assert fresh_user(user.email).mfa_enabled is False
    assert [e.subject_id for e in events("mfa.disabled")] == [user.id]
    assert client.post(
        api("/auth/login"), data={"username": user.email, "password": PASSWORD}
    ).json().keys() >= {"access_token"}
    twice = post_form(b, page, "/account/mfa/disable", password=PASSWORD, code=codes[1])
    assert twice.status_code == 409


def test_the_forms_need_this_browsers_csrf_token(client: TestClient, user: User) -> None:
    b = signed_in(client, user)
    for path in ("/account/mfa/setup", "/account/mfa/confirm", "/account/mfa/disable"):
        forged = b.post(path, data={"csrf_token": "forged", "password": PASSWORD, "code": "1"})
        assert forged.status_code == 403
    assert events("auth.reauthentication_failed") == []
