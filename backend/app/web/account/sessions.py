"""/account/sessions: every live session of the person (API, Browser, OAuth with the client's
name), its device and last use, as GET /users/me/sessions lists them (auth/user_sessions.py);
end one as DELETE /users/me/sessions/{id} does, or all others (never this browser's)."""

import uuid

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.auth import tokens, user_sessions
from app.errors import NotFound
from app.models.session import SessionKind
from app.steps import run_transaction
from app.web.account.access import Account, AccountForm, AccountUser
from app.web.account.messages import N_, Message
from app.web.account.rendering import account_router, page
from app.web.cookies import SESSION_COOKIE, clear_cookie
from app.web.flow import field

router = account_router()
PATH = "/account/sessions"

KINDS = {
    SessionKind.API: N_("API"),
    SessionKind.BROWSER: N_("Browser"),
    SessionKind.OAUTH: N_("OAuth"),
}
ENDED = N_("The session has ended. Its tokens no longer work.")
OTHERS_ENDED = N_("Your other sessions have ended. This browser stays signed in.")
NONE_OTHER = N_("You have no other session.")
GONE = N_("That session has already ended.")
DONE = {"ended": ENDED, "others": OTHERS_ENDED, "none": NONE_OTHER}


async def _page(
    request: Request,
    session: SessionDep,
    account: Account,
    *,
    notice: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = await run_transaction(
        user_sessions.list_sessions,
        session,
        user_id=account.user.id,
        current_id=account.login.session_id,
    )
    return page(
        request,
        "sessions.html",
        account=account,
        status_code=status_code,
        rows=rows,
        kinds=KINDS,
        notice=Message(notice) if notice else None,
        message=Message(message) if message else None,
    )


@router.get("/sessions")
async def sessions_page(
    request: Request, session: SessionDep, account: AccountUser, done: str = ""
) -> Response:
    return await _page(request, session, account, notice=DONE.get(done))


@router.post("/sessions/end")
async def end_one(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """End one session (DELETE /users/me/sessions/{id}'s step); ending this browser's own
    is signing out here."""
    try:
        session_id = uuid.UUID(field(form, "session"))
        await run_transaction(
            user_sessions.end_session,
            session,
            user_id=account.user.id,
            session_id=session_id,
            actor=account.actor(request),
        )
    except (ValueError, NotFound):
        return await _page(request, session, account, message=GONE, status_code=404)
    if session_id == account.login.session_id:
        response = page(request, "signed_out.html")
        clear_cookie(response, SESSION_COOKIE)
        return response
    return RedirectResponse(f"{PATH}?done=ended", status_code=303)


@router.post("/sessions/end-others")
async def end_others(
    request: Request, session: SessionDep, _form: AccountForm, account: AccountUser
) -> Response:
    """End every session but this browser's (POST /auth/logout-all's step, keeping it)."""
    ended = await run_transaction(
        tokens.logout_all,
        session,
        user=account.user,
        actor=account.actor(request),
        keep=account.login.session_id,
    )
    return RedirectResponse(f"{PATH}?done={'others' if ended else 'none'}", status_code=303)
