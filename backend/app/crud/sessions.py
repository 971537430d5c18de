"""Refresh-session rows: open, look up, revoke. No HTTP, no token signing."""

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.models.common import utcnow
from app.models.session import AuthSession, SessionKind


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


def revoke_client(session: Session, client_id: str) -> int:
    """End every session issued to an OAuth client (its tokens stop working at once)."""
    result = session.exec(
        update(AuthSession)
        .where(col(AuthSession.client_id) == client_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
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
