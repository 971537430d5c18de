"""The account pages' shell: /account behind the hosted login (one login flow, back to the
page asked for), the headers of every account answer, CSRF on every form, the sign-out, and
`next` that never leaves the service."""

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select
from starlette.responses import PlainTextResponse, Response

from app.db import get_engine
from app.models.common import utcnow
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from app.web import pages
from app.web.account import messages
from app.web.account.access import RecentAccountUser
from app.web.account.rendering import account_router
from app.web.continuation import local_path
from tests.test_mfa import code_at, enable_totp
from tests.test_oidc_amr import passkey_of, passkey_step
from tests.utils import PASSWORD
from tests.utils.account import events
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    follow,
    form_fields,
    is_login_page,
    post_form,
    sign_in,
    signed_in_overview,
)
from tests.utils.oidc import ISSUER, browser, submit_login

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def test_the_account_page_asks_for_the_login_and_comes_back_to_it(
    client: TestClient, db: Session, user: User
) -> None:
    user.full_name = "Ada Lovelace"
    db.add(user)
    db.commit()
    b = browser(client)
    first = b.get("/account")
    assert first.status_code == 303
    assert first.headers["location"] == "/account/login?next=%2Faccount"
    login = b.get(first.headers["location"])
    assert is_login_page(login)
    assert form_fields(login.text)["next"] == "/account"
    assert "request" not in form_fields(login.text)

    answer = submit_login(b, login, user.email, PASSWORD)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    overview = b.get("/account")
    assert overview.status_code == 200
    assert "Ada Lovelace" in overview.text and user.email in overview.text
    assert "not verified" in overview.text
    assert 'action="/account/sign-out"' in overview.text
    assert len(events("auth.login_succeeded")) == 1


def test_the_overview_says_when_the_address_is_verified(
    client: TestClient, user_factory: Callable[..., User]
) -> None:
    verified = user_factory(email="v@example.com", is_verified=True)
    overview = signed_in_overview(browser(client), verified.email)
    assert ">verified<" in overview.text and "not verified" not in overview.text


def test_a_deeper_page_is_what_the_login_comes_back_to(client: TestClient, user: User) -> None:
    b = browser(client)
    first = b.get("/account?tab=1")
    assert first.headers["location"] == "/account/login?next=%2Faccount%3Ftab%3D1"
    answer = submit_login(b, b.get(first.headers["location"]), user.email, PASSWORD)
    assert answer.headers["location"] == "/account?tab=1"


def test_a_signed_in_browser_skips_the_login_page(client: TestClient, user: User) -> None:
    b = browser(client)
    signed_in_overview(b, user.email)
    again = b.get("/account/login", params={"next": "/account"})
    assert again.status_code == 303 and again.headers["location"] == "/account"


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/account",
        "//evil.example/account",
        "/\\evil.example",
        "\\\\evil.example",
        "/account/../oauth/authorize",
        "/account/%2e%2e/admin",
        "/accounts",
        "/admin",
        "javascript:alert(1)",
        "/account\r\nLocation: https://evil.example",
        "/account#https://evil.example",
        "",
    ],
)
def test_next_never_leaves_the_account_pages(
    client: TestClient, user: User, next_path: str
) -> None:
    b = browser(client)
    answer = sign_in(b, user.email, next_path=next_path)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    assert b.get("/account/login", params={"next": next_path}).headers["location"] == "/account"
    # a `next` posted with the login form directly (not from the page) is checked as well
    other = browser(client)
    page = other.get("/account/login")
    posted = post_form(
        other,
        page,
        "/oauth/authorize/login",
        next=next_path,
        email=user.email,
        password=PASSWORD,
    )
    assert posted.headers["location"] == "/account"


def test_local_path_keeps_only_pages_of_this_service_below_the_prefix() -> None:
    assert local_path("/account") == "/account"
    assert local_path("/account/profile?x=1") == "/account/profile?x=1"
    assert local_path("/admin/users", under="/admin") == "/admin/users"
    for bad in ("/account/x/../../admin", "/account/\x00", "x" * 2000, "/account/" + "a" * 1100):
        assert local_path(bad) is None


