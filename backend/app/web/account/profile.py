"""/account/profile: the person's name, changed as PATCH /users/me changes it
(auth/profile.update_own: audited)."""

from fastapi import Request
from starlette.responses import Response

from app.api.deps import SessionDep
from app.auth import profile
from app.models.user import UserUpdateMe
from app.web.account import messages
from app.web.account.access import Account, AccountForm, AccountUser
from app.web.account.forms import Problems, validated, values
from app.web.account.messages import Message
from app.web.account.rendering import account_router, page

router = account_router()


def _page(
    request: Request,
    account: Account,
    *,
    full_name: str | None = None,
    problems: Problems | None = None,
    notice: Message | None = None,
    status_code: int = 200,
) -> Response:
    shown = (account.user.full_name or "") if full_name is None else full_name
    return page(
        request,
        "profile.html",
        account=account,
        status_code=status_code,
        full_name=shown,
        problems=problems or {},
        notice=notice,
    )


@router.get("/profile")
def profile_page(request: Request, account: AccountUser) -> Response:
    return _page(request, account)


@router.post("/profile")
async def save_profile(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    entered = values(form, "full_name")["full_name"]
    body = validated(UserUpdateMe, {"full_name": entered.strip() or None})
    if not isinstance(body, UserUpdateMe):
        return _page(request, account, full_name=entered, problems=body, status_code=422)
    changes: dict[str, object] = {"full_name": body.full_name}
    user = await profile.update_own(
        session, user=account.user, changes=changes, actor=account.actor(request)
    )
    saved = Account(user=user, login=account.login)
    return _page(request, saved, notice=Message(messages.PROFILE_SAVED))
