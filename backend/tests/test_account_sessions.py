"""/account/sessions: every live session with its kind (API, Browser, OAuth and the client's
name), device and last use, as GET /users/me/sessions lists them (which now says `kind`
too); end one, or all others (never this browser's own)."""

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.session import AuthSession
from app.models.user import User
from tests.utils import api, auth_header, login
from tests.utils.account import events
from tests.utils.account_manage import consented_app, hidden_values, rows
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    notices,
    post_form,
    signed_in_overview,
)
from tests.utils.oidc import browser

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def _live(db: Session, user: User) -> list[AuthSession]:
    db.expire_all()
    return list(
        db.exec(
            select(AuthSession).where(
                col(AuthSession.user_id) == user.id, col(AuthSession.revoked_at).is_(None)
            )
        ).all()
    )


def test_every_session_is_listed_with_its_kind_device_and_client(
    client: TestClient, db: Session, user: User
) -> None:
    client.post(
        api("/auth/login"),
        data={"username": user.email, "password": "correct-horse-battery"},
        headers={"User-Agent": "curl/8.5"},
    )
    app = consented_app(client, db, user, name="Photo Printer")
    b = browser(client)
    b.headers["User-Agent"] = "Firefox/130 on this laptop"
    signed_in_overview(b, user.email)

    listed = b.get("/account/sessions")
    assert listed.status_code == 200
    assert_account_headers(listed)
    shown = rows(listed)
    assert len(shown) == 4  # the API login, the consent's browser, its OAuth session, this one
    assert shown[0].startswith("Browser this browser") and "Firefox/130 on this laptop" in shown[0]
    assert sum(text.startswith("OAuth: Photo Printer") for text in shown) == 1
    assert sum(text.startswith("API") and "curl/8.5" in text for text in shown) == 1
    assert "Sign out here" in shown[0] and all("End session" in text for text in shown[1:])
    assert "End all other sessions" in listed.text
    for token in (app.tokens["access_token"], app.tokens["refresh_token"]):
        assert token not in listed.text

    # the API says the same
    mine = client.get(
        api("/users/me/sessions"), headers=auth_header(login(client, user.email))
    ).json()
    kinds = sorted((s["kind"], s["client_name"]) for s in mine)
    assert kinds == [
        ("api", None),
        ("api", None),
        ("browser", None),
        ("browser", None),
        ("oauth", "Photo Printer"),
    ]


def test_ending_a_session_stops_its_tokens_and_is_audited(
    client: TestClient, db: Session, user: User
) -> None:
    app = consented_app(client, db, user)
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/sessions")
    [oauth_row] = [r for r in _live(db, user) if r.client_id == app.registered.client_id]
    assert str(oauth_row.id) in hidden_values(listed, "session")

    ended = post_form(b, listed, "/account/sessions/end", session=str(oauth_row.id))
    assert ended.status_code == 303 and ended.headers["location"] == "/account/sessions?done=ended"
    assert_account_headers(ended)
    after = b.get(ended.headers["location"])
    assert notices(after) == ["The session has ended. Its tokens no longer work."]
    assert len(rows(after)) == len(rows(listed)) - 1
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": app.tokens["refresh_token"]},
        auth=(app.registered.client_id, str(app.registered.client_secret)),
    )
    assert refresh.status_code == 400
    [event] = events("auth.logout")
    assert event.subject_id == user.id and event.detail["session_id"] == str(oauth_row.id)

    # the same session again, another's, or no id at all: the page again, 404
    for value in (str(oauth_row.id), str(uuid.uuid4()), "not-an-id", ""):
        again = post_form(b, after, "/account/sessions/end", session=value)
        assert again.status_code == 404
        assert alerts(again) == ["That session has already ended."]


def test_another_persons_session_cannot_be_ended(
    client: TestClient, db: Session, user: User, user_factory: Callable[..., User]
) -> None:
    other = user_factory(email="other@example.com")
    theirs = login(client, other.email)
    b = browser(client)
    page = signed_in_overview(b, user.email)
    [their_row] = _live(db, other)
    refused = post_form(b, page, "/account/sessions/end", session=str(their_row.id))
    assert refused.status_code == 404
    me = client.get(api("/users/me"), headers=auth_header(theirs))
    assert me.status_code == 200


def test_ending_all_others_keeps_this_browser(client: TestClient, db: Session, user: User) -> None:
    api_tokens = login(client, user.email)
    consented_app(client, db, user)
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/sessions")
    assert len(rows(listed)) == 4

    answer = post_form(b, listed, "/account/sessions/end-others")
    assert answer.status_code == 303
    after = b.get(answer.headers["location"])
    assert after.status_code == 200  # still signed in here
    assert notices(after) == ["Your other sessions have ended. This browser stays signed in."]
    assert len(rows(after)) == 1 and "this browser" in rows(after)[0]
    assert [r.kind.value for r in _live(db, user)] == ["browser"]
    assert client.get(api("/users/me"), headers=auth_header(api_tokens)).status_code == 401
    [event] = events("auth.logout")
    assert event.detail == {"scope": "others", "sessions": 3}

    none_left = post_form(b, after, "/account/sessions/end-others")
    assert b.get(none_left.headers["location"]).text.count("You have no other session.") == 1


def test_ending_this_browsers_own_session_signs_out(client: TestClient, user: User) -> None:
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/sessions")
    [mine] = hidden_values(listed, "session")
    out = post_form(b, listed, "/account/sessions/end", session=mine)
    assert out.status_code == 200 and "signed out" in out.text
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert b.get("/account/sessions").status_code == 303  # to the login


def test_the_forms_need_this_browsers_csrf_token(
    client: TestClient, db: Session, user: User
) -> None:
    login(client, user.email)
    b = browser(client)
    signed_in_overview(b, user.email)
    for path in ("/account/sessions/end-others", "/account/sessions/end"):
        forged = b.post(path, data={"csrf_token": "forged", "session": str(uuid.uuid4())})
        assert forged.status_code == 403
        assert_account_headers(forged)
    assert len(_live(db, user)) == 2


def test_without_a_session_the_page_asks_for_the_login(client: TestClient) -> None:
    answer = browser(client).get("/account/sessions")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account/login?next=%2Faccount%2Fsessions"
