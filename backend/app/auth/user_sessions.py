"""A user's own sessions: list the live ones, end one of them."""

import uuid

from sqlmodel import Session

from app.core.i18n import N_
from app.crud import audit, clients, sessions
from app.crud.audit import Actor
from app.errors import NotFound
from app.models.common import utcnow
from app.models.session import AuthSession, SessionRead


def list_sessions(
    session: Session, *, user_id: uuid.UUID, current_id: uuid.UUID
) -> list[SessionRead]:
    """The user's live sessions, newest first, each with its kind (and an OAuth session's
    client by name)."""
    rows = sessions.live_sessions(session, user_id)
    names = clients.names(session, {row.client_id for row in rows if row.client_id})
    return [
        SessionRead(
            id=row.id,
            kind=row.kind,
            client_name=names.get(row.client_id) if row.client_id else None,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            ip=row.ip,
            user_agent=row.user_agent,
            current=row.id == current_id,
        )
        for row in rows
    ]


def end_session(
    session: Session, *, user_id: uuid.UUID, session_id: uuid.UUID, actor: Actor
) -> None:
    """End one live session of this user at once; 404 for any other id."""
    row = session.get(AuthSession, session_id, populate_existing=True)
    if (
        row is None
        or row.user_id != user_id
        or row.revoked_at is not None
        or row.expires_at <= utcnow()
        or not sessions.revoke(session, row.id)
    ):
        raise NotFound(N_("Session not found"))
    audit.record(
        session,
        "auth.logout",
        actor=actor,
        subject_id=user_id,
        scope="session",
        session_id=str(row.id),
    )
