"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at the discovered
end_session_endpoint: registered post_logout_redirect_uri only, state carried back, the
browser session and the OAuth sessions it approved ended, a CSRF-bound confirmation page
without a valid id_token_hint."""

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.models.client import ClientCreated
from app.models.user import User
from app.oauth import tokens as oauth_tokens
from tests.utils import PASSWORD, api, auth_header
from tests.utils.account import events
from tests.utils.oidc import (
    ISSUER,
    browser,
    exchange,
    form_fields,
    is_login_page,
    make_client,
    oauth_client,
    redirect_params,
    refresh_grant,
    sign_in,
    start,
)

AFTER_LOGOUT = "https://app.example.com/signed-out"


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


def end_session_endpoint(client: TestClient) -> str:
    url = client.get("/.well-known/openid-configuration").json()["end_session_endpoint"]
    return url.removeprefix(ISSUER)


def registered_app(db: Session, name: str = "Example App") -> ClientCreated:
    return make_client(db, name=name, first_party=True, post_logout_redirect_uris=[AFTER_LOGOUT])


def signed_in(
    client: TestClient, b: httpx.Client, registered: ClientCreated, user: User
) -> dict[str, Any]:
    """Tokens of `registered` after a sign-in in browser `b` (or SSO if it has a session)."""
    oauth = oauth_client(client, registered, scope="openid offline_access account")
    started = start(oauth)
    first = b.get(started.url)
    answer = sign_in(b, started.url, user.email, PASSWORD) if is_login_page(first) else first
    code = redirect_params(answer)["code"]
    tokens = exchange(client, registered, code, started.verifier).json()
    assert tokens["refresh_token"] and tokens["id_token"]
    return tokens


def live(client: TestClient, registered: ClientCreated, tokens: dict[str, Any]) -> bool:
    """Whether the tokens' session still works (users/me with the access token)."""
    me = client.get(api("/users/me"), headers=auth_header(tokens["access_token"]))
    return me.status_code == 200


def has_browser_session(client: TestClient, b: httpx.Client, registered: ClientCreated) -> bool:
    started = start(oauth_client(client, registered))
    return not is_login_page(b.get(started.url))


def test_logout_with_id_token_hint_ends_the_browser_session_and_what_it_approved(
    client: TestClient, db: Session, user: User
) -> None:
    app, other_app = registered_app(db), registered_app(db, "Other App")
    b, elsewhere = browser(client), browser(client)
    tokens = signed_in(client, b, app, user)
    sso = signed_in(client, b, other_app, user)  # single sign-on: the same browser session
    kept = signed_in(client, elsewhere, app, user)  # another browser: another session

    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": AFTER_LOGOUT,
            "state": "s-123",
        }
    )
    answer = b.get(f"{end_session_endpoint(client)}?{query}")
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == AFTER_LOGOUT
    assert parse_qs(location.query) == {"state": ["s-123"]}
    assert "__Host-authsvc_session=" in answer.headers["set-cookie"]
    assert "max-age=0" in answer.headers["set-cookie"].lower()

    assert not live(client, app, tokens) and not live(client, other_app, sso)
    refused = refresh_grant(client, other_app, sso["refresh_token"])
    assert refused.json()["error"] == "invalid_grant"
    assert not has_browser_session(client, b, app)
    assert live(client, app, kept) and has_browser_session(client, elsewhere, app)
    [event] = events("auth.logout")
    assert event.detail["scope"] == "end_session" and event.subject_id == user.id


