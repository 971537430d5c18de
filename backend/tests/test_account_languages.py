"""The account pages speak the language of the other hosted pages (the pending request's
ui_locales, the `lang` cookie, Accept-Language), with the same language menu, and the mails
they cause go in the page's language."""

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.user import User
from tests.utils.account_pages import alerts, post_form, signed_in_overview
from tests.utils.mailbox import Mailbox
from tests.utils.oidc import browser, make_client, oauth_client, start

pytestmark = pytest.mark.usefixtures("oidc_issuer")


def test_an_account_page_follows_accept_language_with_the_language_menu(
    client: TestClient,
) -> None:
    page = browser(client).get("/account/forgot-password", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    assert page.headers["content-language"] == "fr"
    assert '<html lang="fr">' in page.text
    assert "Mot de passe oublié\u00a0?" in page.text
    assert 'hreflang="de"' in page.text and "/lang?to=de" in page.text


def test_a_refusal_on_an_account_page_is_translated(client: TestClient) -> None:
    b = browser(client)
    b.headers["Accept-Language"] = "de"
    page = b.get("/account/forgot-password")
    answer = post_form(b, page, "/account/forgot-password", email="not-an-address")
    assert answer.status_code == 422
    assert alerts(answer) == ["Geben Sie eine gültige E-Mail-Adresse ein."]


def test_the_pending_requests_ui_locales_comes_first(client: TestClient, db: Session) -> None:
    oauth = oauth_client(client, make_client(db))
    query = start(oauth, ui_locales="es").url.split("?", 1)[1]
    page = browser(client).get(
        "/account/forgot-password", params={"request": query}, headers={"Accept-Language": "de"}
    )
    assert page.status_code == 200
    assert page.headers["content-language"] == "es"


def test_the_navigation_of_a_signed_in_account_is_translated(
    client: TestClient, user: User
) -> None:
    b = browser(client)
    assert b.get("/lang", params={"to": "de", "next": "/account"}).status_code in (302, 303)
    overview = signed_in_overview(b, user.email)
    assert overview.headers["content-language"] == "de"
    assert "Übersicht" in overview.text and "Konto löschen" in overview.text


def test_a_mail_caused_from_an_account_page_is_in_its_language(
    client: TestClient, user: User, mailbox: Mailbox
) -> None:
    b = browser(client)
    b.headers["Accept-Language"] = "es"
    page = b.get("/account/forgot-password")
    answer = post_form(b, page, "/account/forgot-password", email=user.email)
    assert answer.status_code == 200
    mailbox.wait(1)
    message = mailbox.last_to(user.email)
    assert "restablece tu contraseña" in message["Subject"]
    assert "/account/reset-password?token=" in message.get_body(("plain",)).get_content()
