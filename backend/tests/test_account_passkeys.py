"""/account/passkeys: register a passkey from the page (creation options asked with the
page's CSRF token, the browser's answer posted with its form; generated here by a software
authenticator and verified by the service as real ones), rename it, delete it, through the
ceremonies of /users/me/passkeys. Adding one needs a recent login, as the API's options
without a password do."""

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.db import get_engine
from app.models.common import utcnow
from app.models.passkey import Passkey
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from tests.utils import PASSWORD, api
from tests.utils.account import events
from tests.utils.account_manage import hidden_values, rows
from tests.utils.account_pages import (
    alerts,
    assert_account_headers,
    form_fields,
    inputs,
    is_login_page,
    notices,
    post_form,
    signed_in_overview,
)
from tests.utils.oidc import ISSUER, browser, submit_login
from tests.utils.webauthn import SoftAuthenticator

pytestmark = pytest.mark.usefixtures("oidc_issuer")

REFUSED = "That passkey could not be added. Try again."


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


@pytest.fixture
def device() -> SoftAuthenticator:
    return SoftAuthenticator(origin=ISSUER, rp_id="testserver")


def signed_in(client: TestClient, user: User) -> httpx.Client:
    b = browser(client)
    signed_in_overview(b, user.email)
    return b


def options(b: httpx.Client, page: httpx.Response) -> httpx.Response:
    """What the page's script asks for: a form post with the page's CSRF token."""
    return b.post(
        "/account/passkeys/options",
        data={"csrf_token": form_fields(page.text)["csrf_token"]},
        headers={"Accept": "application/json"},
    )


def add(
    b: httpx.Client, device: SoftAuthenticator, name: str = ""
) -> tuple[httpx.Response, dict[str, Any]]:
    page = b.get("/account/passkeys")
    started = options(b, page)
    assert started.status_code == 200, started.text
    credential = device.create(started.json())
    answer = post_form(b, page, "/account/passkeys", credential=json.dumps(credential), name=name)
    return answer, credential


def age_browser_sessions(user: User, minutes: int) -> None:
    with Session(get_engine()) as session:
        session.exec(
            update(AuthSession)
            .where(
                col(AuthSession.user_id) == user.id, col(AuthSession.kind) == SessionKind.BROWSER
            )
            .values(auth_time=utcnow() - timedelta(minutes=minutes))
        )
        session.commit()


def passkeys_of(db: Session, user: User) -> list[Passkey]:
    db.expire_all()
    return list(db.exec(select(Passkey).where(col(Passkey.user_id) == user.id)).all())


def passkey_sign_in(client: TestClient, device: SoftAuthenticator) -> httpx.Response:
    flow = client.post(api("/auth/passkey/options"), json={}).json()
    credential = device.get(flow["options"])
    return client.post(
        api("/auth/passkey/login"), json={"flow_id": flow["flow_id"], "credential": credential}
    )


