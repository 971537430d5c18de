"""/account/forgot-password and /account/reset-password: recovery as the API does it (the
same answer for every address, the same limits and audit), a mailed link whose GET spends
nothing, one reset per token even when posted twice at once, and the login page of the
request this browser was signing in to afterwards."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.action_token import TokenPurpose
from app.models.user import User
from app.web.account import messages
from tests.utils import PASSWORD, api
from tests.utils.account import events, expire_tokens, tokens_of
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    form_fields,
    inputs,
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

NEW_PASSWORD = "a-brand-new-password"


def ask_for_link(
    b: httpx.Client, email: str, query: dict[str, str] | None = None
) -> httpx.Response:
    page = b.get("/account/forgot-password", params=query or {})
    assert page.status_code == 200, page.text
    return post_form(b, page, "/account/forgot-password", email=email)


def test_the_forgot_password_form_has_its_field_and_label(client: TestClient) -> None:
    page = browser(client).get("/account/forgot-password")
    assert_account_headers(page)
    assert inputs(page) == {"email": "username"}


def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(
    client: TestClient, user: User, mailbox: Mailbox
) -> None:
    known = ask_for_link(browser(client), user.email)
    unknown = ask_for_link(browser(client), "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = lambda r: r.text.replace(form_fields(r.text).get("csrf_token", "-"), "")  # noqa: E731
    assert strip(known) == strip(unknown)
    mailbox.wait(1)
    assert [m["To"] for m in mailbox.messages] == [user.email]
    assert [e.detail.get("mailed") for e in events("auth.password_reset_requested")] in (
        [True, False],
        [False, True],
    )


def test_a_malformed_address_reshows_the_form(client: TestClient) -> None:
    b = browser(client)
    for bad in ("not-an-address", "x" * 5000):
        answer = post_form(
            b, b.get("/account/forgot-password"), "/account/forgot-password", email=bad
        )
        assert answer.status_code == 422
        assert alerts(answer) == [messages.INVALID_EMAIL]


def test_recovery_requests_count_against_the_apis_limit(
    client: TestClient, user: User, mailbox: Mailbox, settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_PASSWORD_RECOVERY="1/hour")
    assert (
        client.post(api("/auth/password-recovery"), json={"email": user.email}).status_code == 202
    )
    limited = ask_for_link(browser(client), user.email)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert alerts(limited)[0].startswith("Too many attempts")


def test_the_link_shows_the_form_without_spending_the_token(
    client: TestClient, user: User, mailbox: Mailbox
) -> None:
    ask_for_link(browser(client), user.email)
    token = mailed_token(mailbox, user.email, "/account/reset-password")
    b = browser(client)
    for _ in range(3):  # a mail scanner, a preview, the person
        page = b.get("/account/reset-password", params={"token": token})
        assert page.status_code == 200
        assert_account_headers(page)
        assert inputs(page) == {"password": "new-password"}
        assert form_fields(page.text)["token"] == token
    assert all(row.used_at is None for row in tokens_of(TokenPurpose.RESET_PASSWORD))
    answer = post_form(b, page, "/account/reset-password", password=NEW_PASSWORD)
    assert answer.status_code == 200 and is_login_page(answer)
    assert notices(answer) == [messages.PASSWORD_RESET]
    assert len(events("auth.password_reset")) == 1
    assert submit_login(b, answer, user.email, NEW_PASSWORD).status_code == 303
    # spent now: the link's page says so, with the way to a new one
    spent = b.get("/account/reset-password", params={"token": token})
    assert spent.status_code == 400 and alerts(spent) == [messages.LINK_INVALID]
    assert link(spent, messages.ASK_NEW_LINK) == "/account/forgot-password"


def test_after_the_reset_the_login_page_is_that_of_the_pending_request(
    client: TestClient, db: Session, user: User, mailbox: Mailbox
) -> None:
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered))
    b = browser(client)
    login = b.get(started.url)
    href = link(login, "Forgot password?")
    assert href is not None
    sent = post_form(b, b.get(href), "/account/forgot-password", email=user.email)
    assert sent.status_code == 200
    token = mailed_token(mailbox, user.email, "/account/reset-password")
    page = b.get("/account/reset-password", params={"token": token})  # the same browser
    answer = post_form(b, page, "/account/reset-password", password=NEW_PASSWORD)
    assert is_login_page(answer) and "Example App" in answer.text
    assert form_fields(answer.text)["request"] == started.url.split("?", 1)[1]
    assert "authsvc_pending" in answer.headers["set-cookie"]  # forgotten now
    params = redirect_params(submit_login(b, answer, user.email, NEW_PASSWORD))
    assert params["state"] == started.state and "code" in params


def test_in_another_browser_the_reset_ends_on_the_accounts_login(
    client: TestClient, db: Session, user: User, mailbox: Mailbox
) -> None:
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered))
    ask_for_link(browser(client), user.email, {"request": started.url.split("?", 1)[1]})
    token = mailed_token(mailbox, user.email, "/account/reset-password")
    other = browser(client)
    page = other.get("/account/reset-password", params={"token": token})
    answer = post_form(other, page, "/account/reset-password", password=NEW_PASSWORD)
    assert is_login_page(answer) and form_fields(answer.text)["next"] == "/account"


def test_a_bad_new_password_reshows_the_form_and_keeps_the_link(
    client: TestClient, user: User, mailbox: Mailbox
) -> None:
    ask_for_link(browser(client), user.email)
    token = mailed_token(mailbox, user.email, "/account/reset-password")
    b = browser(client)
    page = b.get("/account/reset-password", params={"token": token})
    for bad in ("short", "p" * 9000):
        answer = post_form(b, page, "/account/reset-password", password=bad)
        assert answer.status_code == 422 and form_fields(answer.text)["token"] == token
        assert alerts(answer)
    assert post_form(b, page, "/account/reset-password", password=NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 600, "a\x00b"])
def test_a_bad_link_is_a_clear_page(client: TestClient, token: str) -> None:
    b = browser(client)
    page = b.get("/account/reset-password", params={"token": token})
    assert page.status_code == 400 and alerts(page) == [messages.LINK_INVALID]
    assert_account_headers(page)
    forms = b.get("/account/forgot-password")
    posted = b.post(
        "/account/reset-password",
        data={
            "csrf_token": form_fields(forms.text)["csrf_token"],
            "token": token,
            "password": NEW_PASSWORD,
        },
    )
    assert posted.status_code == 400 and alerts(posted) == [messages.LINK_INVALID]


def test_an_expired_link_is_a_clear_page(client: TestClient, user: User, mailbox: Mailbox) -> None:
    ask_for_link(browser(client), user.email)
    token = mailed_token(mailbox, user.email, "/account/reset-password")
    b = browser(client)
    page = b.get("/account/reset-password", params={"token": token})
    expire_tokens(TokenPurpose.RESET_PASSWORD)
    assert b.get("/account/reset-password", params={"token": token}).status_code == 400
    answer = post_form(b, page, "/account/reset-password", password=NEW_PASSWORD)
    assert answer.status_code == 400 and alerts(answer) == [messages.LINK_INVALID]
    assert events("auth.password_reset") == []


def test_a_forged_csrf_token_resets_nothing(
    client: TestClient, user: User, mailbox: Mailbox
) -> None:
    ask_for_link(browser(client), user.email)
    token = mailed_token(mailbox, user.email, "/account/reset-password")
    victim, attacker = browser(client), browser(client)
    victim.get("/account/forgot-password")
    attackers = form_fields(attacker.get("/account/reset-password", params={"token": token}).text)
    answer = victim.post("/account/reset-password", data={**attackers, "password": NEW_PASSWORD})
    assert answer.status_code == 403
    assert events("auth.password_reset") == []


def test_the_same_token_posted_twice_at_once_resets_once(
    client: TestClient, user: User, mailbox: Mailbox, settings: Callable[..., Settings]
) -> None:
    settings(RATE_LIMIT_ENABLED=False)
    ask_for_link(browser(client), user.email)
    token = mailed_token(mailbox, user.email, "/account/reset-password")
    b = browser(client)
    page = b.get("/account/reset-password", params={"token": token})
    data = {**form_fields(page.text), "password": NEW_PASSWORD}
    cookies = dict(b.cookies)

    def post(password: str) -> int:
        # not closed: closing a client closes the app's shared test transport, and with it
        # the other thread's request in flight
        racer = browser(client)
        racer.cookies.update(cookies)
        answer = racer.post("/account/reset-password", data={**data, "password": password})
        return answer.status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(post, [NEW_PASSWORD, "another-new-password"]))
    assert statuses == [200, 400]
    assert len(events("auth.password_reset")) == 1
    works = [
        client.post(api("/auth/login"), data={"username": user.email, "password": p}).status_code
        for p in (NEW_PASSWORD, "another-new-password", PASSWORD)
    ]
    assert sorted(works) == [200, 401, 401]
