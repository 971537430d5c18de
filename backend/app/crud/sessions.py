"""Refresh-session rows: open, look up, revoke. No HTTP, no token signing."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, update
from sqlmodel import Session, col, select

from app.models.common import utcnow
from app.models.session import AuthSession, SessionKind
from app.models.user import User


def open_session(
    session: Session,
    *,
    user_id: uuid.UUID,
    refresh_jti: str,
    expires_at: datetime,
    ip: str | None,
    user_agent: str | None,
    kind: SessionKind = SessionKind.API,
    client_id: str | None = None,
    scope: str | None = None,
    auth_time: datetime | None = None,
    amr: str | None = None,
    browser_session_id: uuid.UUID | None = None,
    resource: str | None = None,
    organization_id: uuid.UUID | None = None,
) -> AuthSession:
    row = AuthSession(
        user_id=user_id,
        refresh_jti=refresh_jti,
        expires_at=expires_at,
        ip=ip,
        user_agent=user_agent[:512] if user_agent else None,
        kind=kind,
        client_id=client_id,
        scope=scope,
        auth_time=auth_time,
        amr=amr,
        browser_session_id=browser_session_id,
        resource=resource,
        organization_id=organization_id,
    )
    session.add(row)
    session.flush()
    return row


def rotate(
    session: Session, *, row: AuthSession, presented_jti: str, new_jti: str, expires_at: datetime
) -> bool:
    """Compare-and-swap the live refresh jti: True for the one caller that wins."""
    now = utcnow()
    result = session.exec(
        update(AuthSession)
        .where(
            col(AuthSession.id) == row.id,
            col(AuthSession.refresh_jti) == presented_jti,
            col(AuthSession.revoked_at).is_(None),
            col(AuthSession.expires_at) > now,
        )
        .values(
            refresh_jti=new_jti,
            previous_jti=presented_jti,
            rotated_at=now,
            last_used_at=now,
            expires_at=expires_at,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(row)
    return True


def reload_locked(session: Session, row: AuthSession) -> None:
    """Read `row` again, locked for the rest of the transaction (PostgreSQL: FOR UPDATE;
    SQLite: the write lock a failed rotate() already took)."""
    session.refresh(row, with_for_update=True)


def revoke(session: Session, session_id: uuid.UUID) -> bool:
    result = session.exec(
        update(AuthSession)
        .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def revoke_all(session: Session, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    conditions = [col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None)]
    if keep is not None:
        conditions.append(col(AuthSession.id) != keep)
    result = session.exec(
        update(AuthSession)
        .where(*conditions)
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def revoke_client(session: Session, client_id: str, *, user_id: uuid.UUID | None = None) -> int:
    """End every session issued to an OAuth client (of one user, with `user_id`): its tokens
    stop working at once."""
    conditions = [col(AuthSession.client_id) == client_id, col(AuthSession.revoked_at).is_(None)]
    if user_id is not None:
        conditions.append(col(AuthSession.user_id) == user_id)
    result = session.exec(
        update(AuthSession)
        .where(*conditions)
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def revoke_organization(
    session: Session, organization_id: uuid.UUID, *, user_ids: Any = None
) -> int:
    """End the OAuth sessions bound to an organization (AUTHZ.md, "Tokens"): of every member,
    or of `user_ids` (a list or a subquery of user ids). Their refresh tokens fail at once."""
    statement = update(AuthSession).where(
        col(AuthSession.organization_id) == organization_id,
        col(AuthSession.revoked_at).is_(None),
    )
    if user_ids is not None:
        statement = statement.where(col(AuthSession.user_id).in_(user_ids))
    result = session.exec(
        statement.values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def live_sessions(session: Session, user_id: uuid.UUID) -> list[AuthSession]:
    now = utcnow()
    return list(
        session.exec(
            select(AuthSession)
            .where(
                col(AuthSession.user_id) == user_id,
                col(AuthSession.revoked_at).is_(None),
                col(AuthSession.expires_at) > now,
            )
            .order_by(col(AuthSession.created_at).desc())
        ).all()
    )


def revoke_browser(session: Session, browser_session_id: uuid.UUID) -> int:
    """End a browser session and the OAuth sessions it approved (RP-initiated logout)."""
    result = session.exec(
        update(AuthSession)
        .where(
            (
                (col(AuthSession.id) == browser_session_id)
                & (col(AuthSession.kind) == SessionKind.BROWSER)
            )
            | (col(AuthSession.browser_session_id) == browser_session_id),
            col(AuthSession.revoked_at).is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session row and whether its user is active (None: no such user), read without the
    ORM: what introspection and revocation need to know of a token's session."""

    kind: SessionKind
    client_id: str | None
    user_id: uuid.UUID
    scope: str | None
    refresh_jti: str
    issued_at: datetime  # of its current refresh token: the last rotation, or the login
    revoked_at: datetime | None
    expires_at: datetime
    user_active: bool | None
    organization_id: uuid.UUID | None = None


AnySelect = Select[*tuple[Any, ...]]  # a SELECT of any columns

# A session and its user, as columns to join to another read (crud.clients reads them with
# the client of an introspection or revocation): plain columns on the event loop
# (reads.read_first). Outer joins, so that a session whose user row is missing still reads as
# that (inactive), and a missing session as NULLs.
SESSION_STATE_COLUMNS = (
    col(AuthSession.kind),
    col(AuthSession.client_id),
    col(AuthSession.user_id),
    col(AuthSession.scope),
    col(AuthSession.refresh_jti),
    col(AuthSession.rotated_at),
    col(AuthSession.created_at),
    col(AuthSession.revoked_at),
    col(AuthSession.expires_at),
    col(User.is_active),
    col(AuthSession.organization_id),
)


def with_session_state(statement: AnySelect, left: Any) -> AnySelect:
    """`statement`, whose FROM is `left`, with SESSION_STATE_COLUMNS of the session `:sid`
    outer-joined to it."""
    return (
        statement.add_columns(*SESSION_STATE_COLUMNS)
        .join_from(left, AuthSession, col(AuthSession.id) == bindparam("sid"), isouter=True)
        .join_from(AuthSession, User, col(User.id) == col(AuthSession.user_id), isouter=True)
    )


def session_state(values: Sequence[Any]) -> SessionState | None:
    """The SessionState of SESSION_STATE_COLUMNS' values; None if the join found none."""
    kind, client_id, user_id, scope, refresh_jti, rotated_at, created_at, *rest = values
    if kind is None:
        return None
    revoked_at, expires_at, user_active, organization_id = rest
    return SessionState(
        kind=kind,
        client_id=client_id,
        user_id=user_id,
        scope=scope,
        refresh_jti=refresh_jti,
        issued_at=rotated_at or created_at,
        revoked_at=revoked_at,
        expires_at=expires_at,
        user_active=user_active,
        organization_id=organization_id,
    )
