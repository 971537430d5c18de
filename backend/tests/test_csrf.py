"""CSRF, the one module for the hosted pages and the console: a token is valid only with the
binding cookie of the browser it was made for, and only for its purpose (pages, or the
console of one browser session)."""

import uuid

from starlette.requests import Request
from starlette.responses import Response

from app.web import csrf
from app.web.cookies import CSRF_COOKIE, cookie_name


def _request(binding: str | None) -> Request:
    headers = []
    if binding is not None:
        headers.append((b"cookie", f"{cookie_name(CSRF_COOKIE)}={binding}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_a_new_browser_gets_a_binding_and_its_token_is_valid_with_it() -> None:
    token, binding = csrf.form_token(_request(None))
    assert binding is not None
    response = Response()
    csrf.bind(response, binding)
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert csrf.valid(_request(binding), token)


def test_a_known_browser_keeps_its_binding() -> None:
    token, new = csrf.form_token(_request("the-binding"))
    assert new is None and csrf.valid(_request("the-binding"), token)


def test_a_token_is_refused_with_another_binding_none_or_tampered() -> None:
    token, _ = csrf.form_token(_request("mine"))
    assert not csrf.valid(_request("theirs"), token)
    assert not csrf.valid(_request(None), token)
    assert not csrf.valid(_request("mine"), None)
    assert not csrf.valid(_request("mine"), token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not csrf.valid(_request("mine"), token + "0" * 200)


def test_pages_and_console_tokens_do_not_stand_for_each_other() -> None:
    session = uuid.uuid4()
    page, _ = csrf.form_token(_request("b"))
    console, _ = csrf.form_token(_request("b"), session_id=session)
    assert page != console
    assert not csrf.valid(_request("b"), page, session_id=session)
    assert not csrf.valid(_request("b"), console)
    assert not csrf.valid(_request("b"), console, session_id=uuid.uuid4())  # a new sign-in
    assert csrf.valid(_request("b"), console, session_id=session)
