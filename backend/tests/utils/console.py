"""Helpers for the admin console tests: a browser of its own signed in through the hosted
login, and the forms of a console page."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.testclient import TestClient

from tests.utils import PASSWORD
from tests.utils.oidc import browser, submit_login


def sign_in(client: TestClient, email: str, path: str = "/admin") -> tuple[httpx.Client, str]:
    """A new browser that opens `path`, signs in on the hosted login and comes back there;
    the browser and the page it lands on (its HTML)."""
    b = browser(client)
    first = b.get(path)
    assert first.status_code == 303, first.text
    login_page = b.get(first.headers["location"])
    answer = submit_login(b, login_page, email, PASSWORD)
    assert answer.status_code in (302, 303), answer.text
    callback = answer.headers["location"]
    assert urlsplit(callback).path == "/admin/callback", callback
    back = b.get(callback)
    assert back.status_code == 303, back.text
    assert back.headers["location"] == path
    page = b.get(path)
    assert page.status_code == 200, page.text
    return b, page.text


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return unescape(match.group(1))


def post_forms(html: str) -> list[str]:
    """The actions of the page's POST forms."""
    return re.findall(r'<form method="post" action="([^"]+)"', html)


def alert(html: str) -> str | None:
    match = re.search(r'role="alert">([^<]*)<', html)
    return unescape(match.group(1)) if match else None


def status(html: str) -> str | None:
    match = re.search(r'role="status">\s*([^<]*)<', html)
    return unescape(match.group(1)).strip() if match else None


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
