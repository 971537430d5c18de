"""Redirect and post-logout URIs are read as browsers read them (WHATWG URL, OIDC.md
revision 2): one that a browser would send elsewhere than the host Python checks (a
backslash, userinfo, a host written in another form), or with control characters or
spaces, is refused at registration: the API (POST and PATCH), `manage client create` and
the console's client form, all through the model's validator."""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import get_engine
from app.models.client import OAuthClient
from app.models.user import User
from tests.test_cli import manage
from tests.test_console import post, snapshot
from tests.utils import api
from tests.utils.console import alert, csrf, sign_in

NAME = "Near miss"

REFUSED = [
    # A backslash: browsers read it as a slash, so the rest is a path and `evil` the host.
    "http://evil\\@127.0.0.1/cb",
    "https://evil.example\\@app.example.com/cb",
    "https://app.example.com\\evil.example/cb",
    "http://127.0.0.1/cb\\..\\x",
    # Userinfo, empty or not: the host is not what a reader of the URI sees first.
    "http://user@127.0.0.1/cb",
    "http://:@127.0.0.1/cb",
    "https://@app.example.com/cb",
    "https://app.example.com:pw@evil.example/cb",
    "http://127.0.0.1:8765@evil.example/cb",
    # IPv4 in forms Python does not take for an address and browsers read as 127.0.0.1
    # (with http, refused before as not loopback; with https, registered until now).
    "http://127.1/cb",
    "https://127.1/cb",
    "https://0x7f.0.0.1/cb",
    "https://0177.0.0.1/cb",
    "https://2130706433/cb",
    "https://127.0.0.01/cb",
    "https://1.2.3/cb",
    "http://[0:0:0:0:0:0:0:1]/cb",
    # Percent-encoded or Unicode host characters, which browsers decode or map.
    "https://app%2eexample.com/cb",
    "https://%61pp.example.com/cb",
    "https://evil.example%2f.app.example.com/cb",
    "https://\uff41pp.example.com/cb",  # full-width a
    "https://app.example.com\u3002evil.example/cb",  # ideographic full stop
    "https://app\u00adexample.com/cb",  # soft hyphen
    "https://ex\u00e4mple.com/cb",  # an international name not in its xn-- form
    # Control characters and spaces, which browsers strip or encode.
    "https://app.example.com/c\tb",
    "https://app.example.com/cb\n",
    "https://app.example.com/c\x7fb",
    "https://app.example.com/\x85cb",
    "\u00a0https://app.example.com/cb",
    "https://app.example.com /cb",
    "https://app.example.com:99999/cb",
]


pytestmark = pytest.mark.usefixtures("oidc_issuer")


ACCEPTED = [
    "http://127.0.0.1:8765/cb",
    "http://[::1]:8080/cb",
    "http://localhost:3000/cb",
    "https://App.Example.com/cb",
    "https://app.example.com:443/cb",
    "https://xn--exmple-cua.com/cb",
    "https://app.example.com/cb?next=a@b",
    "https://app.example.com/users/@me/cb",
    "https://app.example.com/p%20q",
]


@pytest.mark.parametrize("uri", REFUSED)
def test_a_uri_browsers_read_otherwise_is_refused_by_the_api(
    client: TestClient, admin_headers: dict[str, str], uri: str
) -> None:
    for field in ("redirect_uris", "post_logout_redirect_uris"):
        body = {"name": NAME, "redirect_uris": ["https://app.example.com/cb"], field: [uri]}
        created = client.post(api("/clients"), json=body, headers=admin_headers)
        assert created.status_code == 422, (field, created.text)
    registered = client.post(
        api("/clients"),
        json={"name": NAME, "redirect_uris": ["https://app.example.com/cb"]},
        headers=admin_headers,
    ).json()
    for field in ("redirect_uris", "post_logout_redirect_uris"):
        changed = client.patch(
            api(f"/clients/{registered['client_id']}"), json={field: [uri]}, headers=admin_headers
        )
        assert changed.status_code == 422, (field, changed.text)
    stored = client.get(api(f"/clients/{registered['client_id']}"), headers=admin_headers).json()
    assert stored["redirect_uris"] == ["https://app.example.com/cb"]
    assert stored["post_logout_redirect_uris"] == []


@pytest.mark.parametrize("uri", ACCEPTED)
def test_uris_that_read_alike_are_still_registered_as_given(
    client: TestClient, admin_headers: dict[str, str], uri: str
) -> None:
    body = {"name": NAME, "redirect_uris": [uri], "post_logout_redirect_uris": [uri]}
    created = client.post(api("/clients"), json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["redirect_uris"] == created.json()["post_logout_redirect_uris"] == [uri]


def test_manage_client_create_refuses_them_in_one_line(tmp_path: Path) -> None:
    for option, uri, reason in (
        ("--redirect-uri", "http://evil\\@127.0.0.1/cb", "backslash"),
        ("--post-logout-redirect-uri", "http://user@127.0.0.1/bye", "user name or password"),
        ("--redirect-uri", "http://127.1/cb", "browsers read it"),
    ):
        args = ["client", "create", NAME, "--redirect-uri", "https://app.example.com/cb"]
        if option == "--redirect-uri":
            args = ["client", "create", NAME]
        result = manage(*args, option, uri, cwd=tmp_path)
        assert result.returncode == 2, result.stdout
        message = " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())  # Rich's box
        assert reason in message and "Traceback" not in result.stderr
    with Session(get_engine()) as session:
        assert session.exec(select(OAuthClient).where(OAuthClient.name == NAME)).first() is None


def test_the_console_client_form_refuses_them(client: TestClient, admin: User) -> None:
    b, html = sign_in(client, admin.email)
    before = snapshot()
    form = {
        "name": NAME,
        "redirect_uris": "http://evil\\@127.0.0.1/cb",
        "grant": "authorization_code",
    }
    answer = post(b, "/admin/clients", form, csrf(html))
    assert answer.status_code == 422
    assert "backslash" in (alert(answer.text) or "")
    assert snapshot() == before