def test_logout_by_post_and_with_an_expired_id_token_hint(
    client: TestClient, db: Session, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RPs post the same parameters as a form; the hint is the ID token of the sign-in,
    long expired by then (ID tokens live minutes)."""
    monkeypatch.setattr(oauth_tokens, "ID_TOKEN_LIFETIME_S", -60)
    app, b = registered_app(db), browser(client)
    tokens = signed_in(client, b, app, user)
    answer = b.post(
        end_session_endpoint(client),
        data={
            "id_token_hint": tokens["id_token"],
            "client_id": app.client_id,
            "post_logout_redirect_uri": AFTER_LOGOUT,
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == AFTER_LOGOUT
    assert not live(client, app, tokens)


@pytest.mark.parametrize(
    "uri",
    [
        AFTER_LOGOUT + "/",
        AFTER_LOGOUT + "?next=1",
        "https://evil.example.com/signed-out",
        "https://app.example.com/callback",  # a redirect_uri, not a post-logout one
    ],
)
def test_an_unregistered_post_logout_redirect_uri_gets_no_redirect(
    client: TestClient, db: Session, user: User, uri: str
) -> None:
    app, b = registered_app(db), browser(client)
    tokens = signed_in(client, b, app, user)
    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri, "state": "x"}
    answer = b.get(end_session_endpoint(client), params=params)
    assert answer.status_code == 200 and "location" not in answer.headers
    assert "You are signed out" in answer.text
    assert not live(client, app, tokens)


def test_without_a_valid_hint_the_user_confirms_on_a_csrf_bound_page(
    client: TestClient, db: Session, user: User
) -> None:
    app, b = registered_app(db), browser(client)
    tokens = signed_in(client, b, app, user)
    params = {
        "id_token_hint": "not-an-id-token",
        "client_id": app.client_id,
        "post_logout_redirect_uri": AFTER_LOGOUT,
        "state": "abc",
    }
    page = b.get(end_session_endpoint(client), params=params)
    assert page.status_code == 200 and "Sign out?" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert app.name in page.text and user.email in page.text
    fields = form_fields(page.text)
    assert fields["csrf_token"] and "id_token_hint" not in fields
    assert live(client, app, tokens)  # nothing ended before the user confirms

    forged = b.post(
        end_session_endpoint(client), data={**fields, "csrf_token": "forged", "action": "logout"}
    )
    assert forged.status_code == 403 and live(client, app, tokens)
    other_browser = browser(client)  # the form posted from elsewhere: not bound to it
    assert other_browser.post(end_session_endpoint(client), data=fields).status_code == 403

    confirmed = b.post(end_session_endpoint(client), data={**fields, "action": "logout"})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == AFTER_LOGOUT + "?state=abc"
    assert not live(client, app, tokens) and not has_browser_session(client, b, app)


def test_a_hint_for_another_client_than_client_id_is_refused(
    client: TestClient, db: Session, user: User
) -> None:
    app, other, b = registered_app(db), registered_app(db, "Other"), browser(client)
    tokens = signed_in(client, b, app, user)
    params = {"id_token_hint": tokens["id_token"], "client_id": other.client_id}
    answer = b.get(end_session_endpoint(client), params=params)
    assert answer.status_code == 400 and live(client, app, tokens)


def test_a_browser_without_a_session_is_sent_back_at_once(client: TestClient, db: Session) -> None:
    app = registered_app(db)
    params = {"client_id": app.client_id, "post_logout_redirect_uri": AFTER_LOGOUT, "state": "z"}
    answer = browser(client).get(end_session_endpoint(client), params=params)
    assert answer.status_code == 302 and answer.headers["location"] == AFTER_LOGOUT + "?state=z"
    assert events("auth.logout") == []


def test_a_hint_of_another_user_leaves_this_browser_signed_in(
    client: TestClient, db: Session, user: User, user_factory: Callable[..., User]
) -> None:
    """The hint's own browser session ends; the browser's session, another user's, stays."""
    other_user = user_factory(email="other@example.com")
    app = registered_app(db)
    mine, theirs = browser(client), browser(client)
    my_tokens = signed_in(client, mine, app, user)
    their_tokens = signed_in(client, theirs, app, other_user)
    answer = mine.get(
        end_session_endpoint(client), params={"id_token_hint": their_tokens["id_token"]}
    )
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers or "authsvc_session" not in answer.headers.get(
        "set-cookie", ""
    )
    assert live(client, app, my_tokens) and has_browser_session(client, mine, app)
    assert not live(client, app, their_tokens)
