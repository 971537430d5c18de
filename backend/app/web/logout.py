"""The end_session endpoint (RP-initiated logout), GET and POST: with a valid
id_token_hint naming this browser's session it logs out at once; otherwise the browser's
user confirms on a page whose form carries a csrf_token bound to the browser, and only this
browser's session ends. The rules live in oauth/logout.py."""

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep, client_actor
from app.crud import clients
from app.db import transaction
from app.models.user import User
from app.oauth import logout
from app.oauth.authorize import Login
from app.oauth.discovery import END_SESSION_PATH
from app.oauth.errors import BadAuthorizationRequest
from app.steps import run_transaction
from app.web import csrf
from app.web import i18n as web_i18n
from app.web.cookies import SESSION_COOKIE, clear_cookie, read_cookie
from app.web.flow import EXPIRED_FORM, MAX_FIELD, MAX_PARAMS, TOO_MANY_PARAMETERS
from app.web.pages import error_page, render
from app.web.sessions import current_login

router = APIRouter(include_in_schema=False)


def _params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The first value of each known parameter, bounded in size."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in logout.PARAMS and name not in params:
            params[name] = value[:MAX_FIELD]
    return params


@router.get(END_SESSION_PATH)
def end_session(request: Request, session: SessionDep) -> Response:
    try:
        pairs = parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError:
        return error_page(request, TOO_MANY_PARAMETERS)
    return transaction(_end_session, session, request, _params(pairs), confirmed=False)


@router.post(END_SESSION_PATH)
async def end_session_post(request: Request, session: SessionDep) -> Response:
    """The RP's form post of the same parameters, or the confirmation page's form."""
    form = await request.form(max_files=0, max_fields=MAX_PARAMS)
    pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    confirming = "csrf_token" in form
    if confirming:
        token = form.get("csrf_token")
        if not csrf.valid(request, token if isinstance(token, str) else None):
            return error_page(request, EXPIRED_FORM, status_code=403)
    params = _params(pairs)
    return await run_transaction(_end_session, session, request, params, confirmed=confirming)


def _end_session(
    session: Session, request: Request, params: dict[str, str], *, confirmed: bool
) -> Response:
    web_i18n.choose(request, params.get("ui_locales"))
    try:
        parsed = logout.parse(session, params)
    except BadAuthorizationRequest as error:
        return error_page(request, error.description)
    login = current_login(session, read_cookie(request, SESSION_COOKIE))
    if not confirmed and logout.asks_first(parsed, login):
        return _confirmation(session, request, parsed, params, login)
    signed_out = logout.end(session, parsed, login, actor=client_actor(request))
    url = logout.redirect_url(parsed)
    response: Response = (
        RedirectResponse(url, status_code=303 if request.method == "POST" else 302)
        if url is not None
        else render(request, "logged_out.html", signed_out=signed_out)
    )
    if signed_out:
        clear_cookie(response, SESSION_COOKIE)
    return response


def _confirmation(
    session: Session,
    request: Request,
    parsed: logout.LogoutRequest,
    params: dict[str, str],
    login: Login | None,
) -> Response:
    """The page that asks; its form carries the request without the hint (confirming ends
    this browser's session whatever the hint named) but with the client the hint named."""
    client = clients.get_client(session, parsed.client_id) if parsed.client_id else None
    user = session.get(User, login.user_id) if login is not None else None
    carried = {k: v for k, v in params.items() if k != "id_token_hint"}
    if parsed.client_id is not None:
        carried["client_id"] = parsed.client_id
    return render(
        request,
        "logout.html",
        client_name=client.name if client else None,
        email=user.email if user else None,
        params=carried,
    )
