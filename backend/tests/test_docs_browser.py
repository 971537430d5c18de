"""A real browser against the real service: Swagger UI logs in with the password flow, offline.

Needs Chromium at /usr/bin/chromium and the `browser` extra (Playwright); run with
`pytest -m browser` (`.ci/browser` installs both). Deselected by default.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.utils.browser import chromium
from tests.utils.server import running_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"
PASSWORD = "browser-password-123"
API = "/api/v1"
TITLE = "Browser Test Service"
# ReDoc's sidebar credit loads this image from the vendor; the docs CSP blocks it, nothing breaks.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a free port, with its own SQLite database and one admin to log in as."""
    workdir = tmp_path_factory.mktemp("live")
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": f"sqlite:///{workdir}/live.db",
        "SECRET_KEY_FILE": str(workdir / ".secret_key"),
        "API_V1_STR": API,
        "PROJECT_NAME": TITLE,
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "ALGORITHM": "HS256",
        "FIRST_SUPERUSER_EMAIL": EMAIL,
        "FIRST_SUPERUSER_PASSWORD": PASSWORD,
    }
    with running_server(env, log_path=workdir / "server.log") as base_url:
        yield base_url


@pytest.fixture
def page(tmp_path: Path) -> Iterator["Page"]:
    """Headless Debian Chromium with a fresh profile, driven by Playwright."""
    with chromium(tmp_path / "profile") as context:
        yield context.new_page()


def test_swagger_ui_logs_in_with_the_password_flow_and_calls_users_me(
    live_server: str, page: "Page"
) -> None:
    from playwright.sync_api import expect

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server}/docs")

    page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_contain_text(f"{API}/auth/login")
    dialog.locator("#oauth_username").fill(EMAIL)
    dialog.locator("#oauth_password").fill(PASSWORD)
    dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    expect(dialog).to_contain_text("Authorized")
    dialog.locator("button.btn-done").click()
    expect(dialog).to_have_count(0)

    operation = page.locator(
        ".opblock-get", has=page.locator(f'.opblock-summary-path[data-path="{API}/users/me"]')
    )
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table tbody tr.response")
    expect(answer.locator("td.response-col_status")).to_have_text("200")
    expect(answer.locator("td.response-col_description")).to_contain_text(f'"email": "{EMAIL}"')

    assert f"{live_server}/static-docs/swagger-ui-bundle.js" in requested
    assert f"{live_server}{API}/auth/login" in requested
    assert [url for url in requested if not url.startswith(f"{live_server}/")] == []


def test_redoc_renders_with_local_assets(live_server: str, page: "Page") -> None:
    from playwright.sync_api import expect

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server}/redoc")

    expect(page.locator("h1").first).to_contain_text(TITLE)
    expect(page.get_by_text(f"{API}/users/me").first).to_be_attached()

    assert f"{live_server}/static-docs/redoc.standalone.js" in requested
    external = [url for url in requested if not url.startswith((f"{live_server}/", "blob:"))]
    assert external in ([], [REDOCLY_LOGO])
