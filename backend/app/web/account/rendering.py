"""Rendering the account pages: the hosted pages' templates, CSP and CSRF token
(web/pages.render), the account's navigation, and the headers every answer under /account
carries, whatever it is (a page, a redirect, a refusal raised as PageAnswer): never stored,
never framed, no Referer to another site (a mailed link's token is in the URL)."""

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.web.account import messages
from app.web.account.messages import N_, Message
from app.web.pages import PAGE_CSP, PageAnswer, render

if TYPE_CHECKING:
    from app.web.account.access import Account

HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": PAGE_CSP,  # frame-ancestors 'none'
}

# The account's pages, in the navigation and on the overview: (path, label).
NAV: list[tuple[str, str]] = [
    ("/account", N_("Overview")),
    ("/account/profile", N_("Profile")),
    ("/account/email", N_("Email address")),
    ("/account/password", N_("Password")),
    ("/account/sessions", N_("Sessions")),
    ("/account/apps", N_("Applications")),
    ("/account/organizations", N_("Organizations")),
    ("/account/mfa", N_("Two-factor authentication")),
    ("/account/passkeys", N_("Passkeys")),
    ("/account/export", N_("Download your data")),
    ("/account/delete", N_("Delete account")),
]


def harden(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


class AccountRoute(APIRoute):
    """A route under /account: its answer, or the page a dependency raised (PageAnswer),
    leaves with HEADERS."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def hardened(request: Request) -> Response:
            try:
                response = await handler(request)
            except PageAnswer as answer:
                response = answer.response
            return harden(response)

        return hardened


def account_router() -> APIRouter:
    """A router of account pages (each module has one; web/account/__init__.py joins them)."""
    return APIRouter(prefix="/account", route_class=AccountRoute, include_in_schema=False)


def page(
    request: Request,
    template: str,
    *,
    account: "Account | None" = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """An account page (templates/account/`template`); with `account`, the navigation and
    the sign-out for the signed-in person."""
    response = render(
        request,
        f"account/{template}",
        status_code=status_code,
        account=account,
        nav=NAV,
        current=request.url.path,
        **context,
    )
    response.headers.update(headers or {})
    harden(response)
    return response


def problem(
    request: Request,
    message: str | Message,
    *,
    status_code: int = 400,
    heading: str = messages.REFUSED_HEADING,
    account: "Account | None" = None,
    link: tuple[str, str] | None = None,
) -> HTMLResponse:
    """A page that refuses (a forged form, a spent link, closed registration), with a way
    on (`link`: path and label) when there is one."""
    shown = message if isinstance(message, Message) else Message(message)
    return page(
        request,
        "problem.html",
        account=account,
        status_code=status_code,
        heading=heading,
        message=shown,
        link=link,
    )
