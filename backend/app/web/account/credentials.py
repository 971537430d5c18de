"""/account/email and /account/password: the changes PATCH /users/me (email) and POST
/users/me/password make, by the same steps (auth/profile.update_own, auth/password_change):
the current password asked again (a wrong one counts toward the lockout, audited), the same
rate limits, a new address pending until the link mailed to it is opened, the other sessions
ended by a new password. The current password is the proof that the person is there now
(see access.py): these pages need no recent login beyond it."""

from fastapi import Request
from starlette.responses import Response

from app.api.deps import SessionDep
from app.auth import password_change, profile
from app.errors import EmailTaken, IncorrectPassword, RateLimited, WeakPassword
from app.models.account import PasswordChangeRequest
from app.models.user import UserUpdateMe, normalize_email
from app.web.account import messages
from app.web.account.access import Account, AccountForm, AccountUser
from app.web.account.forms import Problems, too_many, validated, values
from app.web.account.messages import Message
from app.web.account.rendering import account_router, page

router = account_router()

WRONG_PASSWORD = {"current_password": Message(messages.WRONG_PASSWORD)}


def _limited(error: RateLimited) -> tuple[Message, dict[str, str]]:
    return too_many(error.retry_after), {"Retry-After": str(error.retry_after)}


def _email_page(
    request: Request,
    account: Account,
    *,
    email: str = "",
    problems: Problems | None = None,
    message: Message | None = None,
    notice: Message | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        "email.html",
        account=account,
        status_code=status_code,
        headers=headers,
        email=email,
        problems=problems or {},
        message=message,
        notice=notice,
    )


@router.get("/email")
def email_page(request: Request, account: AccountUser) -> Response:
    return _email_page(request, account)


@router.post("/email")
async def change_email(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    entered = values(form, "email", "current_password")
    email = entered["email"]
    body = validated(UserUpdateMe, entered)
    if not isinstance(body, UserUpdateMe) or body.email is None:
        problems = body if isinstance(body, dict) else {"email": Message(messages.INVALID_EMAIL)}
        return _email_page(request, account, email=email, problems=problems, status_code=422)
    if normalize_email(body.email) == account.user.email:
        same = {"email": Message(messages.SAME_EMAIL)}
        return _email_page(request, account, email=email, problems=same, status_code=400)
    changes: dict[str, object] = {"email": body.email, "current_password": body.current_password}
    try:
        user = await profile.update_own(
            session, user=account.user, changes=changes, actor=account.actor(request)
        )
    except IncorrectPassword:
        return _email_page(request, account, email=email, problems=WRONG_PASSWORD, status_code=400)
    except RateLimited as error:
        message, headers = _limited(error)
        return _email_page(
            request, account, email=email, message=message, status_code=429, headers=headers
        )
    except EmailTaken:
        taken = {"email": Message(messages.EMAIL_IN_USE)}
        return _email_page(request, account, email=email, problems=taken, status_code=409)
    sent = Message(messages.EMAIL_CHANGE_SENT, {"email": user.pending_email, "current": user.email})
    return _email_page(request, Account(user=user, login=account.login), notice=sent)


def _password_page(
    request: Request,
    account: Account,
    *,
    problems: Problems | None = None,
    message: Message | None = None,
    notice: Message | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        "password.html",
        account=account,
        status_code=status_code,
        headers=headers,
        problems=problems or {},
        message=message,
        notice=notice,
    )


@router.get("/password")
def password_page(request: Request, account: AccountUser) -> Response:
    return _password_page(request, account)


@router.post("/password")
async def change_password(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    body = validated(PasswordChangeRequest, values(form, "current_password", "new_password"))
    if not isinstance(body, PasswordChangeRequest):
        return _password_page(request, account, problems=body, status_code=422)
    try:
        await password_change.change_password(
            session,
            user=account.user,
            current_session_id=account.login.session_id,
            current_password=body.current_password,
            new_password=body.new_password,
            actor=account.actor(request),
        )
    except IncorrectPassword:
        return _password_page(request, account, problems=WRONG_PASSWORD, status_code=400)
    except WeakPassword as error:  # the policy's rules that need the account (its name, email)
        problems = {"new_password": Message(error.detail)}
        return _password_page(request, account, problems=problems, status_code=422)
    except RateLimited as error:
        message, headers = _limited(error)
        return _password_page(request, account, message=message, status_code=429, headers=headers)
    return _password_page(request, account, notice=Message(messages.PASSWORD_CHANGED))
