"""Session chains: open a session at login, rotate it at refresh, spot reuse, end it."""

from datetime import timedelta

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from app.core import metrics
from app.core.config import get_settings
from app.core.security import (
    TokenClaims,
    TokenType,
    access_expiry,
    create_token,
    decode_token,
    new_jti,
    refresh_expiry,
)
from app.crud import audit, sessions
from app.crud.audit import Actor
from app.db import read_session, reads_on_event_loop
from app.errors import InvalidToken
from app.models.common import utcnow
from app.models.session import AuthSession
from app.models.token import TokenPair
from app.models.user import User


def _pair(row: AuthSession, *, refresh_jti: str) -> TokenPair:
    settings = get_settings()
    access = create_token(
        subject=row.user_id,
        session_id=row.id,
        token_type=TokenType.ACCESS,
        expires_at=access_expiry(),
    )
    refresh = create_token(
        subject=row.user_id,
        session_id=row.id,
        token_type=TokenType.REFRESH,
        expires_at=row.expires_at,
        jti=refresh_jti,
    )
    return TokenPair(
        access_token=access.token,
        refresh_token=refresh.token,
        expires_in=settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60,
    )


def start_session(session: Session, *, user: User, actor: Actor) -> TokenPair:
    """Open a session for a user whose credentials were checked. The caller commits."""
    jti = new_jti()
    row = sessions.open_session(
        session,
        user_id=user.id,
        refresh_jti=jti,
        expires_at=refresh_expiry(),
        ip=actor.ip,
        user_agent=actor.user_agent,
    )
    return _pair(row, refresh_jti=jti)


def _load(session: Session, claims_sid: object, claims_sub: object) -> tuple[User, AuthSession]:
    row = session.exec(
        select(User, AuthSession)
        .join(AuthSession, col(AuthSession.user_id) == col(User.id))
        .where(col(AuthSession.id) == claims_sid, col(User.id) == claims_sub)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise InvalidToken()
    user, auth_session = row
    if not user.is_active or auth_session.revoked_at is not None:
        raise InvalidToken()
    if auth_session.expires_at <= utcnow():
        raise InvalidToken()
    return user, auth_session


async def authenticate(token: str) -> tuple[User, AuthSession]:
    """The per-request check: a valid access token of a live session of an active user.

    The token is verified on the event loop (CPU only). The user and session rows are read on
    every request, in a read session of their own: on the loop for SQLite, else in one
    worker-thread hop (see db.reads_on_event_loop)."""
    claims = decode_token(token, TokenType.ACCESS)
    if reads_on_event_loop():
        return _load_live(claims)
    return await run_in_threadpool(_load_live, claims)


def _load_live(claims: TokenClaims) -> tuple[User, AuthSession]:
    with read_session() as session:
        return _load(session, claims.sid, claims.sub)


def refresh(session: Session, *, refresh_token: str, actor: Actor) -> TokenPair:
    """Rotate the session's refresh token; a spent token revokes the whole session."""
    claims = decode_token(refresh_token, TokenType.REFRESH)
    user, row = _load(session, claims.sid, claims.sub)
    jti = new_jti()
    if sessions.rotate(
        session, row=row, presented_jti=claims.jti, new_jti=jti, expires_at=refresh_expiry()
    ):
        session.commit()
        return _pair(row, refresh_jti=jti)

    session.refresh(row)  # lost the race or presented a spent token: see the live state
    if row.revoked_at is None and _within_grace(row, claims.jti):
        session.commit()
        return _pair(row, refresh_jti=row.refresh_jti)
    if sessions.revoke(session, row.id):
        audit.record(
            session,
            "auth.refresh_reuse_detected",
            actor=Actor(user_id=user.id, ip=actor.ip, user_agent=actor.user_agent),
            subject_id=user.id,
            session_id=str(row.id),
        )
        metrics.REFRESH_REUSE.inc()
    session.commit()
    raise InvalidToken()


def _within_grace(row: AuthSession, presented_jti: str) -> bool:
    grace = get_settings().REFRESH_REUSE_GRACE_SECONDS
    return (
        grace > 0
        and row.previous_jti == presented_jti
        and row.rotated_at is not None
        and utcnow() - row.rotated_at <= timedelta(seconds=grace)
    )


def logout(session: Session, *, user: User, auth_session: AuthSession, actor: Actor) -> None:
    sessions.revoke(session, auth_session.id)
    audit.record(session, "auth.logout", actor=actor, subject_id=user.id, scope="session")
    session.commit()


def logout_all(session: Session, *, user: User, actor: Actor) -> None:
    count = sessions.revoke_all(session, user.id)
    audit.record(
        session, "auth.logout", actor=actor, subject_id=user.id, scope="all", sessions=count
    )
    session.commit()
