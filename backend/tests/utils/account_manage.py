"""Helpers for the tests of the account's management pages (sessions, apps, organizations,
MFA, passkeys, deletion, export, invitations): a third-party application the person
consented to, with its tokens, and the rows of a page's list."""

import re
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.client import ClientCreated
from app.models.user import User
from tests.utils import PASSWORD
from tests.utils.oidc import (
    browser,
    exchange,
    make_client,
    oauth_client,
    redirect_params,
    start,
    submit,
    submit_login,
)


@dataclass
class Consented:
    """A third-party client the person allowed, and the tokens its exchange gave."""

    registered: ClientCreated
    tokens: dict[str, Any]


def consented_app(
    client: TestClient,
    db: Session,
    user: User,
    *,
    name: str = "Photo Printer",
    scope: str = "openid email profile offline_access",
    b: httpx.Client | None = None,
) -> Consented:
    """Register a third-party client, sign in to it (in browser `b`, else a new one), allow
    it on the consent page, exchange the code: an OAuth session of the person."""
    registered = make_client(db, name=name)
    started = start(oauth_client(client, registered, scope=scope))
    b = b or browser(client)
    page = submit_login(b, b.get(started.url), user.email, PASSWORD)
    assert page.status_code == 200 and "/oauth/authorize/consent" in page.text, page.text
    answer = submit(b, page, "/oauth/authorize/consent", action="allow")
    code = redirect_params(answer)["code"]
    tokens = exchange(client, registered, code, started.verifier)
    assert tokens.status_code == 200, tokens.text
    return Consented(registered=registered, tokens=tokens.json())


class _Rows(HTMLParser):
    """The text of each item of the page's list (`<ul class="rows">`), nested lists within."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[list[str]] = []
        self.depth = 0  # open <ul> elements inside the rows list (1: the list itself)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "ul" and (self.depth or ("class", "rows") in attrs):
            self.depth += 1
        elif tag == "li" and self.depth == 1:
            self.items.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and self.items:
            self.items[-1].append(data)


def rows(response: httpx.Response) -> list[str]:
    """The text of each item of the page's list (class="rows"), tags removed."""
    parser = _Rows()
    parser.feed(response.text)
    return [" ".join(" ".join(item).split()) for item in parser.items]


def hidden_values(response: httpx.Response, name: str) -> list[str]:
    """Every value of the hidden field `name` on the page (one per row's form)."""
    pattern = rf'<input type="hidden" name="{re.escape(name)}" value="([^"]*)">'
    return [unescape(value) for value in re.findall(pattern, response.text)]
