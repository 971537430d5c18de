"""/account/mfa: two-factor authentication with an authenticator app (TOTP), through the
steps of POST/DELETE /users/me/mfa/totp and its confirmation (auth/mfa.py): the set-up after
the password (the re-authentication of that page, counted toward the lockout), the QR code
as an SVG inside the page and the secret as text, the confirmation with a code, the recovery
codes shown once, and turning it off with the password and a code."""

import io
from collections.abc import Mapping

import segno
from fastapi import Request
from markupsafe import Markup
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.auth import mfa
from app.crud import mfa as mfa_rows
from app.errors import Conflict, DomainError, MfaAlreadyEnabled, MfaNotStarted
from app.models.account import PasswordConfirmation, TotpCode, TotpDisableRequest
from app.steps import run_transaction
from app.web.account import messages
from app.web.account.access import Account, AccountForm, AccountUser
from app.web.account.forms import Problems, validated, values
from app.web.account.messages import N_, Message
from app.web.account.refusals import ENTER_CODE, credential_refusal
from app.web.account.rendering import account_router, page

router = account_router()
PATH = "/account/mfa"

DISABLED = N_("Two-factor authentication is off. You sign in with your password alone.")
ALREADY_ON = N_("Two-factor authentication is already on.")
NOT_ON = N_("Two-factor authentication is not on.")
NOT_STARTED = N_("There is no set-up to confirm. Start the set-up again.")
RESTARTED = N_("The set-up was started again elsewhere. Use the newest QR code, or start again.")


def qr_svg(uri: str) -> Markup:
    """`uri` as a QR code, an SVG to put inside the page: drawn with attributes (fill,
    stroke), no style attribute or element, so the pages' CSP (style-src 'self') allows it;
    sized by the stylesheet (viewBox, no width or height)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer,
        kind="svg",
        xmldecl=False,
        svgns=True,
        scale=1,
        border=4,
        dark="#000",
        light="#fff",
        svgclass="qr-code",
        lineclass=None,
        omitsize=True,
    )
    return Markup(buffer.getvalue().decode().strip())  # noqa: S704 (segno's own drawing)


def grouped(secret: str) -> str:
    """The secret as people type it: groups of four (authenticator apps ignore the spaces)."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


async def _overview(
    request: Request,
    session: SessionDep,
    account: Account,
    *,
    problems: Problems | None = None,
    notice: str | None = None,
    message: Message | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The page as it is now: on (codes left, the form to turn it off) or off (the form to
    set it up)."""
    user = account.user
    enabled = await run_transaction(_enabled, session, account)
    codes_left = (
        await run_transaction(mfa_rows.recovery_codes_left, session, user_id=user.id)
        if enabled
        else 0
    )
    return page(
        request,
        "mfa.html",
        account=account,
        status_code=status_code,
        headers=dict(headers or {}),
        enabled=enabled,
        codes_left=codes_left,
        problems=problems or {},
        notice=Message(notice) if notice else None,
        message=message,
    )


def _enabled(session: Session, account: Account) -> bool:
    session.refresh(account.user)
    return bool(account.user.mfa_enabled)


def _asked(problems: Problems) -> Problems:
    """A field asked again (the current password, a code) said as such: forms.validated
    reads `password` as a new one."""
    said = {"password": Message(messages.ENTER_PASSWORD), "code": Message(ENTER_CODE)}
    return {name: said.get(name, problem) for name, problem in problems.items()}


def _refused(error: DomainError) -> tuple[int, Problems, Message | None, dict[str, str]]:
    refusal = credential_refusal(error)
    if refusal is None:
        raise error
    return refusal.status_code, refusal.problems, refusal.message, refusal.headers


@router.get("/mfa")
async def mfa_page(
    request: Request, session: SessionDep, account: AccountUser, done: str = ""
) -> Response:
    return await _overview(request, session, account, notice=DISABLED if done == "off" else None)


@router.post("/mfa/setup")
async def setup(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """The password, then a new secret (POST /users/me/mfa/totp's step): its QR code, the
    secret as text, and the form that confirms it."""
    body = validated(PasswordConfirmation, values(form, "password"))
    if not isinstance(body, PasswordConfirmation):
        return await _overview(request, session, account, problems=_asked(body), status_code=422)
    try:
        started = await mfa.begin_setup(
            session, user=account.user, password=body.password, actor=account.actor(request)
        )
    except MfaAlreadyEnabled:
        return await _overview(
            request, session, account, message=Message(ALREADY_ON), status_code=409
        )
    except DomainError as error:
        status_code, problems, message, headers = _refused(error)
        return await _overview(
            request,
            session,
            account,
            problems=problems,
            message=message,
            status_code=status_code,
            headers=headers,
        )
    return page(
        request,
        "mfa_setup.html",
        account=account,
        qr=qr_svg(started.otpauth_uri),
        secret=grouped(started.secret),
        problems={},
    )


def _confirm_form(
    request: Request,
    account: Account,
    *,
    problems: Problems,
    status_code: int,
) -> Response:
    """The confirmation again, without the secret (shown once, after the password)."""
    return page(
        request,
        "mfa_setup.html",
        account=account,
        status_code=status_code,
        qr=None,
        secret=None,
        problems=problems,
    )


@router.post("/mfa/confirm")
async def confirm(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """A code from the new secret turns TOTP on (POST /users/me/mfa/totp/confirm's step): the
    recovery codes, shown this once."""
    body = validated(TotpCode, values(form, "code"))
    if not isinstance(body, TotpCode):
        return _confirm_form(request, account, problems=_asked(body), status_code=422)
    try:
        codes = await run_transaction(
            mfa.confirm_setup,
            session,
            user_id=account.user.id,
            code=body.code,
            actor=account.actor(request),
        )
    except MfaAlreadyEnabled:
        return await _overview(
            request, session, account, message=Message(ALREADY_ON), status_code=409
        )
    except MfaNotStarted:
        return await _overview(
            request, session, account, message=Message(NOT_STARTED), status_code=400
        )
    except Conflict:
        return await _overview(
            request, session, account, message=Message(RESTARTED), status_code=409
        )
    except DomainError as error:
        status_code, problems, _message, _headers = _refused(error)
        return _confirm_form(request, account, problems=problems, status_code=status_code)
    return page(request, "mfa_codes.html", account=account, codes=codes)


@router.post("/mfa/disable")
async def disable(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """Off, after the password and a current code (DELETE /users/me/mfa/totp's step)."""
    body = validated(TotpDisableRequest, values(form, "password", "code"))
    if not isinstance(body, TotpDisableRequest):
        return await _overview(request, session, account, problems=_asked(body), status_code=422)
    try:
        await mfa.disable(
            session,
            user=account.user,
            password=body.password,
            code=body.code,
            actor=account.actor(request),
        )
    except MfaNotStarted:
        return await _overview(request, session, account, message=Message(NOT_ON), status_code=409)
    except DomainError as error:
        status_code, problems, message, headers = _refused(error)
        return await _overview(
            request,
            session,
            account,
            problems=problems,
            message=message,
            status_code=status_code,
            headers=headers,
        )
    return RedirectResponse(f"{PATH}?done=off", status_code=303)
