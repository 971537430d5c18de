"""Mailed links (ACCOUNT.md, "Mailed links"): with FRONTEND_URL unset (the default) they
open the hosted pages at PUBLIC_URL/account/...; with it set, the frontend's pages as
before."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.auth import mails
from app.core.config import Settings, get_settings
from app.models.user import User
from tests.utils import PASSWORD, api, auth_header, login
from tests.utils.mailbox import Mailbox, html_of, text_of
from tests.utils.oidc import ISSUER

pytestmark = pytest.mark.usefixtures("oidc_issuer")

HOSTED = {
    mails.RESET_PAGE: "/account/reset-password",
    mails.VERIFY_PAGE: "/account/verify-email",
    mails.CHANGE_PAGE: "/account/email/confirm",
    mails.INVITATION_PAGE: "/account/invitation",
}
FRONTEND = {
    mails.RESET_PAGE: "/reset-password",
    mails.VERIFY_PAGE: "/verify-email",
    mails.CHANGE_PAGE: "/verify-email",
    mails.INVITATION_PAGE: "/invitation",
}


def test_frontend_url_is_unset_by_default() -> None:
    assert Settings(_env_file=None).FRONTEND_URL is None  # type: ignore[call-arg]
    assert Settings(_env_file=None, FRONTEND_URL="").FRONTEND_URL is None  # type: ignore[call-arg]


def test_unset_the_links_open_the_hosted_pages() -> None:
    assert get_settings().FRONTEND_URL is None
    for page, path in HOSTED.items():
        assert mails.link(page, "t0k-en") == f"{ISSUER}{path}?token=t0k-en"


def test_set_the_links_open_the_frontend_as_before(settings: Callable[..., Settings]) -> None:
    settings(FRONTEND_URL="https://app.example.com")
    for page, path in FRONTEND.items():
        assert mails.link(page, "t0k-en") == f"https://app.example.com{path}?token=t0k-en"


def test_the_mails_carry_the_hosted_links(client: TestClient, user: User, mailbox: Mailbox) -> None:
    client.post(api("/auth/password-recovery"), json={"email": user.email})
    reset = mailbox.last_to(user.email)
    assert f"{ISSUER}/account/reset-password?token=" in text_of(reset)
    assert f'href="{ISSUER}/account/reset-password?token=' in html_of(reset)
    headers = auth_header(login(client, user.email))
    body = {"email": "moved@example.com", "current_password": PASSWORD}
    assert client.patch(api("/users/me"), headers=headers, json=body).status_code == 200
    change = mailbox.last_to("moved@example.com")
    assert f"{ISSUER}/account/email/confirm?token=" in text_of(change)


def test_with_a_frontend_the_mails_link_there(
    client: TestClient, user: User, mailbox: Mailbox, settings: Callable[..., Settings]
) -> None:
    settings(FRONTEND_URL="https://app.example.com")
    client.post(api("/auth/password-recovery"), json={"email": user.email})
    assert "https://app.example.com/reset-password?token=" in text_of(mailbox.last_to(user.email))
