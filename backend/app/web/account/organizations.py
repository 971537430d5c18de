"""/account/organizations: the organizations the person belongs to and their roles there, as
GET /users/me/organizations lists them (crud/organizations.my_organizations); leaving one
removes the membership as a member manager would (crud/organizations.remove_member): the
last member who manages its members cannot leave (409), and the OAuth sessions bound to it
end."""

import uuid
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.crud import organizations
from app.errors import Conflict, NotFound
from app.models.common import PageCursor
from app.steps import run_transaction
from app.web.account.access import Account, AccountForm, AccountUser
from app.web.account.messages import N_, Message
from app.web.account.rendering import account_router, page, problem
from app.web.flow import field

router = account_router()
PATH = "/account/organizations"
PAGE_SIZE = 50
MAX_CURSOR = 64

LEFT = N_("You have left the organization. Sessions that applications opened for it have ended.")
NOT_A_MEMBER = N_("You are not a member of that organization.")
LAST_MANAGER = N_(
    "You are the last member who manages this organization's members, so you cannot leave it. "
    "Give that role to another member first."
)
BAD_PAGE = N_("This page of the list does not exist.")
BACK = N_("Back to your organizations")


async def _page(
    request: Request,
    session: SessionDep,
    account: Account,
    *,
    after: PageCursor | None = None,
    notice: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    found = await run_transaction(
        organizations.my_organizations,
        session,
        user_id=account.user.id,
        limit=PAGE_SIZE,
        after=after,
    )
    more = f"{PATH}?{urlencode({'cursor': found.next_cursor})}" if found.next_cursor else None
    return page(
        request,
        "organizations.html",
        account=account,
        status_code=status_code,
        found=found,
        more=more,
        notice=Message(notice) if notice else None,
        message=Message(message) if message else None,
    )


@router.get("/organizations")
async def organizations_page(
    request: Request,
    session: SessionDep,
    account: AccountUser,
    done: str = "",
    cursor: str = "",
) -> Response:
    try:
        after = PageCursor.decode(cursor[:MAX_CURSOR]) if cursor else None
    except ValueError:
        return problem(request, BAD_PAGE, account=account, link=(PATH, BACK))
    notice = LEFT if done == "left" else None
    return await _page(request, session, account, after=after, notice=notice)


@router.post("/organizations/leave")
async def leave(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    try:
        await run_transaction(
            organizations.remove_member,
            session,
            organization_id=uuid.UUID(field(form, "organization")),
            user_id=account.user.id,
            actor=account.actor(request),
        )
    except (ValueError, NotFound):
        return await _page(request, session, account, message=NOT_A_MEMBER, status_code=404)
    except Conflict:
        return await _page(request, session, account, message=LAST_MANAGER, status_code=409)
    return RedirectResponse(f"{PATH}?done=left", status_code=303)
