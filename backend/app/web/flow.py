"""The hosted sign-in as one flow: the login page, what follows a login (the account choice,
organization and consent pages of an authorization request, or the account page it came
from), and the posted form every step of it takes first (CSRF, then the continuation).

The rules live in oauth/authorize.py (the authorization request) and web/continuation.py
(where the flow goes on); the routes are in web/routes.py (the authorization endpoint and
its pages) and web/login.py (the login form, its second factor and passkey steps)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep, client_actor
from app.core.config import get_settings
from app.core.i18n import N_
from app.core.permissions import PERMISSION_DESCRIPTIONS
from app.crud import authz, organizations, users
from app.crud import sessions as session_rows
from app.models.user import User
from app.oauth import authorize
from app.oauth.authorize import AuthorizationRequest, Login, Next
from app.oauth.errors import BadAuthorizationRequest, RedirectedError
from app.steps import run_transaction
from app.web import continuation as continuations
from app.web import csrf
from app.web import i18n as web_i18n
from app.web.continuation import Continuation
from app.web.cookies import SESSION_COOKIE, read_cookie, set_cookie
from app.web.pages import PageAnswer, error_page, render
from app.web.sessions import BrowserLogin, current_login

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
MAX_PARAMS = continuations.MAX_PARAMS
EXPIRED_FORM = N_("This form has expired. Go back to the application and try again.")
TOO_MANY_PARAMETERS = continuations.TOO_MANY_PARAMETERS


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def redirect(url: str, status_code: int = 302) -> RedirectResponse:
    return RedirectResponse(url, status_code=status_code)


def pages_of(request: Request, continuation: Continuation) -> None:
    """The pages of an authorization request speak its `ui_locales` first (web/i18n.py), and
    the language menu comes back to the request itself, or to the login page of an account
    page (a form's answer has no address of its own)."""
    if continuation.auth is not None:
        web_i18n.choose(request, continuation.auth.ui_locales)
    if continuation.auth is not None or request.method != "GET":
        request.state.here = continuation.login_url


def login_page(
    request: Request,
    continuation: Continuation,
    *,
    message: str | None = None,
    notice: str | None = None,
    email: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The login form, carrying where it goes on (`continuation`), with the links to create
    an account (while registration is open) and to recover a password, which carry it too."""
    auth = continuation.auth
    hint = auth.login_hint if auth is not None else None
    settings = get_settings()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        continuation=continuation,
        client_name=auth.client.name if auth is not None else None,
        email=email if email is not None else (hint or ""),
        message=message,
        notice=notice,
        registration_open=settings.USERS_OPEN_REGISTRATION,
        passkey_options_url=f"{settings.API_V1_STR}/auth/passkey/options",
    )
    response.headers.update(headers or {})
    return response


def proceed(
    session: Session,
    request: Request,
    continuation: Continuation,
    login: Login | None,
    *,
    fresh: bool = False,
    selected: bool = False,
    status_code: int = 302,
) -> Response:
    """Where `login` goes on: the login page without one; for an authorization request the
    account choice, organization or consent page, or the client with a code; else the
    account page it came from."""
    auth = continuation.auth
    if auth is None:
        if login is None:
            return login_page(request, continuation)
        return redirect(continuation.path, status_code)
    try:
        step = authorize.next_step(session, auth, login, fresh=fresh, selected=selected)
    except RedirectedError as error:
        return redirect(authorize.error_redirect(error), status_code)
    if step is Next.LOGIN:
        return login_page(request, continuation)
    assert login is not None
    user = session.get(User, login.user_id)
    shown: dict[str, Any] = {
        "request_query": continuation.query,
        "client_name": auth.client.name,
        "email": user.email if user else "",
    }
    if step is Next.SELECT_ACCOUNT:
        return render(request, "select_account.html", **shown)
    if step is Next.ORGANIZATION:
        found = organizations.of_user(session, login.user_id)
        return render(request, "organization.html", organizations=found, **shown)
    if step is Next.CONSENT:
        scopes = consent_lines(session, auth)
        return render(request, "consent.html", scopes=scopes, **shown)
    url = authorize.issue_code(session, auth, login, actor=client_actor(request, login.user_id))
    return redirect(url, status_code)


def consent_lines(session: Session, auth: AuthorizationRequest) -> list[str]:
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


def refusal(request: Request, error: Exception) -> Response:
    """The answer to an authorization request that no longer holds: an error page, or the
    error redirect to the client."""
    if isinstance(error, BadAuthorizationRequest):
        return error_page(request, error.description)
    assert isinstance(error, RedirectedError)
    return redirect(authorize.error_redirect(error), 303)


def signed_in(
    session: Session, request: Request, continuation: Continuation, browser: BrowserLogin
) -> Response:
    """A fresh login (or a new account's first): replace the browser's previous session, keep
    the language it was made in (the user's mails), set the cookie, go on."""
    # The user's row first, then sessions': the lock order of every writer.
    users.remember_locale(
        session, user_id=browser.login.user_id, locale=web_i18n.locale_of(request)
    )
    previous = current_login(session, read_cookie(request, SESSION_COOKIE))
    if previous is not None and previous.session_id != browser.login.session_id:
        session_rows.revoke(session, previous.session_id)
    response = proceed(session, request, continuation, browser.login, fresh=True, status_code=303)
    set_cookie(response, SESSION_COOKIE, browser.cookie, max_age=browser.max_age)
    return response


@dataclass(frozen=True, slots=True)
class PostedForm:
    """A hosted page's form, posted with this browser's CSRF token, and where the sign-in
    goes on (its `request` field, validated again, or its `next` path)."""

    form: FormData
    continuation: Continuation

    def field(self, name: str) -> str:
        return field(self.form, name)


def _expired(request: Request) -> Response:
    return error_page(request, EXPIRED_FORM, status_code=403)


async def checked_form(
    request: Request, *, refused: Callable[[Request], Response] = _expired
) -> FormData:
    """The form of a hosted page's POST (the sign-in flow's, an account page's), if its CSRF
    token is this browser's (web/csrf.py); else the page `refused` answers (403)."""
    form = await request.form(max_files=0, max_fields=16)
    if not csrf.valid(request, field(form, "csrf_token")):
        raise PageAnswer(refused(request))
    return form


async def _posted_form(request: Request, session: SessionDep) -> PostedForm:
    """Every POST of the sign-in flow takes this first: a form whose CSRF token is not bound
    to this browser, or whose authorization request no longer holds, is answered with the
    page that refuses it (PageAnswer), and the route never runs. A form with a `next` field
    and no authorization request goes on to that account page (or the overview)."""
    form = await checked_form(request)
    query = field(form, "request")
    if not query and "next" in form:
        continuation = continuations.to_page(field(form, "next"))
    else:
        try:
            auth = await run_transaction(continuations.parse_request, session, query)
        except (BadAuthorizationRequest, RedirectedError) as error:
            raise PageAnswer(refusal(request, error)) from None
        continuation = Continuation(query=query, auth=auth)
    pages_of(request, continuation)
    return PostedForm(form, continuation)


PostedFormDep = Annotated[PostedForm, Depends(_posted_form)]


@dataclass(frozen=True, slots=True)
class AuthorizationForm:
    """A posted form of the authorization request's own pages (account choice, organization,
    consent): it always continues a request."""

    posted: PostedForm
    auth: AuthorizationRequest

    @property
    def continuation(self) -> Continuation:
        return self.posted.continuation

    @property
    def query(self) -> str:
        return self.posted.continuation.query

    def field(self, name: str) -> str:
        return self.posted.field(name)


async def _authorization_form(request: Request, posted: PostedFormDep) -> AuthorizationForm:
    auth = posted.continuation.auth
    if auth is None:
        raise PageAnswer(error_page(request, EXPIRED_FORM))
    return AuthorizationForm(posted, auth)


AuthorizationFormDep = Annotated[AuthorizationForm, Depends(_authorization_form)]
