"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which client asks, where
to send the browser afterwards (a registered post_logout_redirect_uri, exactly, or
nowhere), and the end of the browser session and of the OAuth sessions it approved."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlmodel import Session

from app.core.security import IdTokenHint, decode_id_token_hint
from app.crud import audit, clients, sessions
from app.crud.audit import Actor
from app.errors import InvalidToken
from app.models.session import AuthSession, SessionKind
from app.oauth.authorize import Login
from app.oauth.errors import BadAuthorizationRequest

PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    hint: IdTokenHint | None  # a valid id_token_hint: log out without asking
    client_id: str | None
    redirect_uri: str | None  # registered for the client, exactly; else None: no redirect
    state: str | None


def parse(session: Session, params: Mapping[str, str]) -> LogoutRequest:
    """The request's parameters; a client_id that is not the hint's audience is refused
    (§2: the OP must check they match), an invalid hint only means asking the user."""
    hint: IdTokenHint | None = None
    if params.get("id_token_hint"):
        try:
            hint = decode_id_token_hint(params["id_token_hint"])
        except InvalidToken:
            hint = None
    client_id = params.get("client_id") or None
    if hint is not None and client_id is not None and client_id != hint.aud:
        raise BadAuthorizationRequest("client_id does not match the id_token_hint.")
    client_id = client_id or (hint.aud if hint else None)
    client = clients.get_client(session, client_id) if client_id else None
    session.commit()
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


def _hinted_browser_session(session: Session, hint: IdTokenHint) -> uuid.UUID | None:
    """The browser session the hint's `sid` names, if it is one of the hint's user."""
    try:
        sid = uuid.UUID(hint.sid or "")
    except ValueError:
        return None
    row = session.get(AuthSession, sid, populate_existing=True)
    if row is None or row.kind is not SessionKind.BROWSER or str(row.user_id) != hint.sub:
        return None
    return row.id


def end(session: Session, request: LogoutRequest, login: Login | None, *, actor: Actor) -> bool:
    """End what the logout names: the browser's own session (with a hint: only if it is the
    hint's user), and the browser session the hint names; each with the OAuth sessions it
    approved. True if the browser's own session ended (its cookie is then cleared)."""
    targets: set[uuid.UUID] = set()
    subject: uuid.UUID | None = None
    own = login is not None and (request.hint is None or str(login.user_id) == request.hint.sub)
    if login is not None and own:
        targets.add(login.session_id)
        subject = login.user_id
    if request.hint is not None:
        hinted = _hinted_browser_session(session, request.hint)
        if hinted is not None:
            targets.add(hinted)
            subject = uuid.UUID(request.hint.sub)  # checked against the row's user
    ended = sum(sessions.revoke_browser(session, target) for target in sorted(targets))
    if subject is not None:
        audit.record(
            session,
            "auth.logout",
            actor=Actor(user_id=subject, ip=actor.ip, user_agent=actor.user_agent),
            subject_id=subject,
            scope="end_session",
            client_id=request.client_id,
            sessions=ended,
        )
    session.commit()
    return own


def redirect_url(request: LogoutRequest) -> str | None:
    """Where the browser goes after the logout, with `state`; None: stay on our page."""
    if request.redirect_uri is None:
        return None
    if request.state is None:
        return request.redirect_uri
    separator = "&" if "?" in request.redirect_uri else "?"
    return request.redirect_uri + separator + urlencode({"state": request.state})
