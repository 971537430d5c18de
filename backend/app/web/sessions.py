"""Browser sessions: a session row of kind `browser` behind the SSO cookie, opened by the
login flows (as `start`) and ended by every rule that ends sessions."""

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.core.security import constant_time_equals, refresh_expiry, token_digest
from app.crud import sessions
from app.crud.audit import Actor
from app.models.common import utcnow
from app.models.session import AuthSession, SessionKind
from app.models.user import User
from app.oauth.authorize import Login


@dataclass(frozen=True, slots=True)
class BrowserLogin:
    """A login just made on the hosted page: the cookie to set and the login it holds."""

    cookie: str
    login: Login
    max_age: int


def opener(amr: tuple[str, ...]) -> Callable[..., BrowserLogin]:
    """A `start` for auth.login.login / auth.mfa.login that opens a browser session."""

    def start(session: Session, *, user: User, actor: Actor) -> BrowserLogin:
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        expires_at = refresh_expiry()
        row = sessions.open_session(
            session,
            user_id=user.id,
            refresh_jti=token_digest(secret),  # the cookie's secret, as a digest
            expires_at=expires_at,
            ip=actor.ip,
            user_agent=actor.user_agent,
            kind=SessionKind.BROWSER,
            auth_time=now,
            amr=" ".join(amr),
        )
        return BrowserLogin(
            cookie=f"{row.id}.{secret}",
            login=Login(session_id=row.id, user_id=user.id, auth_time=now, amr=amr),
            max_age=int((expires_at - now).total_seconds()),
        )

    return start


def current_login(session: Session, cookie: str | None) -> Login | None:
    """The live browser session the cookie names (of an active user), or None."""
    if not cookie:
        return None
    session_id, _, secret = cookie.partition(".")
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        return None
    row = session.exec(
        select(AuthSession, col(User.is_active))
        .join(User, col(User.id) == col(AuthSession.user_id))
        .where(col(AuthSession.id) == sid),
        execution_options={"populate_existing": True},
    ).first()
    if row is None:
        return None
    auth_session, is_active = row
    if (
        auth_session.kind is not SessionKind.BROWSER
        or not is_active
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= utcnow()
        or auth_session.auth_time is None
        or not constant_time_equals(token_digest(secret), auth_session.refresh_jti)
    ):
        return None
    return Login(
        session_id=auth_session.id,
        user_id=auth_session.user_id,
        auth_time=auth_session.auth_time,
        amr=tuple((auth_session.amr or "").split()),
    )
