"""The hosted login form, its second factor (TOTP or a recovery code) and "Sign in with a
passkey": one flow for an authorization request and for the account pages alike, going on
where its form says (web/flow.py). The login rules are auth/login.py's (login and login_mfa,
called as they are with a browser-session `start`)."""

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from app.api.deps import SessionDep, client_actor
from app.auth import login as login_flow
from app.core.i18n import N_
from app.errors import DomainError, InvalidToken, MfaFailed, RateLimited
from app.models.token import MfaChallenge
from app.passkeys import ceremonies as passkey_ceremonies
from app.steps import run_transaction
from app.web.flow import PostedForm, PostedFormDep, login_page, signed_in
from app.web.pages import render
from app.web.sessions import opener

router = APIRouter(prefix="/oauth", include_in_schema=False)

MAX_CREDENTIAL = 16_384  # a WebAuthn assertion as JSON: about a kilobyte
PASSKEY_FAILED = N_("That passkey could not sign you in. Try again, or use your password.")
SIGN_IN_AGAIN = N_("Please sign in again.")


@router.post("/authorize/login")
async def login_form(request: Request, session: SessionDep, posted: PostedFormDep) -> Response:
    email = posted.field("email")[:320]
    return await _after_login(
        request,
        session,
        posted,
        lambda: login_flow.login(
            session,
            email=email,
            password=posted.field("password"),
            actor=client_actor(request),
            start=opener(("pwd",)),
        ),
        email=email,
    )


async def _after_login(
    request: Request,
    session: Session,
    posted: PostedForm,
    attempt: Callable[[], Awaitable[Any]],
    *,
    email: str | None = None,
    failed: str | None = None,
) -> Response:
    """The page after a sign-in attempt: the form again (429 when rate-limited or locked
    out, else 400 with one generic message), the TOTP step, or on."""
    continuation = posted.continuation
    try:
        result = await attempt()
    except RateLimited as error:
        return login_page(
            request,
            continuation,
            message=error.detail,
            email=email,
            status_code=429,
            headers={"Retry-After": str(error.retry_after)},
        )
    except DomainError as error:  # one generic message for a wrong email or password
        message = failed or error.detail
        return login_page(request, continuation, message=message, email=email, status_code=400)
    if isinstance(result, MfaChallenge):
        return render(request, "mfa.html", continuation=continuation, mfa_token=result.mfa_token)
    return await run_transaction(signed_in, session, request, continuation, result)


@router.post("/authorize/passkey")
async def passkey_form(request: Request, session: SessionDep, posted: PostedFormDep) -> Response:
    """The answer of "Sign in with a passkey" (web/static/passkey.js), posted with the form."""
    raw = posted.form.get("credential")
    try:
        flow_id = uuid.UUID(posted.field("flow_id"))
        if not isinstance(raw, str) or len(raw) > MAX_CREDENTIAL:
            raise ValueError("no credential")
        credential = json.loads(raw)
    except ValueError:
        credential = None
    if not isinstance(credential, dict):
        return login_page(request, posted.continuation, message=PASSKEY_FAILED, status_code=400)
    return await _after_login(
        request,
        session,
        posted,
        lambda: run_transaction(
            passkey_ceremonies.login,
            session,
            flow_id=flow_id,
            credential=credential,
            actor=client_actor(request),
            opener=opener,
        ),
        failed=PASSKEY_FAILED,
    )


@router.post("/authorize/mfa")
async def mfa_form(request: Request, session: SessionDep, posted: PostedFormDep) -> Response:
    continuation = posted.continuation
    mfa_token = posted.field("mfa_token")
    try:
        result: Any = await run_transaction(
            login_flow.login_mfa,
            session,
            mfa_token=mfa_token,
            code=posted.field("code")[:64],
            actor=client_actor(request),
            opener=opener,
        )
    except (MfaFailed, RateLimited) as error:
        return render(
            request,
            "mfa.html",
            status_code=429 if isinstance(error, RateLimited) else 400,
            continuation=continuation,
            mfa_token=mfa_token,
            message=error.detail,
        )
    except InvalidToken:
        return login_page(request, continuation, message=SIGN_IN_AGAIN, status_code=400)
    return await run_transaction(signed_in, session, request, continuation, result)
