"""The authorization endpoint and the pages of its request: account choice, organization,
consent.

Every step re-validates the original authorization request (carried in a hidden `request`
field); the rules live in oauth/authorize.py. The login form and its second factor are in
web/login.py, the flow they share in web/flow.py."""

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from app.api.deps import SessionDep, client_actor
from app.core.i18n import N_
from app.db import transaction
from app.oauth import authorize
from app.oauth.errors import AccessDenied, BadAuthorizationRequest, RedirectedError
from app.steps import run_transaction
from app.web import continuation as continuations
from app.web.continuation import Continuation
from app.web.cookies import SESSION_COOKIE, read_cookie
from app.web.flow import (
    MAX_PARAMS,
    AuthorizationFormDep,
    login_page,
    pages_of,
    proceed,
    redirect,
    refusal,
)
from app.web.pages import error_page
from app.web.sessions import current_login

router = APIRouter(prefix="/oauth", include_in_schema=False)


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
        auth = continuations.parse_request(session, query)
    except (BadAuthorizationRequest, RedirectedError) as error:
        return refusal(request, error)
    continuation = Continuation(query=query, auth=auth)
    pages_of(request, continuation)
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    return proceed(session, request, continuation, login)


@router.post("/authorize/account")
async def account_form(
    request: Request, session: SessionDep, posted: AuthorizationFormDep
) -> Response:
    """The answer of the account choice (prompt=select_account)."""
    action = posted.field("action")
    continuation = posted.continuation
    return await run_transaction(_account, session, request, continuation, action)


def _account(
    session: Session, request: Request, continuation: Continuation, action: str
) -> Response:
    """ "Continue as …" carries on with the browser's login; "Use another account" shows the
    login form, whose login replaces the browser's session (as after prompt=login)."""
    if action == "another":
        return login_page(request, continuation, email="")
    if action != "continue":
        return error_page(request, N_("Choose to continue or to use another account."))
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    return proceed(session, request, continuation, login, selected=True, status_code=303)


@router.post("/authorize/organization")
async def organization_form(
    request: Request, session: SessionDep, posted: AuthorizationFormDep
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
        auth = continuations.parse_request(session, query)
    except (BadAuthorizationRequest, RedirectedError) as error:
        return refusal(request, error)
    continuation = Continuation(query=query, auth=auth)
    pages_of(request, continuation)
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    return proceed(session, request, continuation, login, selected=True, status_code=303)


@router.post("/authorize/consent")
async def consent_form(
    request: Request, session: SessionDep, posted: AuthorizationFormDep
) -> Response:
    action = posted.field("action")
    continuation = posted.continuation
    return await run_transaction(_consent, session, request, continuation, action)


def _consent(
    session: Session, request: Request, continuation: Continuation, action: str
) -> Response:
    auth = continuation.auth
    assert auth is not None
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    if login is None:  # prompt and max_age were applied before the consent page was shown
        return login_page(request, continuation)
    if action == "deny":
        error = auth.error(AccessDenied("The user denied the request"))
        return redirect(authorize.error_redirect(error), 303)
    if action != "allow":
        return error_page(request, N_("Choose Allow or Deny."))
    actor = client_actor(request, login.user_id)
    authorize.grant_consent(session, auth, login, actor=actor)
    return redirect(authorize.issue_code(session, auth, login, actor=actor), 303)
