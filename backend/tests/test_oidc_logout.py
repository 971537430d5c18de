"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at the discovered
end_session_endpoint: registered post_logout_redirect_uri only, state carried back, the
browser session and the OAuth sessions it approved ended, a CSRF-bound confirmation page
unless an id_token_hint names the browser's own session, never another browser's session
ended (OIDC.md revision 2), and what the OpenID conformance suite's
oidcc-rp-initiated-logout-* tests check."""

import base64
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
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


def test_without_a_hint_the_user_confirms_on_a_csrf_bound_page(
    client: TestClient, db: Session, user: User
) -> None:
    app, b = registered_app(db), browser(client)
    tokens = signed_in(client, b, app, user)
    params = {
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


@pytest.mark.parametrize("expired", [False, True], ids=["fresh hint", "expired hint"])
@pytest.mark.parametrize("attacker", [None, "another user", "the same user"])
def test_a_hint_from_another_browser_ends_nothing_but_that_browsers_own_session(
    client: TestClient,
    db: Session,
    user: User,
    user_factory: Callable[..., User],
    monkeypatch: pytest.MonkeyPatch,
    attacker: str | None,
    expired: bool,
) -> None:
    """The victim's ID token presented by another browser (without a session, or with its
    own): the confirmation page, and confirming ends that browser's session only."""
    if expired:
        monkeypatch.setattr(oauth_tokens, "ID_TOKEN_LIFETIME_S", -60)
    app, other_app = registered_app(db), registered_app(db, "Other App")
    victim, elsewhere = browser(client), browser(client)
    tokens = signed_in(client, victim, app, user)
    sso = signed_in(client, victim, other_app, user)
    own: dict[str, Any] | None = None
    if attacker is not None:
        who = user if attacker == "the same user" else user_factory(email="mallory@example.com")
        own = signed_in(client, elsewhere, app, who)

    params = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": AFTER_LOGOUT,
        "state": "s-1",
    }
    page = elsewhere.get(end_session_endpoint(client), params=params)
    assert page.status_code == 200 and "location" not in page.headers
    assert "Sign out?" in page.text and app.name in page.text
    if attacker != "the same user":
        assert user.email not in page.text  # whose session the hint names is not shown
    fields = form_fields(page.text)
    assert fields["csrf_token"] and "id_token_hint" not in fields
    assert live(client, app, tokens) and live(client, other_app, sso)
    assert has_browser_session(client, victim, app)
    assert own is None or live(client, app, own)
    assert events("auth.logout") == []

    confirmed = elsewhere.post(end_session_endpoint(client), data={**fields, "action": "logout"})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == AFTER_LOGOUT + "?state=s-1"
    assert live(client, app, tokens) and live(client, other_app, sso)
    assert has_browser_session(client, victim, app)
    if own is not None:
        assert not live(client, app, own) and not has_browser_session(client, elsewhere, app)
        [event] = events("auth.logout")
        assert event.detail["sessions"] == 2  # that browser's and the one OAuth session it began
    else:
        assert events("auth.logout") == []


@pytest.mark.parametrize(
    ("expired_for", "asks"),
    [(timedelta(days=1) - timedelta(minutes=5), False), (timedelta(days=1, minutes=5), True)],
    ids=["within the session lifetime", "beyond it"],
)
def test_a_hint_is_accepted_expired_for_at_most_the_browser_session_lifetime(
    client: TestClient,
    db: Session,
    user: User,
    settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    expired_for: timedelta,
    asks: bool,
) -> None:
    """Browser sessions live REFRESH_TOKEN_EXPIRE_DAYS; a hint older than that is no hint."""
    settings(REFRESH_TOKEN_EXPIRE_DAYS=1)
    monkeypatch.setattr(oauth_tokens, "ID_TOKEN_LIFETIME_S", -int(expired_for.total_seconds()))
    app, b = registered_app(db), browser(client)
    tokens = signed_in(client, b, app, user)
    params = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": AFTER_LOGOUT,
        "state": "s-2",
    }
    answer = b.get(end_session_endpoint(client), params=params)
    if asks:
        assert answer.status_code == 200 and "Sign out?" in answer.text
        assert "location" not in answer.headers
        assert live(client, app, tokens) and has_browser_session(client, b, app)
    else:
        assert answer.status_code == 302
        assert answer.headers["location"] == AFTER_LOGOUT + "?state=s-2"
        assert not live(client, app, tokens) and not has_browser_session(client, b, app)


def modified(id_token: str, part: str) -> str:
    """The ID token with its signature, or its claims (`sub`), changed."""
    header, payload, signature = id_token.split(".")
    if part == "signature":
        flipped = "A" if signature[0] != "A" else "B"
        return f"{header}.{payload}.{flipped}{signature[1:]}"
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


