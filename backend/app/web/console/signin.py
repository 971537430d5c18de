"""Coming back from the hosted login, and signing out of the console (which ends the browser
session: single sign-on included)."""

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.auth import tokens
from app.crud.audit import Actor
from app.db import transaction
from app.models.session import AuthSession
from app.web.console.access import CALLBACK_PATH, AnyRolePostDep, Console, render, safe_next
from app.web.cookies import SESSION_COOKIE, clear_cookie, read_cookie
from app.web.sessions import current_login

router = APIRouter(prefix="/admin")


@router.get(CALLBACK_PATH.removeprefix("/admin"))
def callback(request: Request, session: SessionDep, state: str = "", error: str = "") -> Response:
    """The console client's redirect URI: the login set the browser session; go where the
    admin was going. The code in the query is not used (see access.login_redirect)."""
    login = transaction(current_login, session, read_cookie(request, SESSION_COOKIE))
    if login is None or error:
        return render(
            request,
            "signed_out.html",
            status_code=400,
            heading="Sign-in did not complete",
            message="Sign in again to use the console.",
        )
    return RedirectResponse(safe_next(state[:2048]), status_code=303)


@router.post("/logout")
def sign_out(request: Request, session: SessionDep, console: AnyRolePostDep) -> Response:
    transaction(_end_browser_session, session, console, console.actor(request))
    response = render(
        request,
        "signed_out.html",
        heading="Signed out",
        message="Your browser session has ended.",
    )
    clear_cookie(response, SESSION_COOKIE)
    return response


def _end_browser_session(session: Session, console: Console, actor: Actor) -> None:
    row = session.get(AuthSession, console.login.session_id)
    if row is not None:
        tokens.logout(session, user=console.user, auth_session=row, actor=actor)
