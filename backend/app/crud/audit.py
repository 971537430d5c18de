"""Audit events: recorded in the caller's transaction, read back by admins."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models.audit import AuditEvent


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, and from where: taken from the request, passed down to the helpers."""

    user_id: uuid.UUID | None = None
    ip: str | None = None
    user_agent: str | None = None
    # The languages the request prefers, unresolved (a hosted page's chosen locale, else
    # its Accept-Language): the language of the mails it causes (auth/mails.py mail_locale).
    language: str | None = None


SYSTEM = Actor()


def record(
    session: Session,
    event: str,
    *,
    actor: Actor,
    subject_id: uuid.UUID | None = None,
    **detail: Any,
) -> None:
    """Add an event to the session; it commits with the action it describes."""
    session.add(
        AuditEvent(
            event=event,
            actor_id=actor.user_id,
            subject_id=subject_id,
            ip=actor.ip,
            user_agent=actor.user_agent,
            detail=detail,
        )
    )


def list_events(
    session: Session,
    *,
    skip: int,
    limit: int,
    event: str | None = None,
    actor_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
) -> tuple[list[AuditEvent], int]:
    conditions = []
    if event is not None:
        conditions.append(col(AuditEvent.event) == event)
    if actor_id is not None:
        conditions.append(col(AuditEvent.actor_id) == actor_id)
    if subject_id is not None:
        conditions.append(col(AuditEvent.subject_id) == subject_id)
    total = session.exec(select(func.count()).select_from(AuditEvent).where(*conditions)).one()
    rows = session.exec(
        select(AuditEvent)
        .where(*conditions)
        .order_by(col(AuditEvent.id).desc())
        .offset(skip)
        .limit(limit)
    ).all()
    return list(rows), total
