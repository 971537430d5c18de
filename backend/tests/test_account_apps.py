"""/account/apps: the third-party clients the person consented to, with their scopes by the
consent page's descriptions; revoking one withdraws the consent (the next sign-in asks
again), ends its sessions at once, and is audited."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.client import OAuthConsent
from app.models.session import AuthSession
from app.models.user import User
from tests.utils.account import events
from tests.utils.account_manage import consented_app, hidden_values, rows
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    notices,
    post_form,
    signed_in_overview,
)
from tests.utils.oidc import (
    browser,
    make_client,
    oauth_client,
    redirect_params,
    refresh_grant,
    start,
    submit_login,
)

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def _consents(db: Session, user: User) -> list[OAuthConsent]:
    db.expire_all()
    return list(db.exec(select(OAuthConsent).where(col(OAuthConsent.user_id) == user.id)).all())


def test_the_page_lists_consented_apps_with_their_scopes(
    client: TestClient, db: Session, user: User
) -> None:
    consented_app(client, db, user, name="Photo Printer", scope="openid email offline_access")
    consented_app(client, db, user, name="Calendar Sync", scope="openid profile")
    make_client(db, name="Our Own App", first_party=True)  # no consent: not listed
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/apps")
    assert listed.status_code == 200
    assert_account_headers(listed)
    shown = rows(listed)
    assert len(shown) == 2
    assert shown[0].startswith("Calendar Sync") and "See your name" in shown[0]
    assert "See your email address" not in shown[0]
    assert shown[1].startswith("Photo Printer")
    assert "See your email address" in shown[1]
    assert "Keep access while you are away (stay signed in)" in shown[1]
    assert "Revoke access" in shown[1]


def test_an_account_without_consents_says_so(client: TestClient, user: User) -> None:
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/apps")
    assert rows(listed) == [] and "You have not allowed any application." in listed.text


def test_revoking_ends_the_apps_sessions_and_consent(
    client: TestClient, db: Session, user: User
) -> None:
    printer = consented_app(client, db, user, name="Photo Printer")
    calendar = consented_app(client, db, user, name="Calendar Sync")
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/apps")
    client_id = printer.registered.client_id
    assert client_id in hidden_values(listed, "client_id")

    answer = post_form(b, listed, "/account/apps/revoke", client_id=client_id)
    assert answer.status_code == 303 and answer.headers["location"] == "/account/apps?done=revoked"
    after = b.get(answer.headers["location"])
    assert notices(after) == ["The application's access is revoked and its sessions have ended."]
    assert [text.split()[0] for text in rows(after)] == ["Calendar"]
    assert [c.client_id for c in _consents(db, user)] == [calendar.registered.client_id]

    refused = refresh_grant(client, printer.registered, printer.tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    kept = refresh_grant(client, calendar.registered, calendar.tokens["refresh_token"])
    assert kept.status_code == 200
    [event] = events("oauth.consent_revoked")
    assert event.subject_id == user.id and event.actor_id == user.id
    assert event.detail == {"client_id": client_id, "sessions": 1}

    # the next sign-in to it asks for consent again
    started = start(oauth_client(client, printer.registered, scope="openid email"))
    again = b.get(started.url)
    assert again.status_code == 200 and "/oauth/authorize/consent" in again.text

    # revoked already, or never consented: the page again, 404
    for value in (client_id, "no-such-client", "x" * 5000, ""):
        gone = post_form(b, after, "/account/apps/revoke", client_id=value)
        assert gone.status_code == 404 and alerts(gone) == [
            "That application no longer has access."
        ]


def test_a_code_issued_before_the_revocation_no_longer_exchanges(
    client: TestClient, db: Session, user: User
) -> None:
    printer = consented_app(client, db, user, name="Photo Printer")
    b = browser(client)
    started = start(oauth_client(client, printer.registered, scope="openid email"))
    code = redirect_params(submit_login(b, b.get(started.url), user.email, "correct-horse-battery"))
    listed = b.get("/account/apps")
    post_form(b, listed, "/account/apps/revoke", client_id=printer.registered.client_id)
    exchanged = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code["code"],
            "redirect_uri": printer.registered.redirect_uris[0],
            "code_verifier": started.verifier,
        },
        auth=(printer.registered.client_id, str(printer.registered.client_secret)),
    )
    assert exchanged.status_code == 400
    db.expire_all()
    live = db.exec(
        select(AuthSession).where(
            col(AuthSession.client_id) == printer.registered.client_id,
            col(AuthSession.revoked_at).is_(None),
        )
    ).all()
    assert live == []


def test_revoking_twice_at_once_revokes_once(client: TestClient, db: Session, user: User) -> None:
    printer = consented_app(client, db, user, name="Photo Printer")
    b = browser(client)
    signed_in_overview(b, user.email)
    listed = b.get("/account/apps")

    cookies = dict(b.cookies)

    def revoke(_: int) -> int:
        # not closed: closing a client closes the shared transport, and with it
        # the other thread's request in flight
        twin = browser(client)
        twin.cookies.update(cookies)
        return post_form(
            twin, listed, "/account/apps/revoke", client_id=printer.registered.client_id
        ).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(revoke, range(2)))
    assert statuses == [303, 404]
    assert len(events("oauth.consent_revoked")) == 1


def test_revoking_needs_this_browsers_csrf_token(
    client: TestClient, db: Session, user: User
) -> None:
    printer = consented_app(client, db, user)
    b = browser(client)
    signed_in_overview(b, user.email)
    forged = b.post(
        "/account/apps/revoke",
        data={"csrf_token": "forged", "client_id": printer.registered.client_id},
    )
    assert forged.status_code == 403
    assert len(_consents(db, user)) == 1
