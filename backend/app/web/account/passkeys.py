"""/account/passkeys: the person's passkeys, registered from the page (WebAuthn with the
service's own script, static/passkey_register.js), renamed and deleted, through the
ceremonies of /users/me/passkeys (passkeys/ceremonies.py). Adding one needs a login under
RECENT_LOGIN old, as the API's options without a password do (ceremonies.recent_login): an
older one is sent to the login page again and back."""

import json
import uuid
from typing import Any

from fastapi import Request
from sqlmodel import Session
from starlette.responses import JSONResponse, RedirectResponse, Response

from app.api.deps import SessionDep
from app.crud import passkeys as passkey_rows
from app.errors import IncorrectPassword, NotFound, PasskeyRefused
from app.models.passkey import PasskeyUpdate, RegistrationRequest
from app.models.session import AuthSession
from app.passkeys import ceremonies
from app.steps import run_transaction
from app.web.account.access import Account, AccountForm, AccountUser, login_url
from app.web.account.forms import Problems, validated
from app.web.account.messages import N_, Message
from app.web.account.rendering import account_router, page
from app.web.flow import field

router = account_router()
PATH = "/account/passkeys"
MAX_CREDENTIAL = 65_536  # a registration response with its attestation, as JSON

ADDED = N_("Your passkey is added. You can sign in with it now.")
RENAMED = N_("The passkey is renamed.")
DELETED = N_("The passkey is deleted. It no longer signs you in.")
REFUSED = N_("That passkey could not be added. Try again.")
GONE = N_("That passkey no longer exists.")
NAME_PROBLEM = N_("Use a name of 1 to %(maximum)s characters.")
NAME_MAX = 100
DONE = {"added": ADDED, "renamed": RENAMED, "deleted": DELETED}


# The login page again (prompt=login), coming back to this page.
AGAIN = login_url(PATH, again=True)


def _browser_row(session: Session, account: Account) -> AuthSession:
    row = session.get(AuthSession, account.login.session_id, populate_existing=True)
    assert row is not None  # the login was read from it this request
    return row


async def _page(
    request: Request,
    session: SessionDep,
    account: Account,
    *,
    notice: str | None = None,
    message: str | None = None,
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    keys = await run_transaction(passkey_rows.of_user, session, account.user.id)
    row = await run_transaction(_browser_row, session, account)
    return page(
        request,
        "passkeys.html",
        account=account,
        status_code=status_code,
        passkeys=keys,
        recent=ceremonies.recent_login(row),
        again=AGAIN,
        name_max=NAME_MAX,
        problems=problems or {},
        notice=Message(notice) if notice else None,
        message=Message(message) if message else None,
    )


@router.get("/passkeys")
async def passkeys_page(
    request: Request, session: SessionDep, account: AccountUser, done: str = ""
) -> Response:
    return await _page(request, session, account, notice=DONE.get(done))


@router.post("/passkeys/options")
async def registration_options(
    request: Request, session: SessionDep, _form: AccountForm, account: AccountUser
) -> Response:
    """The creation options for navigator.credentials.create() (POST
    /users/me/passkeys/registration/options' step, without a password: this browser's login
    must be recent); else 403 naming the login page to go to."""
    row = await run_transaction(_browser_row, session, account)
    try:
        options: dict[str, Any] = await ceremonies.begin_registration(
            session,
            user=account.user,
            auth_session=row,
            password=None,
            actor=account.actor(request),
        )
    except IncorrectPassword:
        return JSONResponse({"login": AGAIN}, status_code=403)
    return JSONResponse(options)


@router.post("/passkeys")
async def register(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """The browser's answer, posted with the form (POST /users/me/passkeys/registration's
    step): kept if it verifies against this person's live challenge."""
    raw = form.get("credential")
    name = field(form, "name").strip()
    try:
        if not isinstance(raw, str) or len(raw) > MAX_CREDENTIAL:
            raise ValueError("no credential")
        credential = json.loads(raw)
    except ValueError:
        credential = None
    body = validated(RegistrationRequest, {"credential": credential, "name": name or None})
    if not isinstance(body, RegistrationRequest):
        if "name" in body:
            problems = {"name": Message(NAME_PROBLEM, {"maximum": NAME_MAX})}
            return await _page(request, session, account, problems=problems, status_code=422)
        return await _page(request, session, account, message=REFUSED, status_code=400)
    try:
        await run_transaction(
            ceremonies.register,
            session,
            user=account.user,
            credential=body.credential,
            name=body.name,
            actor=account.actor(request),
        )
    except PasskeyRefused:
        return await _page(request, session, account, message=REFUSED, status_code=400)
    return RedirectResponse(f"{PATH}?done=added", status_code=303)


def _passkey_id(form: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(field(form, "passkey"))
    except ValueError:
        return None


@router.post("/passkeys/rename")
async def rename(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """A new `name` (PATCH /users/me/passkeys/{id}'s step and rules)."""
    passkey_id = _passkey_id(form)
    if passkey_id is None:
        return await _page(request, session, account, message=GONE, status_code=404)
    body = validated(PasskeyUpdate, {"name": field(form, "name")})
    if not isinstance(body, PasskeyUpdate):
        problems = {f"name-{passkey_id}": Message(NAME_PROBLEM, {"maximum": NAME_MAX})}
        return await _page(request, session, account, problems=problems, status_code=422)
    try:
        await run_transaction(
            ceremonies.rename,
            session,
            user_id=account.user.id,
            passkey_id=passkey_id,
            name=body.name,
        )
    except NotFound:
        return await _page(request, session, account, message=GONE, status_code=404)
    return RedirectResponse(f"{PATH}?done=renamed", status_code=303)


@router.post("/passkeys/delete")
async def delete(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    """DELETE /users/me/passkeys/{id}'s step (audited)."""
    passkey_id = _passkey_id(form)
    if passkey_id is None:
        return await _page(request, session, account, message=GONE, status_code=404)
    try:
        await run_transaction(
            ceremonies.delete,
            session,
            user_id=account.user.id,
            passkey_id=passkey_id,
            actor=account.actor(request),
        )
    except NotFound:
        return await _page(request, session, account, message=GONE, status_code=404)
    return RedirectResponse(f"{PATH}?done=deleted", status_code=303)
