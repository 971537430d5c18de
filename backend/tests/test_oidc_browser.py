"""A real browser signs in on the hosted page.

Chromium follows an authorization URL, fills the login form, allows the third-party client
and lands on the client's redirect URI with a code, which Authlib's client exchanges; and a
single-page app built on oidc-client-ts (docs/oidc.md's example) signs in, exchanges its code
across origins (CORS of the token endpoint for public clients) and calls userinfo.

Needs Chromium at /usr/bin/chromium, the `browser` extra (Playwright) and oidc-client-ts
(`npm ci --prefix backend/tests/browser`); `.ci/browser` installs all three. Run with
`pytest -m browser`. Deselected by default.
"""

import json
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

from tests.utils.browser import chromium
from tests.utils.server import MANAGE, free_port, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"
PASSWORD = "browser-password-123"
OIDC_CLIENT_TS = (
    Path(__file__).parent / "browser/node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js"
)
SPA_PAGE = """<!doctype html><title>SPA</title>
<button id="login">Sign in</button><p id="out"></p>
<script src="/oidc-client-ts.min.js"></script><script src="/config.js"></script>
<script>
const auth = new oidc.UserManager({
  authority: CONFIG.authority,
  client_id: CONFIG.client_id,
  redirect_uri: location.origin + "/callback",
  scope: "openid email",
  response_type: "code",
});
if (location.pathname === "/callback") {
  auth.signinRedirectCallback().then(async (user) => {
    const info = await fetch(CONFIG.authority + "/oauth/userinfo", {
      headers: { Authorization: "Bearer " + user.access_token },
    }).then((r) => r.json());
    document.getElementById("out").textContent = "signed in: " + info.email;
  }).catch((error) => { document.getElementById("out").textContent = "error: " + error; });
} else {
  document.getElementById("login").onclick = () => auth.signinRedirect();
}
</script>
"""


class ClientApp(HTTPServer):
    """A client application on its own origin: a plain landing page at /callback, or the
    single-page app when `spa_config` is set."""

    spa_config: dict[str, str] | None = None


class Handler(BaseHTTPRequestHandler):
    server: ClientApp

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        config = self.server.spa_config
        if config is None:
            self._send(b"<!doctype html><title>Client app</title><h1>Signed in</h1>", "text/html")
        elif path == "/oidc-client-ts.min.js":
            self._send(OIDC_CLIENT_TS.read_bytes(), "text/javascript")
        elif path == "/config.js":
            self._send(f"const CONFIG = {json.dumps(config)};".encode(), "text/javascript")
        else:
            self._send(SPA_PAGE.encode(), "text/html")

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def client_app() -> Iterator[ClientApp]:
    server = ClientApp(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def origin(app: ClientApp) -> str:
    return f"http://127.0.0.1:{app.server_port}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`manage serve` on a fresh directory, nothing configured but the first admin: its
    OpenID Connect key is generated on the spot."""
    workdir = tmp_path_factory.mktemp("oidc-live")
    env = {
        "ENVIRONMENT": "development",  # http on loopback: cookies without Secure
        "DATABASE_URL": f"sqlite:///{workdir}/live.db",
        "SECRET_KEY_FILE": str(workdir / ".secret_key"),
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "BACKEND_CORS_ORIGINS": "http://localhost:3000",  # not the SPA's origin
        "FIRST_SUPERUSER_EMAIL": EMAIL,
        "FIRST_SUPERUSER_PASSWORD": PASSWORD,
        "PUBLIC_URL": "http://127.0.0.1:{port}",  # the issuer is the server itself
    }
    with running_server(env, log_path=workdir / "server.log") as base:
        yield {**env, "base": base}


@pytest.fixture
def page(tmp_path: Path) -> Iterator["Page"]:
    with chromium(tmp_path / "profile") as context:
        yield context.new_page()


def register_client(env: dict[str, str], *args: str) -> dict[str, str]:
    """`manage client create` on the live server's database: client_id (and secret)."""
    result = subprocess.run(
        [str(MANAGE), "client", "create", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **{k: v for k, v in env.items() if k != "base"}},
        timeout=60,
        check=True,
    )
    return dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())


def sign_in(page: "Page") -> None:
    page.fill('input[name="email"]', EMAIL)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')


def test_chromium_signs_in_on_the_hosted_page_and_lands_on_the_redirect_uri_with_a_code(
    live: dict[str, str], client_app: ClientApp, page: "Page"
) -> None:
    from playwright.sync_api import expect

    base = live["base"]
    redirect_uri = origin(client_app) + "/callback"
    registered = register_client(live, "Browser Client", "--redirect-uri", redirect_uri)
    oauth = OAuth2Client(
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        redirect_uri=redirect_uri,
        scope="openid email",
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(url)
    sign_in(page)
    expect(page.locator('button[name="action"][value="allow"]')).to_be_visible()
    page.click('button[name="action"][value="allow"]')
    expect(page.locator("h1")).to_have_text("Signed in")

    assert page.url.startswith(redirect_uri + "?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params["state"] == state and params["code"] and params["iss"] == base
    token = oauth.fetch_token(
        f"{base}/oauth/token", authorization_response=page.url, code_verifier=verifier
    )
    assert token["id_token"] and token["token_type"] == "Bearer"
    hosted = [u for u in requested if not u.startswith(redirect_uri)]
    assert all(u.startswith(f"{base}/") for u in hosted), hosted  # no external assets
    assert f"{base}/oauth/static/style.css" in hosted

    # Single sign-on: the same browser gets its next code without a form.
    again, _ = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
    page.goto(again)
    expect(page.locator("h1")).to_have_text("Signed in")
    assert "code=" in page.url


def test_an_oidc_client_ts_single_page_app_signs_in_and_calls_userinfo(
    live: dict[str, str], client_app: ClientApp, page: "Page"
) -> None:
    from playwright.sync_api import expect

    assert OIDC_CLIENT_TS.is_file(), "run: npm ci --prefix backend/tests/browser"
    spa = origin(client_app)
    registered = register_client(
        live, "SPA", "--public", "--first-party", "--redirect-uri", spa + "/callback"
    )
    assert "client_secret" not in registered
    client_app.spa_config = {"authority": live["base"], "client_id": registered["client_id"]}

    page.goto(spa + "/")
    page.click("#login")
    sign_in(page)  # first-party: no consent page
    expect(page.locator("#out")).to_have_text(f"signed in: {EMAIL}")
    assert page.url.startswith(spa + "/callback")
