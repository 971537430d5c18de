"""/audit-events: the audit log, for admins."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import SessionDep, require
from app.core.permissions import Permission
from app.crud import audit
from app.models.audit import AuditEventRead
from app.models.common import Page

router = APIRouter(prefix="/audit-events", tags=["audit"])


@router.get(
    "",
    response_model=Page[AuditEventRead],
    responses={401: {"description": "Not authenticated"}, 403: {"description": "Forbidden"}},
    dependencies=[Depends(require(Permission.AUDIT_READ))],
)
def list_audit_events(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    event: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
) -> Page[AuditEventRead]:
    items, total = audit.list_events(
        session, skip=skip, limit=limit, event=event, actor_id=actor_id, subject_id=subject_id
    )
    return Page[AuditEventRead](
        items=[AuditEventRead.model_validate(e, from_attributes=True) for e in items],
        total=total,
        skip=skip,
        limit=limit,
    )
