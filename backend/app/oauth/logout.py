"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which client asks, where
to send the browser afterwards (a registered post_logout_redirect_uri, exactly, or
nowhere), whether the user confirms first, and the end of the browser's own session and of
the OAuth sessions it approved.

A logout ends only the session of the browser that asks: an id_token_hint decides whether
to ask first (not when its `sid` is this browser's session), never which session ends, so
an ID token shown from another browser signs nobody out (OIDC.md revision 2)."""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlmodel import Session

from app.core.config import get_settings
from app.core.i18n import N_
from app.core.security import IdTokenHint, TokenKind, decode
from app.crud import audit, clients, sessions
from app.crud.audit import Actor
from app.errors import InvalidToken
from app.oauth.authorize import Login
from app.oauth.errors import BadAuthorizationRequest

PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    hint: IdTokenHint | None  # a valid id_token_hint, not expired longer than a session lives
    client_id: str | None
    redirect_uri: str | None  # registered for the client, exactly; else None: no redirect
    state: str | None


def parse(session: Session, params: Mapping[str, str]) -> LogoutRequest:
    """The request's parameters. A hint that is not a valid ID token of ours (a modified
    one) is refused, and so is a client_id that is not the hint's audience (§2: the OP
    must check they match); a hint expired longer than a browser session lives is ignored."""
    hint: IdTokenHint | None = None
    if params.get("id_token_hint"):
        try:
            hint = decode(params["id_token_hint"], TokenKind.ID_TOKEN_HINT)
        except InvalidToken:
            raise BadAuthorizationRequest(N_("The id_token_hint is not valid.")) from None
        if not _recent(hint):
            hint = None
    client_id = params.get("client_id") or None
    if hint is not None and client_id is not None and client_id != hint.aud:
        raise BadAuthorizationRequest(N_("client_id does not match the id_token_hint."))
    client_id = client_id or (hint.aud if hint else None)
    client = clients.get_client(session, client_id) if client_id else None
    wanted = params.get("post_logout_redirect_uri")
    redirect_uri = (
        wanted if client is not None and wanted in client.post_logout_redirect_uris else None
    )
    return LogoutRequest(
        hint=hint,
        client_id=client.client_id if client else None,
        redirect_uri=redirect_uri,
        state=params.get("state") or None,
    )


def _recent(hint: IdTokenHint) -> bool:
    """Expired at most a browser session's lifetime ago (web/sessions.opener opens one for
    REFRESH_TOKEN_EXPIRE_DAYS): an older hint cannot name a session that is still alive."""
    lifetime = get_settings().REFRESH_TOKEN_EXPIRE_DAYS * 86400
    return hint.exp + lifetime >= time.time()


def asks_first(request: LogoutRequest, login: Login | None) -> bool:
    """Whether the user confirms before anything ends: unless the hint names this browser's
    own session; without a hint, whenever this browser has a session to end."""
    if request.hint is None:
        return login is not None
    return not (
        login is not None
        and request.hint.sid == str(login.session_id)
        and request.hint.sub == str(login.user_id)
    )


def end(session: Session, request: LogoutRequest, login: Login | None, *, actor: Actor) -> bool:
    """End this browser's own session, if it has one, with the OAuth sessions it approved.
    True if it had one (its cookie is then cleared)."""
    if login is None:
        return False
    ended = sessions.revoke_browser(session, login.session_id)
    audit.record(
        session,
        "auth.logout",
        actor=Actor(user_id=login.user_id, ip=actor.ip, user_agent=actor.user_agent),
        subject_id=login.user_id,
        scope="end_session",
        client_id=request.client_id,
        sessions=ended,
    )
    return True


def redirect_url(request: LogoutRequest) -> str | None:
    """Where the browser goes after the logout, with `state`; None: stay on our page."""
    if request.redirect_uri is None:
        return None
    if request.state is None:
        return request.redirect_uri
    separator = "&" if "?" in request.redirect_uri else "?"
    return request.redirect_uri + separator + urlencode({"state": request.state})
