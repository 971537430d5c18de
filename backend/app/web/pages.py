"""Rendering the hosted pages: Jinja2 templates in the package, in the request's language
(web/i18n.py), a strict CSP, the CSRF binding of every form, and the page that answers
instead of a route (PageAnswer).

Templates translate with `{{ _("Sign in") }}`, `{{ _("Signed in as %(email)s", email=e) }}`
and `{% trans %}…{% endtrans %}` (newstyle gettext: values are escaped, and so is the
translation, which holds no markup). `{{ _(message) }}` also translates a text made in
Python and marked with `N_` (app/core/i18n.py)."""

from functools import cache, partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.core import i18n
from app.web import brand as web_brand
from app.web import csrf
from app.web import i18n as web_i18n

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# No form-action: Chromium applies it to the redirect that follows a form post, and the
# login form's answer redirects to the client.
# script-src and connect-src: the login page's own passkey.js, asking this service for
# WebAuthn options.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
# `{% trans %}` blocks collapse their whitespace (babel.cfg extracts them alike); English
# for templates rendered without `render` (the console, which stays English).
templates.policies["ext.i18n.trimmed"] = True
templates.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


@cache
def translations(locale: str) -> dict[str, Any]:
    """The template functions of one language: `gettext` (and so `_`), `ngettext`, dates."""

    def gettext(message: str, **values: Any) -> Markup:
        text = escape(i18n.translate(locale, message))
        return _filled(text, message, values) if values else text

    def ngettext(singular: str, plural: str, num: int, **values: Any) -> Markup:
        text = escape(i18n.catalog(locale).ngettext(singular, plural, num))
        return _filled(text, singular if num == 1 else plural, {"num": num, **values})

    return {
        "locale": locale,
        "gettext": gettext,
        "ngettext": ngettext,
        "format_datetime": partial(i18n.format_datetime, locale),
        "format_date": partial(i18n.format_date, locale),
    }


def _filled(translation: Markup, english: str, values: dict[str, Any]) -> Markup:
    """The translation with its values (escaped); the English text if its placeholders do
    not fit (tests/test_i18n.py checks that they do: this keeps a page from failing)."""
    try:
        return translation % values
    except (KeyError, ValueError, TypeError):
        return escape(english) % values


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    here: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A hosted page in the request's language and the service's brand (`brand.name`, also
    as `project`; `brand.logo_url`); `here` is the address that shows it again (the
    language menu comes back to it; default: web/i18n.py `here`)."""
    locale = web_i18n.locale_of(request)
    token, new_binding = csrf.form_token(request)
    brand = web_brand.current()
    html = templates.get_template(template).render(
        project=brand.name,
        brand=brand,
        csrf_token=token,
        languages=web_i18n.menu(locale, here or web_i18n.here(request)),
        **translations(locale),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Content-Language"] = locale
    csrf.bind(response, new_binding)
    return response


SIGN_IN_REFUSED = i18n.N_("This sign-in request cannot be completed")


def error_page(
    request: Request,
    message: str,
    *,
    status_code: int = 400,
    heading: str = SIGN_IN_REFUSED,
) -> HTMLResponse:
    """The error page: `heading` and `message` are English texts (marked with `N_`),
    shown translated."""
    return render(request, "error.html", status_code=status_code, heading=heading, message=message)


class PageAnswer(Exception):
    """A page that answers instead of the route (a hosted form refused before the route's own
    logic, the console's login redirect or its 403): raised by the checks, written as it is
    by the one handler `install` adds."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _answer(_request: Request, error: Exception) -> Response:
    assert isinstance(error, PageAnswer)
    return error.response


def install(app: FastAPI) -> None:
    app.add_exception_handler(PageAnswer, _answer)
