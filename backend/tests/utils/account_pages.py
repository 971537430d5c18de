"""Helpers for the hosted account pages' tests: a browser (cookie jar, https), its forms
posted with their hidden fields (CSRF token, continuation), signing in through the hosted
login, and what a page shows."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx

from app.web.account import rendering
from tests.utils import PASSWORD
from tests.utils.mailbox import Mailbox, token_in
from tests.utils.oidc import form_fields, is_login_page, submit_login

__all__ = ["form_fields", "is_login_page"]

ACCOUNT_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def post_form(b: httpx.Client, page: httpx.Response, path: str, **values: str) -> httpx.Response:
    """Post `values` with the hidden fields of `page` (its CSRF token among them)."""
    return b.post(path, data={**form_fields(page.text), **values})


def follow(b: httpx.Client, response: httpx.Response, hops: int = 5) -> httpx.Response:
    """Follow this service's own redirects (never another site's)."""
    for _ in range(hops):
        if response.status_code not in (302, 303):
            return response
        location = response.headers["location"]
        assert location.startswith("/"), location
        response = b.get(location)
    return response


def sign_in(
    b: httpx.Client, email: str, password: str = PASSWORD, *, next_path: str = "/account"
) -> httpx.Response:
    """Sign in through the hosted login for an account page; the answer after the login."""
    page = b.get("/account/login", params={"next": next_path})
    return submit_login(b, page, email, password)


def signed_in_overview(b: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    answer = sign_in(b, email, password)
    assert answer.status_code == 303 and answer.headers["location"] == "/account", answer.text
    return b.get("/account")


def assert_account_headers(response: httpx.Response) -> None:
    for name, value in ACCOUNT_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def alerts(response: httpx.Response) -> list[str]:
    """The texts a page announces as errors (role="alert")."""
    found = re.findall(r'<p class="error"[^>]*role="alert">(.*?)</p>', response.text, re.S)
    return [unescape(text) for text in found]


def notices(response: httpx.Response) -> list[str]:
    found = re.findall(r'<p class="notice" role="status">(.*?)</p>', response.text, re.S)
    return [unescape(text) for text in found]


def inputs(response: httpx.Response) -> dict[str, str]:
    """Every visible input's name and its autocomplete attribute ("" without one); each must
    have a <label for> naming it."""
    found: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", response.text):
        if 'type="hidden"' in tag:
            continue
        name = re.search(r'name="([^"]+)"', tag)
        assert name is not None, tag
        ident = re.search(r'id="([^"]+)"', tag)
        assert ident is not None and f'<label for="{ident.group(1)}">' in response.text, tag
        autocomplete = re.search(r'autocomplete="([^"]+)"', tag)
        found[name.group(1)] = autocomplete.group(1) if autocomplete else ""
    return found


def nav_paths() -> list[str]:
    return [path for path, _label in rendering.NAV]


def link(response: httpx.Response, text: str) -> str | None:
    """The href of the page's link whose text is `text` (None without one)."""
    for href, shown in re.findall(r'<a href="([^"]*)"[^>]*>(.*?)</a>', response.text, re.S):
        if unescape(shown).strip() == text:
            return unescape(href)
    return None


def link_params(href: str) -> dict[str, str]:
    """The query of a link between the hosted pages, one value per name."""
    query = urlsplit(href).query
    return {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}


def mailed_token(mailbox: Mailbox, address: str, path: str) -> str:
    """The token of the newest mail to `address`, in its link to the hosted page `path`."""
    return token_in(mailbox.last_to(address), path)
