"""A real browser signs in on the hosted page: Chromium follows the authorization URL,
fills the login form, allows the third-party client, and lands on the client's redirect
URI (a local page) with a code that Authlib's client exchanges for tokens.

Needs Chromium at /usr/bin/chromium and the `browser` extra (Playwright); run with
`pytest -m browser`. Deselected by default.
"""

import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.test_docs_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS
from tests.utils.server import MANAGE, free_port, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"
PASSWORD = "browser-password-123"


class Landing(BaseHTTPRequestHandler):
    """The client application's redirect URI: a plain page."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>Client app</title><h1>Signed in</h1>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def client_app() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", free_port()), Landing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/callback"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "ENVIRONMENT": "development",  # http on loopback: cookies without Secure
        "DATABASE_URL": f"sqlite:///{tmp_path}/live.db",
        "SECRET_KEY_FILE": str(tmp_path / ".secret_key"),
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "FIRST_SUPERUSER_EMAIL": EMAIL,
        "FIRST_SUPERUSER_PASSWORD": PASSWORD,
    }
    with running_server(env, log_path=tmp_path / "server.log") as base:
        yield {**env, "base": base}


@pytest.fixture
def page(tmp_path: Path) -> Iterator["Page"]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        browser.set_default_timeout(WAIT_MS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def register_client(env: dict[str, str], redirect_uri: str) -> tuple[str, str]:
    result = subprocess.run(
        [str(MANAGE), "client", "create", "Browser Client", "--redirect-uri", redirect_uri],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=True,
    )
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    return lines["client_id"], lines["client_secret"]


def test_chromium_signs_in_on_the_hosted_page_and_lands_on_the_redirect_uri_with_a_code(
    live: dict[str, str], client_app: str, page: "Page"
) -> None:
    from playwright.sync_api import expect

    base = live["base"]
    client_id, client_secret = register_client(live, client_app)
    oauth = OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=client_app,
        scope="openid email",
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(url)
    page.fill('input[name="email"]', EMAIL)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    expect(page.locator('button[name="action"][value="allow"]')).to_be_visible()
    page.click('button[name="action"][value="allow"]')
    expect(page.locator("h1")).to_have_text("Signed in")

    assert page.url.startswith(client_app + "?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params["state"] == state and params["code"]
    token = oauth.fetch_token(
        f"{base}/oauth/token", authorization_response=page.url, code_verifier=verifier
    )
    assert token["id_token"] and token["token_type"] == "Bearer"
    hosted = [u for u in requested if not u.startswith(client_app)]
    assert all(u.startswith(f"{base}/") for u in hosted), hosted  # no external assets
    assert f"{base}/oauth/static/style.css" in hosted

    # Single sign-on: the same browser gets its next code without a form.
    again, _ = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
    page.goto(again)
    expect(page.locator("h1")).to_have_text("Signed in")
    assert "code=" in page.url
