"""/account/profile, /account/email and /account/password: the changes of PATCH /users/me
and POST /users/me/password, by the same steps and rules (the current password asked again,
counted toward the lockout and audited when wrong, the same rate limits; a new address
pending until its link is opened, mails to both; the other sessions ended by a new
password), each form re-shown with its message on a refusal, never a 500."""

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.models.user import User
from app.web.account import messages
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.account import events, fresh_user
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    form_fields,
    inputs,
    mailed_token,
    nav_paths,
    notices,
    post_form,
    sign_in,
    signed_in_overview,
)
from tests.utils.mailbox import Mailbox
from tests.utils.oidc import browser

pytestmark = pytest.mark.usefixtures("oidc_issuer")

NEW_PASSWORD = "a-brand-new-password"


@pytest.fixture
def b(client: TestClient, user: User) -> httpx.Client:
    """A browser signed in to the account pages as `user`."""
    signed_in = browser(client)
    signed_in_overview(signed_in, user.email)
    return signed_in


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/account/profile", {"full_name": "name"}),
        ("/account/email", {"email": "email", "current_password": "current-password"}),
        (
            "/account/password",
            {"current_password": "current-password", "new_password": "new-password"},
        ),
    ],
)
def test_each_page_has_its_fields_labels_and_autocomplete(
    b: httpx.Client, path: str, fields: dict[str, str]
) -> None:
    page = b.get(path)
    assert page.status_code == 200
    assert_account_headers(page)
    assert inputs(page) == fields
    assert form_fields(page.text)["csrf_token"]


@pytest.mark.parametrize("path", ["/account/profile", "/account/email", "/account/password"])
def test_each_page_asks_for_the_login_and_comes_back(
    client: TestClient, user: User, path: str
) -> None:
    fresh = browser(client)
    first = fresh.get(path)
    assert first.status_code == 303 and first.headers["location"].startswith("/account/login?")
    answer = sign_in(fresh, user.email, next_path=path)
    assert answer.headers["location"] == path
    assert fresh.get(path).status_code == 200


def test_the_overview_links_to_every_page(b: httpx.Client) -> None:
    overview = b.get("/account")
    for path in nav_paths():
        assert f'href="{path}"' in overview.text


# --- profile ----------------------------------------------------------------------------------


def test_the_name_is_saved_and_audited(b: httpx.Client, user: User) -> None:
    page = b.get("/account/profile")
    saved = post_form(b, page, "/account/profile", full_name="Ada <b>Lovelace</b>")
    assert saved.status_code == 200 and notices(saved) == [messages.PROFILE_SAVED]
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in saved.text  # escaped, never markup
    assert fresh_user(user.email).full_name == "Ada <b>Lovelace</b>"
    assert [e.subject_id for e in events("user.updated")] == [user.id]
    cleared = post_form(b, page, "/account/profile", full_name="  ")
    assert cleared.status_code == 200 and fresh_user(user.email).full_name is None


@pytest.mark.parametrize("name", ["n" * 256, "a\x00b", "n" * 20_000])
def test_a_bad_name_reshows_the_form(b: httpx.Client, user: User, name: str) -> None:
    answer = post_form(b, b.get("/account/profile"), "/account/profile", full_name=name)
    assert answer.status_code == 422
    assert alerts(answer) == ["Use at most 255 characters, without NUL characters."]
    assert fresh_user(user.email).full_name is None


# --- email ------------------------------------------------------------------------------------


def test_a_new_address_is_pending_with_mails_to_both(
    b: httpx.Client, user: User, mailbox: Mailbox
) -> None:
    page = b.get("/account/email")
    answer = post_form(
        b, page, "/account/email", email="New@Example.com", current_password=PASSWORD
    )
    assert answer.status_code == 200
    assert notices(answer) == [
        f"We have sent a link to new@example.com. Your address changes when you open it; "
        f"until then you sign in with {user.email}."
    ]
    assert fresh_user(user.email).pending_email == "new@example.com"
    assert len(events("user.email_change_requested")) == 1
    mailbox.wait(2)
    assert {m["To"] for m in mailbox.messages} == {"new@example.com", user.email}
    token = mailed_token(mailbox, "new@example.com", "/account/email/confirm")
    assert token  # opened on /account/email/confirm (test_account_verification.py)


def test_a_wrong_current_password_reshows_the_form_and_counts(
    b: httpx.Client, user: User, mailbox: Mailbox
) -> None:
    page = b.get("/account/email")
    answer = post_form(
        b, page, "/account/email", email="new@example.com", current_password="wrong-password"
    )
    assert answer.status_code == 400
    assert alerts(answer) == [messages.WRONG_PASSWORD]
    assert 'value="new@example.com"' in answer.text and "wrong-password" not in answer.text
    assert fresh_user(user.email).pending_email is None
    assert [e.detail["what"] for e in events("auth.reauthentication_failed")] == ["password"]


@pytest.mark.parametrize(
    ("email", "password", "status", "problem"),
    [
        ("not-an-address", PASSWORD, 422, messages.INVALID_EMAIL),
        ("a" * 5000, PASSWORD, 422, messages.INVALID_EMAIL),
        ("new@example.com", "", 422, messages.ENTER_PASSWORD),
        ("USER@example.com", PASSWORD, 400, messages.SAME_EMAIL),
    ],
)
def test_bad_email_input_reshows_the_form(
    b: httpx.Client, user: User, email: str, password: str, status: int, problem: str
) -> None:
    answer = post_form(
        b, b.get("/account/email"), "/account/email", email=email, current_password=password
    )
    assert answer.status_code == status
    assert alerts(answer) == [problem]
    assert events("user.email_change_requested") == []