def test_the_page_offers_registration_with_the_services_own_script(
    client: TestClient, user: User
) -> None:
    b = signed_in(client, user)
    page = b.get("/account/passkeys")
    assert page.status_code == 200
    assert_account_headers(page)
    assert "You have no passkey yet." in page.text
    assert inputs(page) == {"name": ""}
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script src="/oauth/static/passkey_register.js" defer>'
    ]
    assert "</script>" in page.text and "<script>" not in page.text  # no inline script
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = b.get("/oauth/static/passkey_register.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "/account/passkeys/options" in page.text


def test_a_passkey_registered_from_the_page_signs_in(
    client: TestClient, db: Session, user: User, device: SoftAuthenticator
) -> None:
    b = signed_in(client, user)
    page = b.get("/account/passkeys")
    started = options(b, page)
    assert started.status_code == 200
    assert started.headers["cache-control"] == "no-store"
    body = started.json()
    assert body["rp"]["id"] == "testserver" and body["user"]["name"] == user.email
    credential = device.create(body)
    answer = post_form(
        b, page, "/account/passkeys", credential=json.dumps(credential), name="My laptop"
    )
    assert (
        answer.status_code == 303 and answer.headers["location"] == "/account/passkeys?done=added"
    )
    after = b.get(answer.headers["location"])
    assert notices(after) == ["Your passkey is added. You can sign in with it now."]
    assert [text.split(" Added")[0] for text in rows(after)] == ["My laptop"]
    [key] = passkeys_of(db, user)
    assert key.name == "My laptop"
    assert [e.detail["passkey_id"] for e in events("passkey.registered")] == [str(key.id)]
    signed = passkey_sign_in(client, device)
    assert signed.status_code == 200 and "access_token" in signed.json()

    # the same answer again (its challenge is spent): refused, nothing stored
    replay = post_form(b, after, "/account/passkeys", credential=json.dumps(credential))
    assert replay.status_code == 400 and alerts(replay) == [REFUSED]
    assert len(passkeys_of(db, user)) == 1


def test_without_a_name_it_is_named_after_its_authenticator(
    client: TestClient, db: Session, user: User, device: SoftAuthenticator
) -> None:
    answer, _ = add(signed_in(client, user), device)
    assert answer.status_code == 303
    [key] = passkeys_of(db, user)
    assert key.name  # the authenticator's name (or the generic one)


def test_a_login_no_longer_recent_is_asked_again_before_adding(
    client: TestClient, user: User, device: SoftAuthenticator
) -> None:
    b = signed_in(client, user)
    age_browser_sessions(user, minutes=6)
    page = b.get("/account/passkeys")
    assert page.status_code == 200  # the list is shown; adding needs the login again
    assert "passkey-register-form" not in page.text
    again = "/account/login?next=%2Faccount%2Fpasskeys&amp;prompt=login"
    assert f'<a href="{again}">Sign in again</a>' in page.text
    stale = options(b, page)
    assert stale.status_code == 403
    assert stale.json() == {"login": "/account/login?next=%2Faccount%2Fpasskeys&prompt=login"}

    login = b.get(stale.json()["login"])
    assert is_login_page(login)
    answer = submit_login(b, login, user.email, PASSWORD)
    assert answer.headers["location"] == "/account/passkeys"
    added, _ = add(b, device)
    assert added.status_code == 303


def test_malformed_or_foreign_answers_are_refused_and_store_nothing(
    client: TestClient, db: Session, user: User, device: SoftAuthenticator
) -> None:
    b = signed_in(client, user)
    page = b.get("/account/passkeys")
    for bad in ("", "not json", "[]", '{"id": 1}', "x" * 70_000):
        refused = post_form(b, page, "/account/passkeys", credential=bad)
        assert refused.status_code in (400, 413), (bad[:20], refused.status_code)
    started = options(b, page).json()
    foreign = device.create(started, origin="https://evil.example")
    refused = post_form(b, page, "/account/passkeys", credential=json.dumps(foreign))
    assert refused.status_code == 400 and alerts(refused) == [REFUSED]
    started = options(b, page).json()
    named = post_form(
        b, page, "/account/passkeys", credential=json.dumps(device.create(started)), name="n" * 101
    )
    assert named.status_code == 422
    assert alerts(named) == ["Use a name of 1 to 100 characters."]
    assert passkeys_of(db, user) == []


def test_a_passkey_is_renamed_and_deleted(
    client: TestClient,
    db: Session,
    user: User,
    device: SoftAuthenticator,
    user_factory: Callable[..., User],
) -> None:
    b = signed_in(client, user)
    add(b, device, name="Old name")
    [key] = passkeys_of(db, user)
    key_id = str(key.id)
    page = b.get("/account/passkeys")
    assert hidden_values(page, "passkey") == [key_id, key_id]

    renamed = post_form(b, page, "/account/passkeys/rename", passkey=key_id, name="Phone")
    assert renamed.status_code == 303
    assert notices(b.get(renamed.headers["location"])) == ["The passkey is renamed."]
    assert passkeys_of(db, user)[0].name == "Phone"
    for bad in ("", "n" * 101):
        refused = post_form(b, page, "/account/passkeys/rename", passkey=key_id, name=bad)
        assert refused.status_code == 422
        assert alerts(refused) == ["Use a name of 1 to 100 characters."]
        assert f'id="name-{key_id}" name="name"' in refused.text

    other = user_factory(email="other@example.com")
    theirs = Passkey(
        user_id=other.id, credential_id="their-id", public_key=b"k", aaguid="0", name="x"
    )
    db.add(theirs)
    db.commit()
    for path in ("/account/passkeys/rename", "/account/passkeys/delete"):
        for value in (str(theirs.id), "not-an-id"):
            refused = post_form(b, page, path, passkey=value, name="Mine now")
            assert refused.status_code == 404
            assert alerts(refused) == ["That passkey no longer exists."]
    db.refresh(theirs)
    assert theirs.name == "x"

    deleted = post_form(b, page, "/account/passkeys/delete", passkey=key_id)
    assert deleted.status_code == 303
    assert notices(b.get(deleted.headers["location"])) == [
        "The passkey is deleted. It no longer signs you in."
    ]
    assert passkeys_of(db, user) == []
    assert [e.detail["passkey_id"] for e in events("passkey.deleted")] == [key_id]
    assert passkey_sign_in(client, device).status_code == 401
    assert post_form(b, page, "/account/passkeys/delete", passkey=key_id).status_code == 404


def test_the_forms_need_this_browsers_csrf_token(
    client: TestClient, db: Session, user: User
) -> None:
    b = signed_in(client, user)
    for path in (
        "/account/passkeys/options",
        "/account/passkeys",
        "/account/passkeys/rename",
        "/account/passkeys/delete",
    ):
        forged = b.post(path, data={"csrf_token": "forged", "name": "x", "credential": "{}"})
        assert forged.status_code == 403, path
    assert events("passkey.registered") == []
