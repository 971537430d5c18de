"""/account/verify-email and /account/email/confirm: a mailed verification or address-change
link. Its GET asks to confirm (mail scanners open links: a GET never spends a token); the
POST verifies, or moves the account, as POST /auth/verify-email does (one step,
auth/verification.verify_email), then goes on: to the request this browser was signing in
to, or the account, signing in first if this browser is not signed in as that person."""

from fastapi import Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep, client_actor
from app.auth import verification
from app.errors import BadToken, EmailTaken
from app.models.account import MAX_MAILED_TOKEN
from app.models.user import User
from app.steps import run_transaction
from app.web import continuation as continuations
from app.web.account import messages
from app.web.account.access import AccountForm
from app.web.account.forms import values
from app.web.account.messages import N_
from app.web.account.rendering import account_router, harden, page, problem
from app.web.cookies import SESSION_COOKIE, read_cookie
from app.web.flow import login_page
from app.web.sessions import current_login

router = account_router()

VERIFY_PATH = "/account/verify-email"
CONFIRM_CHANGE_PATH = "/account/email/confirm"
HEADINGS = {
    VERIFY_PATH: N_("Confirm your email address"),
    CONFIRM_CHANGE_PATH: N_("Confirm your new email address"),
}


def _spent(request: Request) -> Response:
    return problem(request, messages.LINK_INVALID, heading=messages.LINK_HEADING)


async def _confirm_page(request: Request, session: Session, token: str) -> Response:
    if not token or len(token) > MAX_MAILED_TOKEN:
        return _spent(request)
    try:
        email = await run_transaction(verification.mailed_address, session, token=token)
    except BadToken:
        return _spent(request)
    return page(
        request,
        "confirm_email.html",
        heading=HEADINGS[request.url.path],
        action=request.url.path,
        token=token,
        email=email,
    )


async def _confirm(request: Request, session: Session, token: str) -> Response:
    if not token or len(token) > MAX_MAILED_TOKEN:
        return _spent(request)
    try:
        user = await run_transaction(
            verification.verify_email, session, token=token, actor=client_actor(request)
        )
    except BadToken:
        return _spent(request)
    except EmailTaken:
        return problem(request, messages.ADDRESS_TAKEN_NOW, status_code=409)
    response = await run_transaction(_go_on, session, request, user)
    continuations.forget(response)
    return harden(response)


def _go_on(session: Session, request: Request, user: User) -> Response:
    """On to where this browser was going, if it is signed in as `user`; else the login page
    of that, with the address filled in."""
    continuation = continuations.resolve_or_account(session, continuations.recall(request))
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    if login is not None and login.user_id == user.id:
        return RedirectResponse(continuation.url, status_code=303)
    return login_page(request, continuation, notice=messages.EMAIL_CONFIRMED, email=user.email)


@router.get("/verify-email")
async def verify_email_page(request: Request, session: SessionDep, token: str = "") -> Response:
    return await _confirm_page(request, session, token)


@router.post("/verify-email")
async def verify_email(request: Request, session: SessionDep, form: AccountForm) -> Response:
    return await _confirm(request, session, values(form, "token")["token"])


@router.get("/email/confirm")
async def confirm_email_page(request: Request, session: SessionDep, token: str = "") -> Response:
    return await _confirm_page(request, session, token)


@router.post("/email/confirm")
async def confirm_email(request: Request, session: SessionDep, form: AccountForm) -> Response:
    return await _confirm(request, session, values(form, "token")["token"])
