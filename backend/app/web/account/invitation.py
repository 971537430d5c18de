"""/account/invitation?token=: the organization invitation of AUTHZ.md. The link's GET
shows the organization and the invited address and never spends the token
(crud/invitations.by_link); what it offers depends on who this browser is: signed in with
the invited, verified address, the Accept button (its POST is POST /invitations/accept's
step, crud/invitations.accept); signed in as someone else or unverified, a 403 page that
says so (and a way to sign in with another account); not signed in, sign in or sign up, each
coming back here. A spent, revoked, replaced or expired link is a 400 page."""

from urllib.parse import urlencode

from fastapi import Request
from sqlmodel import Session
from starlette.responses import Response

from app.api.deps import SessionDep
from app.core.config import get_settings
from app.crud import invitations
from app.crud.invitations import Invited
from app.errors import BadToken, Forbidden
from app.models.organization import InvitationAccept
from app.models.user import User
from app.steps import run_transaction
from app.web.account import messages
from app.web.account.access import Account, AccountForm, AccountUser, login_url, signed_in_user
from app.web.account.forms import validated
from app.web.account.messages import N_, Message
from app.web.account.rendering import account_router, page, problem
from app.web.cookies import SESSION_COOKIE, read_cookie
from app.web.flow import field

router = account_router()
PATH = "/account/invitation"

SPENT = N_(
    "This invitation can no longer be used: it was accepted, withdrawn or replaced by a newer "
    "one, or it has expired. Ask the organization for a new one."
)
OTHER_ACCOUNT = N_("This invitation is for %(invited)s, but you are signed in as %(current)s.")
UNVERIFIED = N_(
    "Confirm your address %(invited)s first: open the link we mailed to it, then open this "
    "invitation again."
)


def _link(token: str) -> str:
    return f"{PATH}?{urlencode({'token': token})}"


def _spent(request: Request) -> Response:
    return problem(request, SPENT, heading=messages.LINK_HEADING)


def _refusal(user: User, invited: Invited) -> Message | None:
    """Why this person cannot accept (the rule of invitations.accept, said before the
    click), or None."""
    if user.email != invited.email:
        return Message(OTHER_ACCOUNT, {"invited": invited.email, "current": user.email})
    if not user.is_verified:
        return Message(UNVERIFIED, {"invited": invited.email})
    return None


def _page(
    request: Request,
    token: str,
    invited: Invited,
    account: Account | None,
) -> Response:
    """The invitation as this browser may act on it: accept, sign in or up, or why not."""
    here = _link(token)
    refusal = _refusal(account.user, invited) if account is not None else None
    return page(
        request,
        "invitation.html",
        account=account,
        status_code=403 if refusal is not None else 200,
        token=token,
        invited=invited,
        refusal=refusal,
        sign_in=login_url(here),
        sign_in_again=login_url(here, again=True),
        sign_up=f"/account/sign-up?{urlencode({'next': here})}"
        if get_settings().USERS_OPEN_REGISTRATION
        else None,
    )


def _read(
    session: Session, token: str, cookie: str | None
) -> tuple[Invited | None, Account | None]:
    invited = invitations.by_link(session, token=token)
    found = signed_in_user(session, cookie)
    account = Account(user=found[1], login=found[0]) if found is not None else None
    return invited, account


def _token(value: str) -> str | None:
    body = validated(InvitationAccept, {"token": value})
    return body.token if isinstance(body, InvitationAccept) else None


@router.get("/invitation")
async def invitation_page(request: Request, session: SessionDep, token: str = "") -> Response:
    """The mailed link: shown, never spent."""
    checked = _token(token)
    if checked is None:
        return _spent(request)
    invited, account = await run_transaction(
        _read, session, checked, read_cookie(request, SESSION_COOKIE)
    )
    if invited is None:
        return _spent(request)
    return _page(request, checked, invited, account)


@router.post("/invitation")
async def accept(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """Join the organization (POST /invitations/accept's step): a membership with the
    invited roles, the invitation spent in the same statement that checks it is there."""
    token = _token(field(form, "token"))
    if token is None:
        return _spent(request)
    try:
        joined = await run_transaction(
            invitations.accept,
            session,
            token=token,
            user_id=account.user.id,
            actor=account.actor(request),
        )
    except BadToken:
        return _spent(request)
    except Forbidden:
        invited, _ = await run_transaction(_read, session, token, None)
        if invited is None:
            return _spent(request)
        return _page(request, token, invited, account)
    return page(request, "joined.html", account=account, joined=joined)
