"""Who is using the console, and what they may do: the browser session of the hosted login
(the console is the service's built-in first-party client), its CSRF token, the permission
matrix's answer for each control, and the rendering of console pages."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Request
from sqlmodel import Session
from starlette.responses import HTMLResponse, RedirectResponse

from app.api.deps import SessionDep, client_actor
from app.core.config import get_settings
from app.core.permissions import Permission, can_update_user, has_permission
from app.core.security import pkce_s256
from app.crud import console as console_rows
from app.crud import organizations
from app.crud.audit import Actor
from app.db import transaction
from app.models.user import User
from app.oauth.authorize import Login
from app.web import csrf
from app.web.continuation import local_path
from app.web.cookies import SESSION_COOKIE, read_cookie
from app.web.pages import PAGE_CSP, PageAnswer, templates
from app.web.sessions import current_login as browser_login

CALLBACK_PATH = "/admin/callback"


@dataclass(frozen=True, slots=True)
class UserControls:
    """The user-page controls a viewer may use on one user, as the permission matrix says."""

    set_role: bool
    set_active: bool
    unlock: bool
    reset_mfa: bool
    end_sessions: bool
    delete: bool
    history: bool


@dataclass(frozen=True, slots=True)
class Console:
    """The signed-in console user (read from the database on every request) and their login."""

    user: User
    login: Login

    def can(self, permission: Permission) -> bool:
        return has_permission(self.user.role, permission)

    def controls(self, target_id: uuid.UUID) -> UserControls:
        role, is_self = self.user.role, self.user.id == target_id
        updates = can_update_user(role, is_self=is_self, fields={"is_active"})
        return UserControls(
            set_role=can_update_user(role, is_self=is_self, fields={"role"}),
            set_active=updates,
            unlock=has_permission(role, Permission.USERS_UNLOCK),
            # An admin's change to another account's security: update-other-users.
            reset_mfa=has_permission(role, Permission.USERS_UPDATE),
            end_sessions=has_permission(role, Permission.USERS_UPDATE),
            delete=has_permission(role, Permission.USERS_DELETE),
            history=has_permission(role, Permission.AUDIT_READ),
        )

    def actor(self, request: Request) -> Actor:
        return client_actor(request, self.user.id)


# --- rendering ------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else ""


def render(
    request: Request,
    template: str,
    *,
    console: Console | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A console page: the hosted pages' templates and CSP, never cached (it shows accounts)."""
    token, new_binding = (
        csrf.form_token(request, session_id=console.login.session_id) if console else ("", None)
    )
    html = templates.get_template(f"console/{template}").render(
        project=get_settings().PROJECT_NAME,
        console=console,
        csrf_token=token,
        P=Permission,
        when=_when,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    csrf.bind(response, new_binding)
    return response


def refused(
    request: Request, message: str, *, console: Console | None = None, status_code: int = 403
) -> PageAnswer:
    return PageAnswer(
        render(request, "refused.html", console=console, status_code=status_code, message=message)
    )


# --- sign-in through the hosted login ---------------------------------------------------------


def callback_uri() -> str:
    return get_settings().PUBLIC_URL + CALLBACK_PATH


def safe_next(value: str | None) -> str:
    """A console path to come back to (never another site): else the users page."""
    return local_path(value, under="/admin") or "/admin"


def login_redirect(request: Request, session: SessionDep) -> RedirectResponse:
    """To the hosted login, as the console client; it comes back to `callback` with a code.

    The code is never exchanged: the console's verifier is thrown away at once, so nobody
    can redeem it; what the console uses is the browser session the login has just set."""
    transaction(console_rows.ensure_console_client, session, redirect_uri=callback_uri())
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    params = {
        "response_type": "code",
        "client_id": console_rows.CONSOLE_CLIENT_ID,
        "redirect_uri": callback_uri(),
        "scope": "openid",
        "state": safe_next(here),
        "code_challenge": pkce_s256(secrets.token_urlsafe(32)),
        "code_challenge_method": "S256",
    }
    # At PUBLIC_URL, where the callback is: the login's cookie is then set for that host.
    authorize_url = f"{get_settings().PUBLIC_URL}/oauth/authorize?{urlencode(params)}"
    return RedirectResponse(authorize_url, status_code=303)


def _signed_in_any(request: Request, session: SessionDep) -> Console:
    """The console user of this browser session, whatever their role; without one, a GET
    goes to the hosted login and anything else is refused."""
    login, user = transaction(_console_user, session, read_cookie(request, SESSION_COOKIE))
    if login is None or user is None:
        if request.method in ("GET", "HEAD"):
            raise PageAnswer(login_redirect(request, session))
        raise refused(request, "Your session has ended. Sign in again.")
    return Console(user=user, login=login)


def _console_user(session: Session, cookie: str | None) -> tuple[Login | None, User | None]:
    login = browser_login(session, cookie)
    return login, session.get(User, login.user_id, populate_existing=True) if login else None


def signed_in(request: Request, session: SessionDep) -> Console:
    """A console user whose role may see the console (users:read); others get a 403 page,
    except a delegated organization admin, whom `/admin` sends to their organizations."""
    console = _signed_in_any(request, session)
    if not console.can(Permission.USERS_READ):
        if request.url.path in ("/admin", "/admin/users") and transaction(
            administers, session, console.user.id
        ):
            raise PageAnswer(RedirectResponse("/admin/organizations", status_code=303))
        raise refused(
            request,
            f"You are signed in as {console.user.email}, whose role may not use the console.",
            console=console,
        )
    return console


def administers(session: Session, user_id: uuid.UUID) -> bool:
    """Whether the user administers an organization as a member (delegated admin)."""
    page = organizations.administered_page(session, user_id=user_id, limit=1, after=None)
    return page.total > 0


def _check_csrf(request: Request, console: Console, presented: str) -> Console:
    """A form post of this browser session (its csrf_token), or a 403 that changes nothing."""
    if not csrf.valid(request, presented, session_id=console.login.session_id):
        message = "This form has expired. Reload the page and try again."
        raise refused(request, message, console=console)
    return console


ConsoleDep = Annotated[Console, Depends(signed_in)]
AnyRoleDep = Annotated[Console, Depends(_signed_in_any)]


def posted(
    request: Request, console: ConsoleDep, csrf_token: Annotated[str, Form()] = ""
) -> Console:
    return _check_csrf(request, console, csrf_token)


def posted_any_role(
    request: Request, console: AnyRoleDep, csrf_token: Annotated[str, Form()] = ""
) -> Console:
    return _check_csrf(request, console, csrf_token)


PostDep = Annotated[Console, Depends(posted)]
AnyRolePostDep = Annotated[Console, Depends(posted_any_role)]


def need(request: Request, console: Console, allowed: bool) -> None:
    """Refuse (403, nothing changed) what the permission matrix does not allow this role."""
    if not allowed:
        raise refused(request, "Your role may not do this.", console=console)