@pytest.mark.parametrize("part", ["signature", "claims"])
@pytest.mark.parametrize("with_client_id", [False, True])
def test_oidcc_rp_initiated_logout_modified_id_token_hint(
    client: TestClient, db: Session, user: User, part: str, with_client_id: bool
) -> None:
    """oidcc-rp-initiated-logout-modified-id-token-hint: no logout, no redirect."""
    app, b = registered_app(db), browser(client)
    tokens = signed_in(client, b, app, user)
    params = {
        "id_token_hint": modified(tokens["id_token"], part),
        "post_logout_redirect_uri": AFTER_LOGOUT,
        "state": "s-3",
    }
    if with_client_id:
        params["client_id"] = app.client_id
    for answer in (
        b.get(end_session_endpoint(client), params=params),
        b.post(end_session_endpoint(client), data=params),
        browser(client).get(end_session_endpoint(client), params=params),
    ):
        assert answer.status_code == 400 and "location" not in answer.headers
        assert "Sign out?" not in answer.text
        assert "authsvc_session" not in answer.headers.get("set-cookie", "")
    assert live(client, app, tokens) and has_browser_session(client, b, app)
    assert events("auth.logout") == []


LOGOUT_WITH_QUERY = "https://app.example.com/signed-out?from=op"


def logout_with_hint(
    client: TestClient, db: Session, user: User, params: dict[str, str], location: str | None
) -> None:
    """The same browser's ID token as the hint, with `params`: signed out at once, then
    redirected to `location`, or (None) shown our signed-out page."""
    app = make_client(
        db, first_party=True, post_logout_redirect_uris=[AFTER_LOGOUT, LOGOUT_WITH_QUERY]
    )
    b = browser(client)
    tokens = signed_in(client, b, app, user)
    answer = b.get(
        end_session_endpoint(client), params={"id_token_hint": tokens["id_token"], **params}
    )
    if location is None:
        assert answer.status_code == 200 and "location" not in answer.headers
        assert "You are signed out" in answer.text
    else:
        assert answer.status_code == 302 and answer.headers["location"] == location
    assert "max-age=0" in answer.headers["set-cookie"].lower()
    assert not live(client, app, tokens) and not has_browser_session(client, b, app)


def test_oidcc_rp_initiated_logout(client: TestClient, db: Session, user: User) -> None:
    params = {"post_logout_redirect_uri": AFTER_LOGOUT, "state": "s"}
    logout_with_hint(client, db, user, params, AFTER_LOGOUT + "?state=s")


def test_oidcc_rp_initiated_logout_no_state(client: TestClient, db: Session, user: User) -> None:
    logout_with_hint(client, db, user, {"post_logout_redirect_uri": AFTER_LOGOUT}, AFTER_LOGOUT)


def test_oidcc_rp_initiated_logout_no_post_logout_redirect_uri(
    client: TestClient, db: Session, user: User
) -> None:
    logout_with_hint(client, db, user, {"state": "s"}, None)


def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(
    client: TestClient, db: Session, user: User
) -> None:
    """No redirect to an unregistered URI (more such URIs in the test above)."""
    params = {"post_logout_redirect_uri": "https://app.example.com/elsewhere", "state": "s"}
    logout_with_hint(client, db, user, params, None)


def test_a_post_logout_redirect_uri_registered_with_a_query_keeps_it(
    client: TestClient, db: Session, user: User
) -> None:
    params = {"post_logout_redirect_uri": LOGOUT_WITH_QUERY, "state": "s"}
    logout_with_hint(client, db, user, params, LOGOUT_WITH_QUERY + "&state=s")


def confirm_and_stay(client: TestClient, db: Session, user: User, params: dict[str, str]) -> None:
    """Without a hint the user confirms on our page, and stays here: signed out, no
    redirect (without a hint or client_id a post_logout_redirect_uri cannot be checked)."""
    app, b = registered_app(db), browser(client)
    tokens = signed_in(client, b, app, user)
    page = b.get(end_session_endpoint(client), params=params)
    assert page.status_code == 200 and "Sign out?" in page.text
    assert live(client, app, tokens)
    confirmed = b.post(end_session_endpoint(client), data=form_fields(page.text))
    assert confirmed.status_code == 200 and "location" not in confirmed.headers
    assert "You are signed out" in confirmed.text
    assert not live(client, app, tokens) and not has_browser_session(client, b, app)


def test_oidcc_rp_initiated_logout_no_params(client: TestClient, db: Session, user: User) -> None:
    confirm_and_stay(client, db, user, {})


def test_oidcc_rp_initiated_logout_only_state(client: TestClient, db: Session, user: User) -> None:
    confirm_and_stay(client, db, user, {"state": "s"})


def test_oidcc_rp_initiated_logout_no_id_token_hint(
    client: TestClient, db: Session, user: User
) -> None:
    confirm_and_stay(client, db, user, {"post_logout_redirect_uri": AFTER_LOGOUT, "state": "s"})


def test_oidcc_rp_initiated_logout_discovery_endpoint_verification(client: TestClient) -> None:
    url = client.get("/.well-known/openid-configuration").json()["end_session_endpoint"]
    assert url == f"{ISSUER}/oauth/logout" and url.startswith("https://")