def test_an_address_of_another_account_is_refused(
    b: httpx.Client, user: User, user_factory: Callable[..., User]
) -> None:
    other = user_factory(email="taken@example.com")
    answer = post_form(
        b, b.get("/account/email"), "/account/email", email=other.email, current_password=PASSWORD
    )
    assert answer.status_code == 409 and alerts(answer) == [messages.EMAIL_IN_USE]


def test_email_changes_share_the_apis_limit(
    b: httpx.Client,
    client: TestClient,
    user: User,
    settings: Callable[..., Settings],
    mailbox: Mailbox,
) -> None:
    settings(RATE_LIMIT_EMAIL_CHANGE="1/hour")
    headers = auth_header(login(client, user.email))
    body = {"email": "first@example.com", "current_password": PASSWORD}
    assert client.patch(api("/users/me"), headers=headers, json=body).status_code == 200
    limited = post_form(
        b,
        b.get("/account/email"),
        "/account/email",
        email="second@example.com",
        current_password=PASSWORD,
    )
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert alerts(limited)[0].startswith("Too many attempts")


# --- password ---------------------------------------------------------------------------------


def test_a_new_password_keeps_this_session_and_ends_the_others(
    b: httpx.Client, client: TestClient, user: User
) -> None:
    other_browser = browser(client)
    signed_in_overview(other_browser, user.email)
    api_tokens = login(client, user.email)
    page = b.get("/account/password")
    answer = post_form(
        b, page, "/account/password", current_password=PASSWORD, new_password=NEW_PASSWORD
    )
    assert answer.status_code == 200 and notices(answer) == [messages.PASSWORD_CHANGED]
    assert len(events("auth.password_changed")) == 1
    assert b.get("/account").status_code == 200  # this browser stays signed in
    assert other_browser.get("/account").status_code == 303  # the other one is signed out
    assert client.get(api("/users/me"), headers=auth_header(api_tokens)).status_code == 401
    assert login(client, user.email, NEW_PASSWORD)


def test_a_wrong_current_password_changes_nothing(b: httpx.Client, user: User) -> None:
    answer = post_form(
        b,
        b.get("/account/password"),
        "/account/password",
        current_password="wrong-password",
        new_password=NEW_PASSWORD,
    )
    assert answer.status_code == 400 and alerts(answer) == [messages.WRONG_PASSWORD]
    assert "wrong-password" not in answer.text and NEW_PASSWORD not in answer.text
    assert events("auth.password_changed") == []
    assert len(events("auth.reauthentication_failed")) == 1


@pytest.mark.parametrize(
    ("current", "new", "problem"),
    [
        ("", NEW_PASSWORD, messages.ENTER_PASSWORD),
        (PASSWORD, "short", "Use at least 8 characters."),
        (PASSWORD, "x" * 9000, "Use at most 72 bytes"),
        ("p" * 9000, NEW_PASSWORD, None),
    ],
)
def test_bad_password_input_reshows_the_form(
    b: httpx.Client, current: str, new: str, problem: str | None
) -> None:
    answer = post_form(
        b,
        b.get("/account/password"),
        "/account/password",
        current_password=current,
        new_password=new,
    )
    assert 400 <= answer.status_code < 500
    assert alerts(answer)
    if problem is not None:
        assert alerts(answer)[0].startswith(problem)
    assert events("auth.password_changed") == []


def test_a_new_password_holding_the_address_is_refused_on_the_form(
    b: httpx.Client, user: User
) -> None:
    """The policy's rule that needs the account (EVENTS.md "Password policy"), which only
    the step can check: the form again with its message, never the API's JSON."""
    new = f"{user.email.split('@')[0]}-is-my-password"
    answer = post_form(
        b, b.get("/account/password"), "/account/password", current_password=PASSWORD,
        new_password=new,
    )  # fmt: skip
    assert answer.status_code == 422 and "text/html" in answer.headers["content-type"]
    assert alerts(answer)[0].startswith("Password must not contain your email address")
    assert new not in answer.text
    assert events("auth.password_changed") == []


def test_wrong_passwords_lock_the_form_as_failed_logins_do(
    b: httpx.Client, settings: Callable[..., Settings]
) -> None:
    settings(MAX_FAILED_LOGINS=2)
    page = b.get("/account/password")
    for _ in range(2):
        wrong = post_form(
            b, page, "/account/password", current_password="wrong", new_password=NEW_PASSWORD
        )
        assert wrong.status_code == 400
    locked = post_form(
        b, page, "/account/password", current_password=PASSWORD, new_password=NEW_PASSWORD
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert events("auth.password_changed") == []


@pytest.mark.parametrize("path", ["/account/profile", "/account/email", "/account/password"])
def test_a_forged_or_missing_csrf_token_changes_nothing(
    b: httpx.Client, client: TestClient, user: User, path: str
) -> None:
    attacker = browser(client)
    forged = {
        **form_fields(attacker.get("/account/login").text),
        "full_name": "Mallory",
        "email": "mallory@example.com",
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
    }
    assert b.post(path, data=forged).status_code == 403
    assert (
        b.post(path, data={k: v for k, v in forged.items() if k != "csrf_token"}).status_code == 403
    )
    after = fresh_user(user.email)
    assert after.full_name is None and after.pending_email is None
    assert login(client, user.email, PASSWORD)


def test_a_post_after_the_session_ended_goes_to_the_login(
    b: httpx.Client, client: TestClient, user: User
) -> None:
    page = b.get("/account/profile")
    other = browser(client)
    signed_in_overview(other, user.email)
    post_form(
        other,
        other.get("/account/password"),
        "/account/password",
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
    )
    answer = post_form(b, page, "/account/profile", full_name="Late")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account/login?next=%2Faccount%2Fprofile"
    assert fresh_user(user.email).full_name is None
