"""Every mail in the language of the request that caused it, else of the person's last
sign-in on the hosted pages, else English (ACCOUNT.md, "Language")."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth import mails
from app.core.config import Settings
from app.models.user import User
from tests.test_oidc_authorize import authorize_url
from tests.test_organizations import create_org, invite
from tests.test_recovery import recover
from tests.utils import PASSWORD, api
from tests.utils.mailbox import Mailbox, html_of, text_of
from tests.utils.oidc import browser, make_client, redirect_params, submit_login


def set_locale(db: Session, user: User, locale: str | None) -> None:
    user.locale = locale
    db.add(user)
    db.commit()


def locale_of(db: Session, user: User) -> str | None:
    db.refresh(user)
    return user.locale


def test_a_recovery_mail_speaks_the_language_of_the_request(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    response = client.post(
        api("/auth/password-recovery"),
        json={"email": user.email},
        headers={"Accept-Language": "de-DE, en;q=0.5"},
    )
    assert response.status_code == 202
    message = mailbox.last_to(user.email)
    assert message["Subject"] == "FastAPI JWT Auth: Passwort zurücksetzen"
    text = text_of(message)
    assert "das Passwort Ihres FastAPI JWT Auth-Kontos zurückzusetzen" in text
    assert "innerhalb von 60 Minuten:" in text
    assert "Ihr Passwort bleibt unverändert" in text
    assert html_of(message).startswith('<!DOCTYPE html><html lang="de">')
    assert ">Passwort zurücksetzen</a>" in html_of(message)


def test_without_a_stated_language_a_mail_is_in_english(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    recover(client, user.email)
    message = mailbox.last_to(user.email)
    assert message["Subject"] == "FastAPI JWT Auth: reset your password"
    assert "open this link within 60 minutes:" in text_of(message)


def test_the_verification_mail_of_a_registration_speaks_its_language(
    client: TestClient, mailbox: Mailbox
) -> None:
    response = client.post(
        api("/auth/register"),
        json={"email": "zoe@example.com", "password": PASSWORD},
        headers={"Accept-Language": "fr"},
    )
    assert response.status_code == 201, response.text
    message = mailbox.last_to("zoe@example.com")
    assert message["Subject"] == "FastAPI JWT Auth\u00a0: confirmez votre adresse e-mail"
    assert "Ouvrez ce lien dans les 48 heures\u00a0:" in text_of(message)


def test_plural_forms_follow_the_number(
    client: TestClient, mailbox: Mailbox, user: User, settings: Callable[..., Settings]
) -> None:
    settings(RESET_TOKEN_EXPIRE_MINUTES=1)
    client.post(
        api("/auth/password-recovery"),
        json={"email": user.email},
        headers={"Accept-Language": "es"},
    )
    text = text_of(mailbox.last_to(user.email))
    assert "abre este enlace en menos de 1 minuto:" in text


@pytest.mark.usefixtures("oidc_issuer")
def test_a_hosted_sign_in_keeps_its_language_for_later_mails(
    client: TestClient, mailbox: Mailbox, db: Session, user: User
) -> None:
    assert user.locale is None
    updated_at = user.updated_at
    b = browser(client)
    b.headers["Accept-Language"] = "es"
    page = b.get(authorize_url(make_client(db, first_party=True).client_id))
    assert "code" in redirect_params(submit_login(b, page, user.email, PASSWORD))
    assert locale_of(db, user) == "es"
    assert user.updated_at == updated_at  # the profile did not change

    recover(client, user.email)  # no language stated: the last sign-in's
    assert "restablece tu contraseña" in mailbox.last_to(user.email)["Subject"]
    mailbox.clear()
    client.post(
        api("/auth/password-recovery"),
        json={"email": user.email},
        headers={"Accept-Language": "de"},
    )
    assert "Passwort zurücksetzen" in mailbox.last_to(user.email)["Subject"]  # the request's


def test_an_email_set_by_an_admin_is_told_in_the_users_language(
    client: TestClient,
    mailbox: Mailbox,
    db: Session,
    user: User,
    admin_headers: dict[str, str],
) -> None:
    set_locale(db, user, "fr")
    old = user.email
    response = client.patch(
        api(f"/users/{user.id}"),
        headers={**admin_headers, "Accept-Language": "de"},  # the admin's: not the user's
        json={"email": "moved@example.com"},
    )
    assert response.status_code == 200, response.text
    notice = mailbox.last_to(old)
    assert notice["Subject"] == "FastAPI JWT Auth\u00a0: l\u2019adresse e-mail de votre compte"
    assert "Un administrateur a effectué ce changement." in text_of(notice)
    verification = mailbox.last_to("moved@example.com")
    assert "confirmez votre adresse e-mail" in verification["Subject"]


def test_an_email_change_mails_both_addresses_in_the_request_language(
    client: TestClient, mailbox: Mailbox, user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(
        api("/users/me"),
        headers={**user_headers, "Accept-Language": "es"},
        json={"email": "nuevo@example.com", "current_password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    mailbox.wait(2)
    assert (
        "confirma tu nueva dirección de correo" in mailbox.last_to("nuevo@example.com")["Subject"]
    )
    assert "va a cambiarse a la dirección nuevo@example.com" in text_of(mailbox.last_to(user.email))


def test_an_invitation_speaks_the_inviters_language(
    client: TestClient, mailbox: Mailbox, admin_headers: dict[str, str]
) -> None:
    create_org(client, admin_headers, slug="acme", name="Acme")
    sent = invite(client, {**admin_headers, "Accept-Language": "es"}, "acme", "ana@example.com")
    assert sent.status_code == 201, sent.text
    message = mailbox.last_to("ana@example.com")
    assert message["Subject"] == "FastAPI JWT Auth: únete a Acme"
    assert "Te han invitado a unirte a Acme en FastAPI JWT Auth." in text_of(message)
    assert "en menos de 7 días" in text_of(message)


@pytest.mark.parametrize(
    ("preferences", "expected"),
    [
        (("de", "fr"), "de"),
        ((None, "fr"), "fr"),
        (("ja", "es"), "es"),
        (("da, fr;q=0.5", None), "fr"),
        ((None, None), "en"),
        (("garbage;;;", "xx"), "en"),
    ],
)
def test_mail_locale_takes_the_first_stated_language(
    preferences: tuple[Any, ...], expected: str
) -> None:
    assert mails.mail_locale(*preferences) == expected


def test_every_mail_is_written_whole_in_each_language() -> None:
    """No English sentence left in a translated mail (beside names and the link)."""
    for locale in ("de", "fr", "es"):
        written = [
            mails.reset_password("a@example.com", "t", locale=locale),
            mails.verify_email("a@example.com", "t", locale=locale),
            mails.change_email("a@example.com", "t", locale=locale),
            mails.email_change_notice("a@example.com", "b@example.com", locale=locale),
            mails.email_change_notice("a@example.com", "b@example.com", done=True, locale=locale),
            mails.invitation("a@example.com", "t", organization="Acme", days=1, locale=locale),
        ]
        english = [
            mails.reset_password("a@example.com", "t"),
            mails.verify_email("a@example.com", "t"),
            mails.change_email("a@example.com", "t"),
            mails.email_change_notice("a@example.com", "b@example.com"),
            mails.email_change_notice("a@example.com", "b@example.com", done=True),
            mails.invitation("a@example.com", "t", organization="Acme", days=1),
        ]
        for mail, original in zip(written, english, strict=True):
            assert mail.subject != original.subject
            lines = set(original.text.splitlines()) - {"", "http://localhost:3000"}
            kept = [line for line in mail.text.splitlines() if line in lines and "://" not in line]
            assert kept == [], (locale, kept)
