"""The hosted login page's links to create an account (while registration is open) and to
recover a password, each keeping where the sign-in goes on: the pending authorization
request, or the account page."""

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from tests.utils.account_pages import link, link_params
from tests.utils.oidc import browser, make_client, oauth_client, start

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def test_the_links_keep_the_pending_authorization_request(client: TestClient, db: Session) -> None:
    registered = make_client(db, first_party=True)
    started = start(oauth_client(client, registered))
    page = browser(client).get(started.url)
    query = urlsplit(started.url).query
    for text, path in (
        ("Create account", "/account/sign-up"),
        ("Forgot password?", "/account/forgot-password"),
    ):
        href = link(page, text)
        assert href is not None and urlsplit(href).path == path
        assert link_params(href) == {"request": query}


def test_the_links_of_the_account_login_keep_the_page(client: TestClient) -> None:
    page = browser(client).get("/account/login", params={"next": "/account/profile"})
    for text in ("Create account", "Forgot password?"):
        href = link(page, text)
        assert href is not None and link_params(href) == {"next": "/account/profile"}


def test_no_create_account_link_while_registration_is_closed(
    client: TestClient, settings: Callable[..., Settings]
) -> None:
    settings(USERS_OPEN_REGISTRATION=False)
    page = browser(client).get("/account/login")
    assert link(page, "Create account") is None
    assert link(page, "Forgot password?") is not None
