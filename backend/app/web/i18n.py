"""The language of a hosted page (ACCOUNT.md, "Language"): the first supported one of the
authorization request's `ui_locales`, the `lang` cookie (set by the language menu, see
web/language.py), `Accept-Language`; else English.

The choice is made once per request and kept on `request.state`, so every page and mail of
that request speaks one language; a route that knows the authorization request calls
`choose(request, auth.ui_locales)` before rendering."""

from typing import TypedDict
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request

from app.core import i18n
from app.web.cookies import read_cookie

LANG_COOKIE = "lang"
LANG_PATH = "/lang"
LANG_MAX_AGE = 365 * 24 * 3600


def choose(request: Request, ui_locales: str | None = None) -> str:
    """Negotiate the request's language (ui_locales > lang cookie > Accept-Language > en)
    and keep it for the rest of the request."""
    locale = (
        i18n.from_ui_locales(ui_locales)
        or i18n.first_supported([read_cookie(request, LANG_COOKIE)])
        or i18n.from_accept_language(request.headers.get("accept-language"))
        or i18n.DEFAULT_LOCALE
    )
    request.state.locale = locale
    return locale


def preference(request: Request) -> str | None:
    """The request's languages as it states them, unresolved (cheap: every request's actor
    carries them, for the mails it may cause): the page's chosen locale, else the `lang`
    cookie, else Accept-Language; None when it states none."""
    chosen = getattr(request.state, "locale", None)
    if isinstance(chosen, str):
        return chosen
    stated = read_cookie(request, LANG_COOKIE) or request.headers.get("accept-language")
    return stated[: i18n.MAX_ACCEPT_LANGUAGE] if stated else None


def locale_of(request: Request) -> str:
    """The request's language: the one chosen already, or negotiated now without
    ui_locales."""
    chosen = getattr(request.state, "locale", None)
    return chosen if isinstance(chosen, str) else choose(request)


class Language(TypedDict):
    code: str
    name: str
    href: str
    current: bool


def here(request: Request) -> str:
    """The address that shows the current page again: the one a route set on
    `request.state.here` (the authorization request's, for the answer of a login form),
    else the page itself for a GET, its path for a form's answer."""
    chosen = getattr(request.state, "here", None)
    if isinstance(chosen, str):
        return chosen
    if request.method == "GET" and request.url.query:
        return f"{request.url.path}?{request.url.query}"
    return request.url.path


def menu(locale: str, target: str) -> list[Language]:
    """The language menu: a link per language to `/lang`, which sets the cookie and comes
    back to `target`, whose own `ui_locales` (an authorization or logout request's) says
    the chosen language, so the request it came with does not overrule the choice."""
    path, _, query = target.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True) if "ui_locales=" in query else []
    same = quote(target, safe="")  # the usual case: no ui_locales, one target for all

    def back(code: str) -> str:
        if not pairs:
            return same
        chosen = [(name, code if name == "ui_locales" else value) for name, value in pairs]
        return quote(f"{path}?{urlencode(chosen)}", safe="")

    return [
        Language(
            code=code,
            name=i18n.language_name(code),
            href=f"{LANG_PATH}?to={code}&next={back(code)}",
            current=code == locale,
        )
        for code in i18n.LOCALES
    ]
