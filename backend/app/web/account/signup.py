"""/account/sign-up: an account created as POST /auth/register creates it (auth/signup.py:
the same rules, limits, audit and verification mail); then, while verification is
required, a page that says to open the mail, else the new account signed in and on to the
authorization request (or the account)."""

import uuid

from fastapi import Request
from sqlmodel import Session
from starlette.responses import Response

from app.api.deps import SessionDep, client_actor
from app.auth import signup
from app.core.config import get_settings
from app.crud.audit import Actor
from app.errors import DomainError, EmailTaken, RateLimited, RegistrationClosed
from app.models.user import UserCreate
from app.steps import run_transaction
from app.web import continuation as continuations
from app.web.account import messages
from app.web.account.access import AccountForm, continuation_of
from app.web.account.forms import Problems, too_many, validated, values
from app.web.account.messages import Message
from app.web.account.rendering import account_router, page, problem
from app.web.continuation import Continuation
from app.web.flow import login_page, signed_in
from app.web.sessions import opener

router = account_router()


def _closed(request: Request) -> Response:
    return problem(request, messages.REGISTRATION_CLOSED, status_code=403)


def _form(
    request: Request,
    continuation: Continuation,
    *,
    entered: dict[str, str] | None = None,
    problems: Problems | None = None,
    message: Message | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    auth = continuation.auth
    return page(
        request,
        "sign_up.html",
        status_code=status_code,
        headers=headers,
        continuation=continuation,
        client_name=auth.client.name if auth is not None else None,
        values=entered or {},
        problems=problems or {},
        message=message,
        password_min=get_settings().PASSWORD_MIN_LENGTH,
    )


@router.get("/sign-up")
async def sign_up_page(request: Request, session: SessionDep) -> Response:
    if not get_settings().USERS_OPEN_REGISTRATION:
        return _closed(request)
    return _form(request, await continuation_of(request, session, request.query_params))


@router.post("/sign-up")
async def sign_up(request: Request, session: SessionDep, form: AccountForm) -> Response:
    settings = get_settings()
    if not settings.USERS_OPEN_REGISTRATION:
        return _closed(request)
    continuation = await continuation_of(request, session, values(form, "request", "next"))
    entered = values(form, "email", "full_name", "password")
    shown = {"email": entered["email"], "full_name": entered["full_name"]}  # never the password
    body = validated(
        UserCreate,
        {**entered, "full_name": entered["full_name"].strip() or None},
    )
    if not isinstance(body, UserCreate):
        return _form(request, continuation, entered=shown, problems=body, status_code=422)
    actor = client_actor(request)
    try:
        user = await signup.sign_up(session, body=body, actor=actor)
    except RegistrationClosed:
        return _closed(request)
    except RateLimited as error:
        return _form(
            request,
            continuation,
            entered=shown,
            message=too_many(error.retry_after),
            status_code=429,
            headers={"Retry-After": str(error.retry_after)},
        )
    except EmailTaken:
        taken = {"email": Message(messages.EMAIL_TAKEN)}
        return _form(request, continuation, entered=shown, problems=taken, status_code=409)
    if settings.REQUIRE_EMAIL_VERIFICATION:
        response = page(request, "check_mail.html", email=user.email, continuation=continuation)
        lifetime = settings.VERIFY_TOKEN_EXPIRE_HOURS * 3600
        continuations.remember(response, continuation, max_age=lifetime)
        return response
    try:
        return await run_transaction(_first_login, session, request, continuation, user.id, actor)
    except DomainError:  # deactivated in the meantime: the login page says why when tried
        return login_page(request, continuation, email=user.email)


def _first_login(
    session: Session,
    request: Request,
    continuation: Continuation,
    user_id: uuid.UUID,
    actor: Actor,
) -> Response:
    """The new account's first browser session, and on (web/flow.signed_in)."""
    browser = signup.first_login(session, user_id=user_id, actor=actor, start=opener(("pwd",)))
    return signed_in(session, request, continuation, browser)
