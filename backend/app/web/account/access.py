"""Who is using the account pages: the person of this browser's live session (the SSO
cookie of the hosted login, web/sessions.current_login), read from the database on every
request; without one, the login page, which comes back here (web/continuation.py).

A credential change needs the person there now (the API's rule: no OAuth access token, and
for a passkey a login under 5 minutes old, passkeys/ceremonies.RECENT_LOGIN). On the account
pages a change of password or address asks for the current password, which is that proof;
a page without such a field takes RecentAccountUser: a browser session whose login
(auth_time) is under RECENT_LOGIN old, else the login page again (prompt=login) and back."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep, client_actor
from app.crud.audit import Actor
from app.models.common import utcnow
from app.models.user import User
from app.oauth.authorize import Login
from app.oauth.errors import BadAuthorizationRequest, RedirectedError
from app.passkeys.ceremonies import RECENT_LOGIN
from app.steps import run_transaction
from app.web import continuation as continuations
from app.web import i18n as web_i18n
from app.web.account import messages
from app.web.account.rendering import problem
from app.web.continuation import ACCOUNT, Continuation
from app.web.cookies import SESSION_COOKIE, read_cookie
from app.web.flow import checked_form, refusal
from app.web.pages import PageAnswer
from app.web.sessions import current_login

LOGIN_PATH = f"{ACCOUNT}/login"


@dataclass(frozen=True, slots=True)
class Account:
    """The signed-in person and the login of this browser's session."""

    user: User
    login: Login

    def actor(self, request: Request) -> Actor:
        return client_actor(request, self.user.id)


def login_url(next_path: str, *, again: bool = False) -> str:
    """The login page that comes back to `next_path`; `again`: even with a live session."""
    query = {"next": next_path, **({"prompt": "login"} if again else {})}
    return f"{LOGIN_PATH}?{urlencode(query)}"


def here(request: Request) -> str:
    """The page to come back to: a GET's own URL, a form's page (the path it posts to)."""
    query = request.url.query if request.method in ("GET", "HEAD") else ""
    return request.url.path + (f"?{query}" if query else "")


async def continuation_of(
    request: Request, session: Session, fields: Mapping[str, str]
) -> Continuation:
    """Where a sign-up, recovery or verification page goes on: the authorization request
    (`request`, validated again: else the page that refuses it) or the account page `next`
    of a link's query or a form's fields. An authorization request's page speaks its
    `ui_locales` first, as the login page does (web/i18n.py)."""
    try:
        continuation = await run_transaction(
            continuations.resolve,
            session,
            request=fields.get("request"),
            next_path=fields.get("next"),
        )
    except (BadAuthorizationRequest, RedirectedError) as error:
        raise PageAnswer(refusal(request, error)) from None
    if continuation.auth is not None:
        web_i18n.choose(request, continuation.auth.ui_locales)
    return continuation


def signed_in_user(session: Session, cookie: str | None) -> tuple[Login, User] | None:
    """The live login of `cookie` and its user (active), read now."""
    login = current_login(session, cookie)
    user = session.get(User, login.user_id, populate_existing=True) if login else None
    return (login, user) if login is not None and user is not None else None


async def _account(request: Request, session: SessionDep) -> Account:
    found = await run_transaction(signed_in_user, session, read_cookie(request, SESSION_COOKIE))
    if found is None:
        raise PageAnswer(RedirectResponse(login_url(here(request)), status_code=303))
    return Account(user=found[1], login=found[0])


AccountUser = Annotated[Account, Depends(_account)]


async def _recent_account(request: Request, account: AccountUser) -> Account:
    if utcnow() - account.login.auth_time >= RECENT_LOGIN:
        again = login_url(here(request), again=True)
        raise PageAnswer(RedirectResponse(again, status_code=303))
    return account


# An account page that changes a credential without asking for the password.
RecentAccountUser = Annotated[Account, Depends(_recent_account)]


def _expired(request: Request) -> Response:
    return problem(request, messages.EXPIRED_FORM, status_code=403)


async def _posted(request: Request) -> FormData:
    """The form of an account page's POST, if its CSRF token is this browser's (else the
    403 page): flow.checked_form, the hosted pages' one check."""
    return await checked_form(request, refused=_expired)


# Declared before AccountUser in a route, so a forged form is refused before anything is read.
AccountForm = Annotated[FormData, Depends(_posted)]
