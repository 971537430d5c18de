"""Session chains: open a session at login, rotate it at refresh, spot reuse, end it."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import bindparam
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from app.core import metrics
from app.core.config import get_settings
from app.core.security import (
    TokenClaims,
    TokenKind,
    TokenType,
    access_expiry,
    constant_time_equals,
    create_token,
    decode,
    decode_access_token,
    new_jti,
    refresh_expiry,
)
from app.crud import audit, sessions
from app.crud.audit import Actor
from app.db import Remembered
from app.errors import InvalidToken
from app.models.common import utcnow
from app.models.session import AuthSession, SessionKind
from app.models.token import TokenPair
from app.models.user import USER_READ_COLUMNS, User, UserRead, user_read
from app.reads import prepared, read_first


def current_refresh_token(row: AuthSession) -> str:
    """The session's one live refresh token, rebuilt from the row (its jti, issued at the
    last rotation or the login, expiring with the session): handing it out again never
    starts a second chain, it is the very token the rotation issued."""
    return create_token(
        subject=row.user_id,
        session_id=row.id,
        token_type=TokenType.REFRESH,
        expires_at=row.expires_at,
        jti=row.refresh_jti,
        issued_at=row.rotated_at or row.created_at,
    ).token


def _pair(row: AuthSession) -> TokenPair:
    """A fresh access token and the session's *current* refresh token."""
    settings = get_settings()
    access = create_token(
        subject=row.user_id,
        session_id=row.id,
        token_type=TokenType.ACCESS,
        expires_at=access_expiry(),
    )
    return TokenPair(
        access_token=access.token,
        refresh_token=current_refresh_token(row),
        expires_in=settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60,
    )


def start_session(session: Session, *, user: User, actor: Actor) -> TokenPair:
    """Open a session for a user whose credentials were checked (a part of the caller's
    step)."""
    jti = new_jti()
    row = sessions.open_session(
        session,
        user_id=user.id,
        refresh_jti=jti,
        expires_at=refresh_expiry(),
        ip=actor.ip,
        user_agent=actor.user_agent,
    )
    return _pair(row)


# A session row and its user, by their ids: built once, since it runs on every request.
SESSION_AND_USER = (
    select(User, AuthSession)
    .join(AuthSession, col(AuthSession.user_id) == col(User.id))
    .where(col(AuthSession.id) == bindparam("sid"), col(User.id) == bindparam("sub"))
)


def _load(session: Session, claims_sid: object, claims_sub: object) -> tuple[User, AuthSession]:
    row = session.exec(
        SESSION_AND_USER,
        params={"sid": claims_sid, "sub": claims_sub},
        execution_options={"populate_existing": True},
    ).first()
    return _live(row)


def _live(row: tuple[User, AuthSession] | None) -> tuple[User, AuthSession]:
    """The user and session of a row, if the session is live and the user active."""
    if row is None:
        raise InvalidToken()
    user, auth_session = row
    _ensure_live(user.is_active, auth_session.revoked_at, auth_session.expires_at)
    return user, auth_session


def session_is_live(is_active: bool, revoked_at: datetime | None, expires_at: datetime) -> bool:
    """The one rule for every token of a session (the service's own, and OAuth's at the API,
    userinfo, introspection): its user active, the session neither revoked nor expired."""
    return is_active and revoked_at is None and expires_at > utcnow()


