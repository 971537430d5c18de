"""/account/forgot-password and /account/reset-password: password recovery as POST
/auth/password-recovery and POST /auth/reset-password do it (auth/recovery.py). The first
answers the same for every address; the link's GET shows the form and spends nothing; after
the reset, the login page of the request this browser was signing in to (or the account's)."""

from urllib.parse import urlencode

from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import Response

from app.api.deps import SessionDep, client_actor
from app.auth import recovery
from app.core.config import get_settings
from app.errors import BadToken, RateLimited, WeakPassword
from app.models.account import MAX_MAILED_TOKEN, PasswordRecoveryRequest, ResetPasswordRequest
from app.steps import run_step, run_transaction
from app.web import continuation as continuations
from app.web.account import messages
from app.web.account.access import AccountForm, continuation_of
from app.web.account.forms import Problems, too_many, validated, values
from app.web.account.messages import Message
from app.web.account.rendering import account_router, harden, page, problem
from app.web.continuation import Continuation
from app.web.flow import login_page

router = account_router()
FORGOT_PATH = "/account/forgot-password"


def _forgot_form(
    request: Request,
    continuation: Continuation,
    *,
    email: str = "",
    problems: Problems | None = None,
    message: Message | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        "forgot_password.html",
        status_code=status_code,
        headers=headers,
        continuation=continuation,
        email=email,
        problems=problems or {},
        message=message,
    )


@router.get("/forgot-password")
async def forgot_password_page(request: Request, session: SessionDep) -> Response:
    return _forgot_form(request, await continuation_of(request, session, request.query_params))


@router.post("/forgot-password")
async def forgot_password(request: Request, session: SessionDep, form: AccountForm) -> Response:
    continuation = await continuation_of(request, session, values(form, "request", "next"))
    email = values(form, "email")["email"]
    body = validated(PasswordRecoveryRequest, {"email": email})
    if not isinstance(body, PasswordRecoveryRequest):
        return _forgot_form(request, continuation, email=email, problems=body, status_code=422)
    actor = client_actor(request)
    try:
        await run_step(recovery.check_rate, body.email, actor)
    except RateLimited as error:
        return _forgot_form(
            request,
            continuation,
            email=email,
            message=too_many(error.retry_after),
            status_code=429,
            headers={"Retry-After": str(error.retry_after)},
        )
    minutes = get_settings().RESET_TOKEN_EXPIRE_MINUTES
    response = page(request, "recovery_sent.html", continuation=continuation, minutes=minutes)
    # The same answer for every address: the look-up, the token and the mail come after it.
    response.background = BackgroundTask(recovery.request_recovery, body.email, actor)
    continuations.remember(response, continuation, max_age=minutes * 60)
    return response


def _spent(request: Request) -> Response:
    """A link that cannot be used: the way to a new one (for the same sign-in, if this
    browser is in one)."""
    pending = continuations.recall(request)
    again = FORGOT_PATH + (f"?{urlencode(pending)}" if pending else "")
    return problem(
        request,
        messages.LINK_INVALID,
        heading=messages.LINK_HEADING,
        link=(again, messages.ASK_NEW_LINK),
    )


def _reset_form(
    request: Request,
    token: str,
    *,
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "reset_password.html",
        status_code=status_code,
        token=token,
        problems=problems or {},
        password_min=get_settings().PASSWORD_MIN_LENGTH,
    )


@router.get("/reset-password")
async def reset_password_page(
    request: Request,
    session: SessionDep,
    token: str = "",
) -> Response:
    """The mailed link: the form, if the link is live (checked, never spent)."""
    if not token or len(token) > MAX_MAILED_TOKEN:
        return _spent(request)
    try:
        await run_transaction(recovery.ensure_live, session, token)
    except BadToken:
        return _spent(request)
    return _reset_form(request, token)


@router.post("/reset-password")
async def reset_password(request: Request, session: SessionDep, form: AccountForm) -> Response:
    entered = values(form, "token", "password")
    body = validated(
        ResetPasswordRequest,
        {"token": entered["token"], "new_password": entered["password"]},
        names={"new_password": "password"},
    )
    if not isinstance(body, ResetPasswordRequest):
        if "token" in body:
            return _spent(request)
        return _reset_form(request, entered["token"], problems=body, status_code=422)
    try:
        await recovery.reset_password(
            session, token=body.token, new_password=body.new_password, actor=client_actor(request)
        )
    except BadToken:
        return _spent(request)
    except WeakPassword as error:  # the policy's rules that need the account (its name, email)
        problems = {"password": Message(error.detail)}
        return _reset_form(request, body.token, problems=problems, status_code=422)
    remembered = continuations.recall(request)
    continuation = await run_transaction(continuations.resolve_or_account, session, remembered)
    response = login_page(request, continuation, notice=messages.PASSWORD_RESET)
    continuations.forget(response)
    return harden(response)