def test_the_login_with_a_second_factor_comes_back_to_the_account(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    secret, _recovery = enable_totp(client, user_headers)
    b = browser(client)
    second = sign_in(b, user.email)
    assert second.status_code == 200 and 'name="code"' in second.text
    assert form_fields(second.text)["next"] == "/account"
    wrong = post_form(b, second, "/oauth/authorize/mfa", code="000000")
    assert wrong.status_code == 400 and form_fields(wrong.text)["next"] == "/account"
    answer = post_form(b, wrong, "/oauth/authorize/mfa", code=code_at(secret, 1))
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    assert b.get("/account").status_code == 200


def test_a_passkey_sign_in_comes_back_to_the_account(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    device = passkey_of(client, user_headers)
    b = browser(client)
    page = b.get("/account/login", params={"next": "/account"})
    assert 'action="/oauth/authorize/passkey"' in page.text
    answer = passkey_step(b, page, device)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    assert b.get("/account").status_code == 200
    broken = post_form(b, page, "/oauth/authorize/passkey", flow_id="x", credential="{")
    assert broken.status_code == 400 and form_fields(broken.text)["next"] == "/account"


def test_every_account_answer_is_never_stored_framed_or_referred(
    client: TestClient, user: User
) -> None:
    b = browser(client)
    assert_account_headers(b.get("/account"))  # the redirect to the login
    assert_account_headers(b.get("/account/login"))
    overview = signed_in_overview(b, user.email)
    assert_account_headers(overview)
    forged = b.post("/account/sign-out", data={"csrf_token": "forged"})
    assert_account_headers(forged)
    assert forged.status_code == 403
    assert '<meta name="referrer" content="no-referrer">' in overview.text
    assert "http://" not in overview.text and "https://" not in overview.text  # no asset elsewhere


def test_a_form_without_this_browsers_csrf_token_is_refused(client: TestClient, user: User) -> None:
    victim, attacker = browser(client), browser(client)
    signed_in_overview(victim, user.email)
    attackers_page = attacker.get("/account/login")
    forged = victim.post("/account/sign-out", data=form_fields(attackers_page.text))
    assert forged.status_code == 403
    assert alerts(forged) == [messages.EXPIRED_FORM]
    missing = victim.post("/account/sign-out", data={})
    assert missing.status_code == 403
    assert victim.get("/account").status_code == 200  # still signed in


def test_signing_out_ends_the_browser_session(client: TestClient, db: Session, user: User) -> None:
    b = browser(client)
    overview = signed_in_overview(b, user.email)
    out = post_form(b, overview, "/account/sign-out")
    assert out.status_code == 200 and "signed out" in out.text
    assert "__Host-authsvc_session=" in out.headers["set-cookie"]
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert len(events("auth.logout")) == 1
    rows = db.exec(select(AuthSession).where(col(AuthSession.user_id) == user.id)).all()
    assert rows and all(row.revoked_at is not None for row in rows)
    assert b.get("/account").status_code == 303


def test_signing_out_without_a_session_goes_to_the_login(client: TestClient) -> None:
    b = browser(client)
    page = b.get("/account/login")
    answer = post_form(b, page, "/account/sign-out")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/account/login?next=%2Faccount%2Fsign-out")


# --- a page that needs a recent login (the rule RecentAccountUser keeps) ---------------------


@pytest.fixture
def recent_app() -> Iterator[TestClient]:
    """An app with one page behind RecentAccountUser, on the suite's database."""
    router = account_router()

    @router.get("/recent")
    def recent(request: Request, account: RecentAccountUser) -> Response:
        return PlainTextResponse(f"recent {account.user.email}")

    app = FastAPI()
    app.include_router(router)
    pages.install(app)
    with TestClient(app, base_url=ISSUER) as test_client:
        yield test_client


def _age_browser_sessions(user: User, minutes: int) -> None:
    with Session(get_engine()) as session:
        session.exec(
            update(AuthSession)
            .where(
                col(AuthSession.user_id) == user.id, col(AuthSession.kind) == SessionKind.BROWSER
            )
            .values(auth_time=utcnow() - timedelta(minutes=minutes))
        )
        session.commit()


def test_a_page_needing_a_recent_login_asks_for_the_login_again(
    client: TestClient, recent_app: TestClient, user: User
) -> None:
    b = browser(client)
    signed_in_overview(b, user.email)
    recent_app.cookies = b.cookies
    fresh = recent_app.get("/account/recent", follow_redirects=False)
    assert fresh.status_code == 200 and fresh.text == f"recent {user.email}"

    _age_browser_sessions(user, minutes=6)
    stale = recent_app.get("/account/recent", follow_redirects=False)
    assert stale.status_code == 303
    assert stale.headers["location"] == "/account/login?next=%2Faccount%2Frecent&prompt=login"
    assert_account_headers(stale)
    again = b.get(stale.headers["location"])
    assert is_login_page(again)  # not skipped, though the session is live
    assert f'value="{user.email}"' in again.text
    answer = submit_login(b, again, user.email, PASSWORD)
    assert answer.headers["location"] == "/account/recent"
    recent_app.cookies = b.cookies
    assert recent_app.get("/account/recent", follow_redirects=False).status_code == 200
    assert follow(b, b.get("/account")).status_code == 200
