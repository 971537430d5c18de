"""Organizations, their members and the members' roles there (AUTHZ.md, "Organizations")."""

import uuid

from sqlmodel import Session, col, select

from app.models.organization import Organization


def find(session: Session, ref: str) -> Organization | None:
    """The organization `ref` names: its id, or its slug."""
    try:
        by_id = session.get(Organization, uuid.UUID(ref))
    except ValueError:
        by_id = None
    if by_id is not None:
        return by_id
    return session.exec(select(Organization).where(col(Organization.slug) == ref)).first()
