"""Rendering the hosted pages: Jinja2 templates in the package, a strict CSP, the CSRF
binding of every form, and the page that answers instead of a route (PageAnswer)."""

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.core.config import get_settings
from app.web import csrf

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
)
templates.add_extension("jinja2.ext.i18n")
templates.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    token, new_binding = csrf.form_token(request)
    html = templates.get_template(template).render(
        project=get_settings().PROJECT_NAME, csrf_token=token, **context
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    csrf.bind(response, new_binding)
    return response


def error_page(request: Request, message: str, *, status_code: int = 400) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status_code=status_code,
        heading="This sign-in request cannot be completed",
        message=message,
    )


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
