"""Helpers for the OpenID Connect tests: clients, a browser, the hosted login form, codes
and their exchange, audit events."""

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core import keys
from app.crud import clients
from app.crud.audit import SYSTEM
from app.db import transaction
from app.models.client import DEFAULT_SCOPES, ClientCreate, ClientCreated
from app.models.user import User
from tests.utils import PASSWORD

ISSUER = "https://testserver"  # PUBLIC_URL in these tests: cookies are __Host- and Secure
REDIRECT_URI = "https://app.example.com/callback"
AUTHORIZE = f"{ISSUER}/oauth/authorize"
TOKEN = f"{ISSUER}/oauth/token"
USERINFO = f"{ISSUER}/oauth/userinfo"


# What the tests' clients are registered for unless they say: the OIDC scopes and `account`,
# the caller's own account on the service's API (an OAuth token without it gets 403 there).
TEST_SCOPES = [*DEFAULT_SCOPES, "account"]


def make_client(db: Session, **fields: Any) -> ClientCreated:
    body = {"name": "Example App", "redirect_uris": [REDIRECT_URI], "scopes": TEST_SCOPES, **fields}
    return transaction(clients.create_client, db, body=ClientCreate(**body), actor=SYSTEM)


def browser(client: TestClient) -> httpx.Client:
    """A browser of its own (cookie jar) on the app, over https, not following redirects."""
    return httpx.Client(base_url=ISSUER, transport=client._transport, follow_redirects=False)


def oauth_client(
    client: TestClient, registered: ClientCreated, *, scope: str = "openid email profile"
) -> OAuth2Client:
    """Authlib's OAuth2 client for `registered`, PKCE S256, speaking to the app."""
    return OAuth2Client(
        client_id=registered.client_id,
        client_secret=registered.client_secret,
        token_endpoint_auth_method=("none" if registered.public else "client_secret_basic"),
        redirect_uri=registered.redirect_uris[0],
        scope=scope,
        code_challenge_method="S256",
        transport=client._transport,
    )


@dataclass
class Started:
    url: str
    state: str
    verifier: str
    nonce: str


def start(oauth: OAuth2Client, **params: str) -> Started:
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = oauth.create_authorization_url(
        AUTHORIZE, code_verifier=verifier, nonce=nonce, **params
    )
    return Started(url=url, state=state, verifier=verifier, nonce=nonce)


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a hosted page's form."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    return {name: unescape(value) for name, value in fields}


def is_login_page(response: httpx.Response) -> bool:
    return (
        "text/html" in response.headers.get("content-type", "")
        and 'name="password"' in response.text
    )


def submit_login(
    b: httpx.Client, page: httpx.Response, email: str, password: str
) -> httpx.Response:
    assert is_login_page(page), page.text
    data = {**form_fields(page.text), "email": email, "password": password}
    return b.post("/oauth/authorize/login", data=data)


def submit(b: httpx.Client, page: httpx.Response, path: str, **values: str) -> httpx.Response:
    return b.post(path, data={**form_fields(page.text), **values})


def sign_in(b: httpx.Client, url: str, email: str, password: str) -> httpx.Response:
    """Open the authorization URL, post the login form; the answer after the login."""
    return submit_login(b, b.get(url), email, password)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query of a redirect to the client (asserting it is one)."""
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI) or "://" in location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(
    client: TestClient, registered: ClientCreated, user: User, scope: str = "openid"
) -> tuple[str, Started]:
    """Sign in through the hosted page; the code and how it was asked for."""
    started = start(oauth_client(client, registered, scope=scope))
    answer = sign_in(browser(client), started.url, user.email, PASSWORD)
    return redirect_params(answer)["code"], started


def exchange(
    http: httpx.Client | TestClient,
    registered: ClientCreated,
    code: str,
    verifier: str,
    *,
    redirect_uri: str = REDIRECT_URI,
    auth: tuple[str, str] | None = None,
    token_url: str = TOKEN,
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if registered.public:
        form["client_id"] = registered.client_id
    credentials = auth or (
        None if registered.public else (registered.client_id, str(registered.client_secret))
    )
    return http.post(token_url, data=form, auth=credentials)


def oauth_tokens(client: TestClient, db: Session, user: User, **fields: Any) -> dict[str, Any]:
    """Tokens of a first-party client (registered with `fields`) after a sign-in with
    offline_access; "registered" holds the client."""
    registered = make_client(db, first_party=True, **fields)
    scope = "openid email offline_access account"
    code, started = get_code(client, registered, user, scope=scope)
    tokens = exchange(client, registered, code, started.verifier).json()
    tokens["registered"] = registered
    return tokens


def refresh_grant(
    client: TestClient, registered: ClientCreated, refresh_token: str, **extra: str
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    if registered.public:
        return client.post(TOKEN, data={**form, "client_id": registered.client_id})
    return client.post(TOKEN, data=form, auth=(registered.client_id, str(registered.client_secret)))


@pytest.fixture
def fresh_keys() -> Iterator[None]:
    """The signing keys read again from the settings of the test (and after it)."""
    keys.key_set.cache_clear()
    keys.forget()
    yield
    keys.key_set.cache_clear()
    keys.forget()
