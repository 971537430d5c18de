"""/account/delete: the person deletes their own account after the password (and a code
while TOTP is on), by auth/deletion.delete_own: the re-authentication's lockout counting and
audit, and DELETE /users/{id}'s rule that the last active admin stays. Every session ends
with the account; the answer is a page that says so, this browser signed out."""

from fastapi import Request
from starlette.responses import Response

from app.api.deps import SessionDep
from app.auth import deletion
from app.errors import DomainError, LastAdmin
from app.models.account import PasswordConfirmation, TotpCode
from app.web.account import messages
from app.web.account.access import Account, AccountForm, AccountUser
from app.web.account.forms import Problems, validated, values
from app.web.account.messages import N_, Message
from app.web.account.refusals import ENTER_CODE, credential_refusal
from app.web.account.rendering import account_router, page
from app.web.cookies import SESSION_COOKIE, clear_cookie

router = account_router()

LAST_ADMIN = N_(
    "You are the last administrator of this service, so your account cannot be deleted. "
    "Make another person an administrator first."
)


def _form(
    request: Request,
    account: Account,
    *,
    problems: Problems | None = None,
    message: Message | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        "delete.html",
        account=account,
        status_code=status_code,
        headers=headers,
        mfa_enabled=account.user.mfa_enabled,
        problems=problems or {},
        message=message,
    )


@router.get("/delete")
def delete_page(request: Request, account: AccountUser) -> Response:
    return _form(request, account)


@router.post("/delete")
async def delete_account(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    entered = values(form, "password", "code")
    problems: Problems = {}
    checked = validated(PasswordConfirmation, {"password": entered["password"]})
    if not isinstance(checked, PasswordConfirmation):
        problems["password"] = Message(messages.ENTER_PASSWORD)
    code = entered["code"] if account.user.mfa_enabled else None
    if code is not None and not isinstance(validated(TotpCode, {"code": code}), TotpCode):
        problems["code"] = Message(ENTER_CODE)
    if problems or not isinstance(checked, PasswordConfirmation):
        return _form(request, account, problems=problems, status_code=422)
    try:
        await deletion.delete_own(
            session,
            user=account.user,
            password=checked.password,
            code=code,
            actor=account.actor(request),
        )
    except LastAdmin:
        return _form(request, account, message=Message(LAST_ADMIN), status_code=409)
    except DomainError as error:
        refusal = credential_refusal(error)
        if refusal is None:
            raise
        return _form(
            request,
            account,
            problems=refusal.problems,
            message=refusal.message,
            status_code=refusal.status_code,
            headers=refusal.headers,
        )
    response = page(request, "deleted.html")
    clear_cookie(response, SESSION_COOKIE)
    return response
