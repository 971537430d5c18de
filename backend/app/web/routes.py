"""The authorization endpoint and its hosted pages: login, second factor, consent.

Every step re-validates the original authorization request (carried in a hidden `request`
field); the rules live in oauth/authorize.py, the login rules in auth/login.py (login and
login_mfa, called as they are with a browser-session `start`)."""

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep, client_actor
from app.auth import login as login_flow
from app.core.config import get_settings
from app.core.i18n import N_
from app.core.permissions import PERMISSION_DESCRIPTIONS
from app.crud import authz, organizations, users
from app.crud import sessions as session_rows
from app.db import transaction
from app.errors import DomainError, InvalidToken, MfaFailed, RateLimited
from app.models.token import MfaChallenge
from app.models.user import User
from app.oauth import authorize
from app.oauth.authorize import AuthorizationRequest, Login, Next
from app.oauth.discovery import AUTHORIZE_PATH
from app.oauth.errors import AccessDenied, BadAuthorizationRequest, RedirectedError
from app.passkeys import ceremonies as passkey_ceremonies
from app.steps import run_transaction
from app.web import csrf
from app.web import i18n as web_i18n
from app.web.cookies import SESSION_COOKIE, read_cookie, set_cookie
from app.web.pages import PageAnswer, error_page, render
from app.web.sessions import BrowserLogin, current_login, opener

router = APIRouter(prefix="/oauth", include_in_schema=False)

SCOPE_DESCRIPTIONS = {
    "openid": N_("Know who you are"),
    "profile": N_("See your name"),
    "email": N_("See your email address"),
    "roles": N_("See your role and your roles"),
    "organizations": N_("See which organizations you belong to"),
    "offline_access": N_("Keep access while you are away (stay signed in)"),
    **{permission.value: text for permission, text in PERMISSION_DESCRIPTIONS.items()},
}
MAX_FIELD = 4096
MAX_PARAMS = 64
MAX_CREDENTIAL = 16_384  # a WebAuthn assertion as JSON: about a kilobyte
EXPIRED_FORM = N_("This form has expired. Go back to the application and try again.")
PASSKEY_FAILED = N_("That passkey could not sign you in. Try again, or use your password.")
SIGN_IN_AGAIN = N_("Please sign in again.")
TOO_MANY_PARAMETERS = N_("The request has too many parameters.")