def _ensure_live(is_active: bool, revoked_at: datetime | None, expires_at: datetime) -> None:
    if not session_is_live(is_active, revoked_at, expires_at):
        raise InvalidToken()


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller, as read from the database for this request."""

    user: UserRead
    session_id: uuid.UUID
    scope: frozenset[str] | None = None  # an OAuth access token's scope; None: /auth/login's


# What every authenticated request reads: the caller's profile and role, whether the user is
# active, and the session's state; plain columns, not ORM objects, since it runs so often.
CALLER = (
    select_columns(
        *USER_READ_COLUMNS,
        col(AuthSession.revoked_at),
        col(AuthSession.expires_at),
    )
    .join_from(User, AuthSession, col(AuthSession.user_id) == col(User.id))
    .where(col(AuthSession.id) == bindparam("sid"), col(User.id) == bindparam("sub"))
)


async def authenticate(token: str) -> Caller:
    """The per-request check: a valid access token of a live session of an active user.

    The token is verified on the event loop (CPU only). The user and session rows are read on
    every request, never cached, on the event loop too (reads.read_first). Nothing is written."""
    claims = decode_access_token(token)
    return await _read_caller(claims)


async def _read_caller(claims: TokenClaims) -> Caller:
    row = await read_first(prepared(CALLER), {"sid": claims.sid, "sub": claims.sub})
    if row is None:
        raise InvalidToken()
    *profile, revoked_at, expires_at = row
    user = user_read(profile)
    _ensure_live(user.is_active, revoked_at, expires_at)
    return Caller(user=user, session_id=claims.sid, scope=claims.scope)


def load_caller(session: Session, caller: Caller) -> tuple[User, AuthSession]:
    """The caller's user and session as ORM objects of `session`, for handlers that change
    them (checked again, since they are read again)."""
    return _load(session, caller.session_id, caller.user.id)


Issued = TypeVar("Issued")


def refresh(
    session: Session,
    *,
    refresh_token: str,
    actor: Actor,
    kind: SessionKind = SessionKind.API,
    pair: Callable[[AuthSession], Issued] = _pair,  # type: ignore[assignment]
) -> Issued:
    """Rotate the session's refresh token.

    The token spent last, presented again within REFRESH_REUSE_GRACE_SECONDS of its rotation
    (a client racing itself), gets a fresh access token and the session's current refresh
    token: one chain, audited as auth.refresh_grace_used. Any other spent token is reuse and
    revokes the whole session: a Remembered refusal, whose record step revokes and audits.
    `kind` and `pair`: the OAuth token endpoint rotates its sessions here too, and answers
    with its own tokens (oauth/grants.py)."""
    claims = decode(refresh_token, TokenKind.REFRESH)
    user, row = _load(session, claims.sid, claims.sub)
    if row.kind is not kind:
        raise InvalidToken()
    if sessions.rotate(
        session, row=row, presented_jti=claims.jti, new_jti=new_jti(), expires_at=refresh_expiry()
    ):
        return pair(row)

    # Lost the race or presented a spent token: decide on the state the winner committed,
    # with the row locked until this step ends.
    sessions.reload_locked(session, row)
    me = Actor(user_id=user.id, ip=actor.ip, user_agent=actor.user_agent)
    if row.revoked_at is not None or row.expires_at <= utcnow():
        raise InvalidToken()
    if _within_grace(row, claims.jti):
        audit.record(
            session,
            "auth.refresh_grace_used",
            actor=me,
            subject_id=user.id,
            session_id=str(row.id),
        )
        return pair(row)
    session_id = row.id

    def reuse_detected(session: Session) -> None:
        # Once this step is rolled back (the lock goes with it): revoking is idempotent, and
        # only the revocation that ends the session is audited.
        if sessions.revoke(session, session_id):
            audit.record(
                session,
                "auth.refresh_reuse_detected",
                actor=me,
                subject_id=me.user_id,
                session_id=str(session_id),
            )
            metrics.REFRESH_REUSE.inc()

    raise Remembered(InvalidToken(), reuse_detected)


def _within_grace(row: AuthSession, presented_jti: str) -> bool:
    """Whether `presented_jti` is the token the last rotation spent, and that was recent."""
    grace = get_settings().REFRESH_REUSE_GRACE_SECONDS
    return (
        grace > 0
        and row.previous_jti is not None
        and constant_time_equals(row.previous_jti, presented_jti)
        and row.rotated_at is not None
        and utcnow() - row.rotated_at <= timedelta(seconds=grace)
    )


def logout(session: Session, *, user: User, auth_session: AuthSession, actor: Actor) -> None:
    sessions.revoke(session, auth_session.id)
    audit.record(session, "auth.logout", actor=actor, subject_id=user.id, scope="session")


def logout_all(session: Session, *, user: User, actor: Actor, keep: uuid.UUID | None = None) -> int:
    """End every session of the user (but `keep`, the one asking: "all others"); how many."""
    count = sessions.revoke_all(session, user.id, keep=keep)
    scope = "all" if keep is None else "others"
    audit.record(
        session, "auth.logout", actor=actor, subject_id=user.id, scope=scope, sessions=count
    )
    return count
