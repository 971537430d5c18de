"""Signing in to the account pages and out of them. The login page is the hosted login's
own (web/flow.login_page), going on to the account page it was asked for."""

from typing import Annotated

from fastapi import Query, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.auth import tokens
from app.crud.audit import Actor
from app.db import transaction
from app.models.session import AuthSession
from app.steps import run_transaction
from app.web import continuation as continuations
from app.web.account.access import Account, AccountForm, AccountUser, signed_in_user
from app.web.account.rendering import account_router, page
from app.web.cookies import SESSION_COOKIE, clear_cookie, read_cookie
from app.web.flow import login_page

router = account_router()


@router.get("/login")
def login(
    request: Request,
    session: SessionDep,
    next_path: Annotated[str, Query(alias="next")] = "",
    prompt: str = "",
) -> Response:
    """The login form for an account page (`next`); with a live session, straight there
    unless `prompt=login` asks for the login again (RecentAccountUser)."""
    continuation = continuations.to_page(next_path)
    found = transaction(signed_in_user, session, read_cookie(request, SESSION_COOKIE))
    if found is not None and prompt != "login":
        return RedirectResponse(continuation.path, status_code=303)
    email = found[1].email if found is not None else None
    return login_page(request, continuation, email=email)


@router.post("/sign-out")
async def sign_out(
    request: Request, session: SessionDep, _form: AccountForm, account: AccountUser
) -> Response:
    """End this browser's session (single sign-on included), as the console's sign-out."""
    await run_transaction(_end, session, account, account.actor(request))
    response = page(request, "signed_out.html")
    clear_cookie(response, SESSION_COOKIE)
    return response


def _end(session: Session, account: Account, actor: Actor) -> None:
    row = session.get(AuthSession, account.login.session_id)
    if row is not None:
        tokens.logout(session, user=account.user, auth_session=row, actor=actor)
