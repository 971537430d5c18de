"""What every management page of the account holds to (sessions, applications,
organizations, two-factor, passkeys, export, deletion, invitation): never stored, framed or
referred; every input labelled; every form refused without this browser's CSRF token (403);
an oversized field a 4xx, never a 500; the navigation names each page."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.models.user import User
from tests.utils.account_pages import (
    assert_account_headers,
    form_fields,
    inputs,
    nav_paths,
    signed_in_overview,
)
from tests.utils.oidc import browser

pytestmark = pytest.mark.usefixtures("oidc_issuer")

PAGES = [
    "/account/sessions",
    "/account/apps",
    "/account/organizations",
    "/account/mfa",
    "/account/passkeys",
    "/account/delete",
]
FORMS = {
    "/account/sessions/end": ("session",),
    "/account/sessions/end-others": (),
    "/account/apps/revoke": ("client_id",),
    "/account/organizations/leave": ("organization",),
    "/account/mfa/setup": ("password",),
    "/account/mfa/confirm": ("code",),
    "/account/mfa/disable": ("password", "code"),
    "/account/passkeys/options": (),
    "/account/passkeys": ("name", "credential"),
    "/account/passkeys/rename": ("passkey", "name"),
    "/account/passkeys/delete": ("passkey",),
    "/account/delete": ("password", "code"),
    "/account/invitation": ("token",),
}


@pytest.fixture(autouse=True)
def no_rate_limit(settings: Callable[..., Settings]) -> None:
    settings(RATE_LIMIT_ENABLED=False)


def test_every_page_is_in_the_navigation_and_the_overview(client: TestClient, user: User) -> None:
    overview = signed_in_overview(browser(client), user.email)
    for path in [*PAGES, "/account/export"]:
        assert path in nav_paths()
        assert f'<a href="{path}">' in overview.text


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_hardened_and_labelled(client: TestClient, user: User, path: str) -> None:
    b = browser(client)
    assert b.get(path).status_code == 303  # to the login, without a session
    signed_in_overview(b, user.email)
    page = b.get(path)
    assert page.status_code == 200
    assert_account_headers(page)
    inputs(page)  # each visible input has its <label for>
    assert "style=" not in page.text and "<script>" not in page.text
    assert f'<a href="{path}" aria-current="page">' in page.text


@pytest.mark.parametrize("path", sorted(FORMS))
def test_every_form_needs_this_browsers_csrf_token(
    client: TestClient, user: User, path: str
) -> None:
    b = browser(client)
    signed_in_overview(b, user.email)
    fields = {name: "x" for name in FORMS[path]}
    assert b.post(path, data=fields).status_code == 403
    forged = b.post(path, data={**fields, "csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert_account_headers(forged)


@pytest.mark.parametrize("path", sorted(path for path, names in FORMS.items() if names))
def test_an_oversized_field_is_a_4xx(client: TestClient, user: User, path: str) -> None:
    b = browser(client)
    page = signed_in_overview(b, user.email)
    token = form_fields(page.text)["csrf_token"]
    for size in (5_000, 300_000):
        fields = {name: "7" * size for name in FORMS[path]}
        answer = b.post(path, data={**fields, "csrf_token": token})
        assert answer.status_code in (303, 400, 403, 404, 409, 413, 422), (path, size, answer)
        assert answer.status_code < 500
