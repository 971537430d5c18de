"""Passkeys in a real browser: headless Chromium with a DevTools virtual authenticator (no
hardware) against the real service at http://localhost:PORT (browsers take no IP address as
a relying party ID). Run with `pytest -m browser` (`.ci/browser`)."""

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from tests.utils.browser import chromium
from tests.utils.server import running_server
from tests.utils.webauthn import b64url

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Page, Route

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"
PASSWORD = "browser-password-123"
API = "/api/v1"

# What a page of the product would run: the options go through the browser's own JSON
# helpers, the answer back as its JSON form, as @simplewebauthn/browser does.
REGISTER_JS = """async ([api, token]) => {
  const headers = {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"};
  const optionsAnswer = await fetch(`${api}/users/me/passkeys/registration/options`,
    {method: "POST", headers, body: JSON.stringify({password: PASSWORD})});
  const options = PublicKeyCredential.parseCreationOptionsFromJSON(await optionsAnswer.json());
  let credential;
  try {
    credential = await navigator.credentials.create({publicKey: options});
  } catch (error) {
    return {error: error.name};
  }
  const answer = await fetch(`${api}/users/me/passkeys/registration`,
    {method: "POST", headers, body: JSON.stringify({credential: credential.toJSON()})});
  return {status: answer.status, body: await answer.json()};
}""".replace("PASSWORD", json.dumps(PASSWORD))

SIGN_IN_JS = """async (api) => {
  const started = await (await fetch(`${api}/auth/passkey/options`,
    {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"})).json();
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(started.options);
  const credential = await navigator.credentials.get({publicKey: options});
  const answer = await fetch(`${api}/auth/passkey/login`, {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({flow_id: started.flow_id, credential: credential.toJSON()})});
  return {status: answer.status, body: await answer.json()};
}"""


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("passkeys")
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": f"sqlite:///{workdir}/live.db",
        "SECRET_KEY_FILE": str(workdir / ".secret_key"),
        "PUBLIC_URL": "http://localhost:{port}",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "FIRST_SUPERUSER_EMAIL": "root@example.com",
        "FIRST_SUPERUSER_PASSWORD": PASSWORD,
    }
    with running_server(env, log_path=workdir / "server.log") as base:
        yield base.replace("127.0.0.1", "localhost")


def add_authenticator(cdp: "CDPSession", **options: Any) -> str:
    cdp.send("WebAuthn.enable", {"enableUI": False})
    answer = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
                **options,
            }
        },
    )
    return str(answer["authenticatorId"])


@pytest.fixture
def browser_page(tmp_path: Path, live_server: str) -> Iterator[tuple["Page", "CDPSession"]]:
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        page.goto(f"{live_server}/docs")  # a page of the service's origin that may fetch its API
        yield page, context.new_cdp_session(page)


def password_login(base: str) -> str:
    answer = httpx.post(f"{base}{API}/auth/login", data={"username": EMAIL, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_register_log_out_sign_in_without_an_email_and_refusals(
    live_server: str, browser_page: tuple["Page", "CDPSession"]
) -> None:
    page, cdp = browser_page
    api = f"{live_server}{API}"
    httpx.post(f"{api}/auth/register", json={"email": EMAIL, "password": PASSWORD})
    token = password_login(live_server)
    authenticator = add_authenticator(cdp)

    registered = page.evaluate(REGISTER_JS, [api, token])
    assert registered["status"] == 201, registered
    passkey_id = registered["body"]["id"]
    # the same authenticator again: excluded by the options, refused by the browser
    assert page.evaluate(REGISTER_JS, [api, token]) == {"error": "InvalidStateError"}
    headers = {"Authorization": f"Bearer {token}"}
    assert len(httpx.get(f"{api}/users/me/passkeys", headers=headers).json()) == 1

    assert httpx.post(f"{api}/auth/logout", headers=headers).status_code == 204
    signed_in = page.evaluate(SIGN_IN_JS, api)  # no email typed: a discoverable credential
    assert signed_in["status"] == 200, signed_in
    access = signed_in["body"]["access_token"]
    me = httpx.get(f"{api}/users/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200 and me.json()["email"] == EMAIL
    assert page.evaluate(SIGN_IN_JS, api)["status"] == 200  # the counter moves on

    # a clone: the same key on another authenticator, with a lower sign count
    [original] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
        "credentials"
    ]
    assert original["signCount"] >= 2
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    clone = add_authenticator(cdp)
    cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": clone, "credential": {**original, "signCount": 0}},
    )
    assert page.evaluate(SIGN_IN_JS, api)["status"] == 401

    # deleted: the authenticator still holds it, the service no longer accepts it
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": clone})
    restored = add_authenticator(cdp)
    cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": restored, "credential": {**original, "signCount": 100}},
    )
    assert page.evaluate(SIGN_IN_JS, api)["status"] == 200
    access = {"Authorization": f"Bearer {password_login(live_server)}"}
    assert httpx.delete(f"{api}/users/me/passkeys/{passkey_id}", headers=access).status_code == 204
    assert page.evaluate(SIGN_IN_JS, api)["status"] == 401


def test_sign_in_with_a_passkey_on_the_hosted_login_page_gives_an_id_token_with_amr_hwk(
    live_server: str, browser_page: tuple["Page", "CDPSession"]
) -> None:
    """The hosted login page's "Sign in with a passkey": no email, no password; the client
    gets a code whose ID token says how the user signed in."""
    from playwright.sync_api import expect

    page, cdp = browser_page
    api = f"{live_server}{API}"
    email = "grace@example.com"
    httpx.post(f"{api}/auth/register", json={"email": email, "password": PASSWORD})
    answer = httpx.post(f"{api}/auth/login", data={"username": email, "password": PASSWORD})
    add_authenticator(cdp)
    assert page.evaluate(REGISTER_JS, [api, answer.json()["access_token"]])["status"] == 201

    admin = httpx.post(
        f"{api}/auth/login", data={"username": "root@example.com", "password": PASSWORD}
    ).json()["access_token"]
    redirect_uri = "http://127.0.0.1:9/callback"  # never reached: the browser's route answers
    client = httpx.post(
        f"{api}/clients",
        headers={"Authorization": f"Bearer {admin}"},
        json={"name": "Passkey app", "redirect_uris": [redirect_uri], "first_party": True},
    ).json()
    verifier = secrets.token_urlsafe(48)
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": redirect_uri,
            "scope": "openid email",
            "state": "xyz",
            "nonce": "n-0S6",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    landed: list[str] = []

    def callback(route: "Route") -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Signed in</h1>")

    page.route(f"{redirect_uri}*", callback)
    page.goto(f"{live_server}/oauth/authorize?{query}")
    button = page.get_by_role("button", name="Sign in with a passkey")
    expect(button).to_be_visible()
    button.click()
    expect(page.locator("h1")).to_have_text("Signed in")

    params = {k: v[0] for k, v in parse_qs(urlsplit(landed[-1]).query).items()}
    assert params["state"] == "xyz"
    token = httpx.post(
        f"{live_server}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    jwks = jwt.PyJWKClient(f"{live_server}/.well-known/jwks.json")
    id_token = token.json()["id_token"]
    key = jwks.get_signing_key_from_jwt(id_token)
    claims = jwt.decode(
        id_token, key.key, algorithms=[key.algorithm_name], audience=client["client_id"]
    )
    assert claims["amr"] == ["hwk", "user"] and claims["email"] == email
    assert claims["nonce"] == "n-0S6"
