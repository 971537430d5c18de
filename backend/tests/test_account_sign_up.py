"""/account/sign-up: the account POST /auth/register creates (same rules, limits, audit and
verification mail), then signed in and on, or, while verification is required, a page that
says to open the mail."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.user import User
from app.web.account import messages
from tests.utils import PASSWORD, register
from tests.utils.account import events, fresh_user
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    form_fields,
    inputs,
    is_login_page,
    link,
    post_form,
)
from tests.utils.mailbox import Mailbox
from tests.utils.oidc import (
    REDIRECT_URI,
    browser,
    make_client,
    oauth_client,
    redirect_params,
    start,
    submit_login,
)

pytestmark = pytest.mark.usefixtures("oidc_issuer")

NEW = {"email": "Grace@Example.com", "full_name": "Grace Hopper", "password": PASSWORD}


def test_the_form_has_the_contracts_fields_labels_and_autocomplete(client: TestClient) -> None:
    page = browser(client).get("/account/sign-up")
    assert page.status_code == 200
    assert_account_headers(page)
    assert inputs(page) == {
        "email": "username",
        "full_name": "name",
        "password": "new-password",
    }
    assert form_fields(page.text)["csrf_token"]
    assert form_fields(page.text)["next"] == "/account"


def test_signing_up_signs_in_and_goes_on_to_the_account(
    client: TestClient, mailbox: Mailbox
) -> None:
    b = browser(client)
    answer = post_form(b, b.get("/account/sign-up"), "/account/sign-up", **NEW)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    assert "__Host-authsvc_session=" in answer.headers["set-cookie"]
    overview = b.get("/account")
    assert overview.status_code == 200
    assert "grace@example.com" in overview.text and "Grace Hopper" in overview.text
    user = fresh_user("grace@example.com")
    assert [e.subject_id for e in events("user.registered")] == [user.id]
    assert [e.subject_id for e in events("auth.login_succeeded")] == [user.id]
    assert mailbox.last_to("grace@example.com")  # the verification mail, as the API sends it


def test_signing_up_goes_on_to_the_pending_authorization_request(
    client: TestClient, db: Session, mailbox: Mailbox
) -> None:
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered))
    b = browser(client)
    login = b.get(started.url)
    href = link(login, "Create account")
    assert href is not None
    sign_up = b.get(href)
    assert sign_up.status_code == 200 and "Example App" in sign_up.text
    assert form_fields(sign_up.text)["request"] == started.url.split("?", 1)[1]
    answer = post_form(b, sign_up, "/account/sign-up", **NEW)
    params = redirect_params(answer)
    assert answer.headers["location"].startswith(REDIRECT_URI)
    assert params["state"] == started.state and "code" in params


def test_a_third_party_client_still_asks_for_consent_after_sign_up(
    client: TestClient, db: Session, mailbox: Mailbox
) -> None:
    registered = make_client(db, first_party=False)
    started = start(oauth_client(client, registered))
    b = browser(client)
    page = b.get("/account/sign-up", params={"request": started.url.split("?", 1)[1]})
    answer = post_form(b, page, "/account/sign-up", **NEW)
    assert answer.status_code == 200 and 'value="allow"' in answer.text


def test_with_verification_required_the_page_says_to_open_the_mail(
    client: TestClient, mailbox: Mailbox, settings: Callable[..., Settings]
) -> None:
    settings(REQUIRE_EMAIL_VERIFICATION=True)
    b = browser(client)
    answer = post_form(b, b.get("/account/sign-up"), "/account/sign-up", **NEW)
    assert answer.status_code == 200
    assert "Check your mail" in answer.text and "grace@example.com" in answer.text
    assert "authsvc_session" not in answer.headers.get("set-cookie", "")
    assert "authsvc_pending" in answer.headers["set-cookie"]
    assert mailbox.last_to("grace@example.com")
    assert events("auth.login_succeeded") == []
    assert b.get("/account").status_code == 303  # not signed in
    refused = submit_login(b, b.get("/account/login"), "grace@example.com", PASSWORD)
    assert refused.status_code == 400 and is_login_page(refused)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", messages.INVALID_EMAIL),
        ({"email": "a" * 400 + "@example.com"}, "email", messages.INVALID_EMAIL),
        ({"password": "short"}, "password", "Use at least 8 characters."),
        ({"password": "é" * 40}, "password", "Use at most 72 bytes"),
        ({"password": "x" * 20_000}, "password", "Use at most 72 bytes"),
        ({"full_name": "n" * 300}, "full_name", "Use at most 255 characters"),
        ({"full_name": "a\x00b"}, "full_name", "Use at most 255 characters"),
        # the password policy (EVENTS.md): a common password, the person's own name
        ({"password": "password"}, "password", "Password is one of the most common"),
        ({"password": "hopper-was-here-1"}, "password", "Password must not contain your"),
    ],
)
def test_a_bad_field_reshows_the_form_with_its_message(
    client: TestClient, changes: dict[str, str], field: str, message: str
) -> None:
    b = browser(client)
    answer = post_form(b, b.get("/account/sign-up"), "/account/sign-up", **{**NEW, **changes})
    assert answer.status_code == 422
    assert any(text.startswith(message) for text in alerts(answer)), alerts(answer)
    assert f'aria-describedby="{field}-problem"' in answer.text
    assert PASSWORD not in answer.text  # the password is never shown again
    assert events("user.registered") == []


def test_a_taken_address_is_refused_as_the_api_refuses_it(client: TestClient, user: User) -> None:
    b = browser(client)
    answer = post_form(
        b, b.get("/account/sign-up"), "/account/sign-up", **{**NEW, "email": user.email.upper()}
    )
    assert answer.status_code == 409
    assert alerts(answer) == [messages.EMAIL_TAKEN]
    assert user.email.upper() in answer.text  # the form keeps what was typed


def test_sign_up_counts_against_the_apis_registration_limit(
    client: TestClient, settings: Callable[..., Settings], mailbox: Mailbox
) -> None:
    settings(RATE_LIMIT_REGISTER="2/hour")
    assert register(client, "one@example.com").status_code == 201
    b = browser(client)
    page = b.get("/account/sign-up")
    assert (
        post_form(b, page, "/account/sign-up", **{**NEW, "email": "two@example.com"}).status_code
        == 303
    )
    limited = post_form(b, page, "/account/sign-up", **{**NEW, "email": "three@example.com"})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert alerts(limited) and alerts(limited)[0].startswith("Too many attempts")
    assert register(client, "four@example.com").status_code == 429


def test_closed_registration_shows_a_clear_refusal(
    client: TestClient, settings: Callable[..., Settings]
) -> None:
    b = browser(client)
    page = b.get("/account/sign-up")
    settings(USERS_OPEN_REGISTRATION=False)
    assert b.get("/account/sign-up").status_code == 403
    refused = post_form(b, page, "/account/sign-up", **NEW)
    assert refused.status_code == 403
    assert alerts(refused) == [messages.REGISTRATION_CLOSED]
    assert events("user.registered") == []


def test_a_forged_or_missing_csrf_token_creates_nothing(client: TestClient) -> None:
    victim, attacker = browser(client), browser(client)
    victim.get("/account/sign-up")
    attackers = form_fields(attacker.get("/account/sign-up").text)
    assert victim.post("/account/sign-up", data={**attackers, **NEW}).status_code == 403
    assert victim.post("/account/sign-up", data=NEW).status_code == 403
    assert events("user.registered") == []


def test_a_request_that_no_longer_holds_is_refused_on_the_page(client: TestClient) -> None:
    b = browser(client)
    answer = b.get("/account/sign-up", params={"request": "client_id=nobody&redirect_uri=x"})
    assert answer.status_code == 400
    assert_account_headers(answer)