def _params(query: str) -> Mapping[str, list[str]]:
    try:
        return parse_qs(query, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError:
        raise BadAuthorizationRequest(TOO_MANY_PARAMETERS) from None


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def _redirect(url: str, status_code: int = 302) -> RedirectResponse:
    return RedirectResponse(url, status_code=status_code)


def _login_page(
    request: Request,
    query: str,
    auth: AuthorizationRequest,
    *,
    message: str | None = None,
    email: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = render(
        request,
        "login.html",
        status_code=status_code,
        request_query=query,
        client_name=auth.client.name,
        email=email if email is not None else (auth.login_hint or ""),
        message=message,
        passkey_options_url=f"{get_settings().API_V1_STR}/auth/passkey/options",
    )
    response.headers.update(headers or {})
    return response


def _proceed(
    session: Session,
    request: Request,
    query: str,
    auth: AuthorizationRequest,
    login: Login | None,
    *,
    fresh: bool = False,
    selected: bool = False,
    status_code: int = 302,
) -> Response:
    """Show the login, account choice or consent page, or redirect to the client with a
    code."""
    try:
        step = authorize.next_step(session, auth, login, fresh=fresh, selected=selected)
    except RedirectedError as error:
        return _redirect(authorize.error_redirect(error), status_code)
    if step is Next.LOGIN:
        return _login_page(request, query, auth)
    assert login is not None
    if step is Next.SELECT_ACCOUNT:
        user = session.get(User, login.user_id)
        return render(
            request,
            "select_account.html",
            request_query=query,
            client_name=auth.client.name,
            email=user.email if user else "",
        )
    if step is Next.ORGANIZATION:
        user = session.get(User, login.user_id)
        return render(
            request,
            "organization.html",
            request_query=query,
            client_name=auth.client.name,
            email=user.email if user else "",
            organizations=organizations.of_user(session, login.user_id),
        )
    if step is Next.CONSENT:
        user = session.get(User, login.user_id)
        return render(
            request,
            "consent.html",
            request_query=query,
            client_name=auth.client.name,
            email=user.email if user else "",
            scopes=_consent_lines(session, auth),
        )
    url = authorize.issue_code(session, auth, login, actor=client_actor(request, login.user_id))
    return _redirect(url, status_code)


def _consent_lines(session: Session, auth: AuthorizationRequest) -> list[str]:
    """What the consent page lists: each scope asked for, and each permission of the
    resource asked for, by its description (AUTHZ.md, "Tokens")."""
    asked = auth.permissions()
    lines = [SCOPE_DESCRIPTIONS.get(name, name) for name in auth.scope if name not in asked]
    if auth.resource is not None and asked:
        described = authz.permission_descriptions(
            session, resource_id=auth.resource.resource_id, names=asked
        )
        lines += [described[name] for name in asked if name in described]
    return lines


def _parse(session: Session, query: str) -> AuthorizationRequest:
    return authorize.parse_request(session, _params(query))


def _pages_of(request: Request, query: str, auth: AuthorizationRequest) -> None:
    """The pages of this authorization request speak its `ui_locales` first, and the
    language menu comes back to the request itself (a form's answer has no address)."""
    web_i18n.choose(request, auth.ui_locales)
    request.state.here = f"{AUTHORIZE_PATH}?{query}"


def _refusal(request: Request, error: Exception) -> Response:
    if isinstance(error, BadAuthorizationRequest):
        return error_page(request, error.description)
    assert isinstance(error, RedirectedError)
    return _redirect(authorize.error_redirect(error), 303)


@router.get("/authorize")
def authorization_endpoint(request: Request, session: SessionDep) -> Response:
    return transaction(_authorize, session, request, request.url.query)


@router.post("/authorize")
async def authorization_endpoint_post(request: Request, session: SessionDep) -> Response:
    """The same request sent as a form (OIDC Core §3.1.2.1 allows GET and POST)."""
    form = await request.form(max_files=0, max_fields=MAX_PARAMS)
    query = urlencode(
        [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    )
    return await run_transaction(_authorize, session, request, query)


def _authorize(session: Session, request: Request, query: str) -> Response:
    try:
        auth = _parse(session, query)
    except (BadAuthorizationRequest, RedirectedError) as error:
        return _refusal(request, error)
    _pages_of(request, query, auth)
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    return _proceed(session, request, query, auth, login)


@dataclass(frozen=True, slots=True)
class PostedForm:
    """A hosted page's form, posted with this browser's CSRF token, and the authorization
    request it continues (its `request` field, validated again)."""

    form: FormData
    query: str
    auth: AuthorizationRequest

    def field(self, name: str) -> str:
        return _field(self.form, name)


async def _posted_form(request: Request, session: SessionDep) -> PostedForm:
    """Every POST of the hosted pages takes this first: a form whose CSRF token is not bound
    to this browser, or whose authorization request no longer holds, is answered with the
    page that refuses it (PageAnswer), and the route never runs."""
    form = await request.form(max_files=0, max_fields=16)
    if not csrf.valid(request, _field(form, "csrf_token")):
        raise PageAnswer(error_page(request, EXPIRED_FORM, status_code=403))
    query = _field(form, "request")
    try:
        auth = await run_transaction(_parse, session, query)
    except (BadAuthorizationRequest, RedirectedError) as error:
        raise PageAnswer(_refusal(request, error)) from None
    _pages_of(request, query, auth)
    return PostedForm(form, query, auth)


PostedFormDep = Annotated[PostedForm, Depends(_posted_form)]


def _signed_in(
    session: Session,
    request: Request,
    query: str,
    auth: AuthorizationRequest,
    browser: BrowserLogin,
) -> Response:
    """A fresh login: replace the browser's previous session, keep the language it was made
    in (the user's mails), set the cookie, carry on."""
    # The user's row first, then sessions': the lock order of every writer.
    users.remember_locale(
        session, user_id=browser.login.user_id, locale=web_i18n.locale_of(request)
    )
    previous = current_login(session, read_cookie(request, SESSION_COOKIE))
    if previous is not None and previous.session_id != browser.login.session_id:
        session_rows.revoke(session, previous.session_id)
    response = _proceed(session, request, query, auth, browser.login, fresh=True, status_code=303)
    set_cookie(response, SESSION_COOKIE, browser.cookie, max_age=browser.max_age)
    return response


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
    out, else 400 with one generic message), the TOTP step, or on to the client."""
    query, auth = posted.query, posted.auth
    try:
        result = await attempt()
    except RateLimited as error:
        return _login_page(
            request,
            query,
            auth,
            message=error.detail,
            email=email,
            status_code=429,
            headers={"Retry-After": str(error.retry_after)},
        )
    except DomainError as error:  # one generic message for a wrong email or password
        message = failed or error.detail
        return _login_page(request, query, auth, message=message, email=email, status_code=400)
    if isinstance(result, MfaChallenge):
        return render(request, "mfa.html", request_query=query, mfa_token=result.mfa_token)
    return await run_transaction(_signed_in, session, request, query, auth, result)


@router.post("/authorize/passkey")
async def passkey_form(request: Request, session: SessionDep, posted: PostedFormDep) -> Response:
    """The answer of "Sign in with a passkey" (web/static/passkey.js), posted with the form."""
    query, auth = posted.query, posted.auth
    raw = posted.form.get("credential")
    try:
        flow_id = uuid.UUID(posted.field("flow_id"))
        if not isinstance(raw, str) or len(raw) > MAX_CREDENTIAL:
            raise ValueError("no credential")
        credential = json.loads(raw)
    except ValueError:
        return _login_page(request, query, auth, message=PASSKEY_FAILED, status_code=400)
    if not isinstance(credential, dict):
        return _login_page(request, query, auth, message=PASSKEY_FAILED, status_code=400)
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
    query, auth = posted.query, posted.auth
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
            request_query=query,
            mfa_token=mfa_token,
            message=error.detail,
        )
    except InvalidToken:
        return _login_page(request, query, auth, message=SIGN_IN_AGAIN, status_code=400)
    return await run_transaction(_signed_in, session, request, query, auth, result)


@router.post("/authorize/account")
async def account_form(request: Request, session: SessionDep, posted: PostedFormDep) -> Response:
    """The answer of the account choice (prompt=select_account)."""
    action = posted.field("action")
    return await run_transaction(_account, session, request, posted.query, posted.auth, action)


def _account(
    session: Session, request: Request, query: str, auth: AuthorizationRequest, action: str
) -> Response:
    """ "Continue as …" carries on with the browser's login; "Use another account" shows the
    login form, whose login replaces the browser's session (as after prompt=login)."""
    if action == "another":
        return _login_page(request, query, auth, email="")
    if action != "continue":
        return error_page(request, N_("Choose to continue or to use another account."))
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    return _proceed(session, request, query, auth, login, selected=True, status_code=303)


@router.post("/authorize/organization")
async def organization_form(
    request: Request, session: SessionDep, posted: PostedFormDep
) -> Response:
    """The answer of the organization picker: the request goes on with that organization
    (checked again, as one named by the client: a member only)."""
    chosen = posted.field("organization")[:64]
    if not chosen or posted.auth.organization is not None:
        return error_page(request, N_("Choose an organization."))
    query = posted.query + "&" + urlencode({"organization": chosen})
    return await run_transaction(_chosen_organization, session, request, query)


def _chosen_organization(session: Session, request: Request, query: str) -> Response:
    try:
        auth = _parse(session, query)
    except (BadAuthorizationRequest, RedirectedError) as error:
        return _refusal(request, error)
    _pages_of(request, query, auth)
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    return _proceed(session, request, query, auth, login, selected=True, status_code=303)


@router.post("/authorize/consent")
async def consent_form(request: Request, session: SessionDep, posted: PostedFormDep) -> Response:
    action = posted.field("action")
    return await run_transaction(_consent, session, request, posted.query, posted.auth, action)


def _consent(
    session: Session, request: Request, query: str, auth: AuthorizationRequest, action: str
) -> Response:
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    if login is None:  # prompt and max_age were applied before the consent page was shown
        return _login_page(request, query, auth)
    if action == "deny":
        error = auth.error(AccessDenied("The user denied the request"))
        return _redirect(authorize.error_redirect(error), 303)
    if action != "allow":
        return error_page(request, N_("Choose Allow or Deny."))
    actor = client_actor(request, login.user_id)
    authorize.grant_consent(session, auth, login, actor=actor)
    return _redirect(authorize.issue_code(session, auth, login, actor=actor), 303)
