"""The console's audit log: newest first, filtered by event name and by actor and subject
email (admins: the permission matrix's audit:read)."""

import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from app.api.deps import SessionDep
from app.core.permissions import Permission
from app.crud import audit, users
from app.crud import console as console_rows
from app.db import transaction
from app.errors import BadRequest
from app.models.audit import AuditEvent
from app.web.console.access import ConsoleDep, need, refused, render
from app.web.console.paging import Window, window

router = APIRouter(prefix="/admin")

MAX_EVENT = 64
MAX_EMAIL = 320


@router.get("/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    event: str = "",
    actor: str = "",
    subject: str = "",
    cursor: str = "",
) -> Response:
    need(request, console, console.can(Permission.AUDIT_READ))
    filters = {
        "event": event.strip()[:MAX_EVENT],
        "actor": actor.strip()[:MAX_EMAIL],
        "subject": subject.strip()[:MAX_EMAIL],
    }
    try:
        page, names, unknown = transaction(_events, session, filters, cursor or None)
    except BadRequest as error:
        raise refused(request, error.detail, console=console, status_code=400) from None

    def link(to: str | None) -> str | None:
        if to is None:
            return None
        query = {name: value for name, value in {**filters, "cursor": to}.items() if value}
        return "/admin/audit?" + urlencode(query)

    return render(
        request,
        "audit.html",
        console=console,
        page=page,
        filters=filters,
        names=names,
        alert=f"No user has the email {unknown[0]}." if unknown else None,
        next_url=link(page.next_cursor),
        previous_url=link(page.previous_cursor),
    )


def _events(
    session: Session, filters: dict[str, str], cursor: str | None
) -> tuple[Window[AuditEvent], dict[uuid.UUID, str], list[str]]:
    """The page of events at `cursor` that `filters` select, the emails of their actors and
    subjects, and the filters' emails that no user has (then the page is empty)."""
    ids: dict[str, uuid.UUID | None] = {}
    unknown = []
    for name in ("actor", "subject"):
        email = filters[name]
        found = users.get_user_by_email(session, email) if email else None
        if email and found is None:
            unknown.append(email)
        ids[name] = found.id if found else None
    page = window(
        cursor,
        lambda skip, limit: (
            ([], 0)
            if unknown
            else audit.list_events(
                session,
                skip=skip,
                limit=limit,
                event=filters["event"] or None,
                actor_id=ids["actor"],
                subject_id=ids["subject"],
            )
        ),
    )
    names = console_rows.emails_by_id(
        session, [e.actor_id for e in page.items] + [e.subject_id for e in page.items]
    )
    return page, names, unknown
