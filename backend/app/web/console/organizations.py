"""The console's organizations: admins (authz:manage) see them all, create and delete them;
a member who administers some (organization_view.py) sees those. Each organization's page
is organization_view.py's; its member and invitation forms are organization_members.py's."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.core.permissions import Permission
from app.crud import organizations
from app.db import transaction
from app.errors import NotFound
from app.models.common import CursorPage, PageCursor
from app.models.organization import (
    OrganizationCreate,
    OrganizationRead,
)
from app.web.console.access import (
    AnyRoleDep,
    AnyRolePostDep,
    Console,
    administers,
    need,
    refused,
)
from app.web.console.authz_forms import (
    PAGE_SIZE,
    Refusal,
    attempt,
    list_page,
)
from app.web.console.organization_view import DONE, acting_on, delegate_of, detail

router = APIRouter(prefix="/admin")

LABELS = {"name": "Name", "slug": "Slug"}

# --- the list ------------------------------------------------------------------------------


def _list_page(request: Request, session: SessionDep, console: Console, **context: Any) -> Response:
    """Every organization for an admin; for anyone else those they administer (none: 403)."""
    delegate = delegate_of(console)

    def fetch(db: Session, after: PageCursor | None) -> CursorPage[OrganizationRead]:
        if delegate.admin:
            return organizations.list_page(db, limit=PAGE_SIZE, after=after)
        return organizations.administered_page(
            db, user_id=delegate.user_id, limit=PAGE_SIZE, after=after
        )

    context.setdefault("form", {})
    return list_page(
        request,
        session,
        console,
        template="organizations.html",
        path="/admin/organizations",
        fetch=fetch,
        admin=delegate.admin,
        delegated_nav=not delegate.admin,
        **context,
    )


@router.get("/organizations")
def organizations_page(
    request: Request,
    session: SessionDep,
    console: AnyRoleDep,
    cursor: str = "",
    back: str = "",
    done: str = "",
) -> Response:
    if not console.can(Permission.AUTHZ_MANAGE) and not transaction(
        administers, session, console.user.id
    ):
        raise refused(request, "Your role may not do this.", console=console)
    return _list_page(request, session, console, cursor=cursor, back=back, status=DONE.get(done))


@router.post("/organizations")
def create_organization(
    request: Request,
    session: SessionDep,
    console: AnyRolePostDep,
    name: Annotated[str, Form()] = "",
    slug: Annotated[str, Form()] = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    form = {"name": name[:200], "slug": slug[:63]}

    def create() -> OrganizationRead:
        body = OrganizationCreate.model_validate(
            {"name": name.strip(), "slug": slug.strip() or None}
        )
        return transaction(organizations.create, session, body=body, actor=console.actor(request))

    created = attempt(create, LABELS, "Organization")
    if isinstance(created, Refusal):
        return _list_page(
            request,
            session,
            console,
            alert=created.alert,
            form=form,
            status_code=created.status_code,
        )
    return RedirectResponse(f"/admin/organizations/{created.id}?done=created", status_code=303)


@router.get("/organizations/{ref}")
def organization_page(
    request: Request,
    session: SessionDep,
    console: AnyRoleDep,
    ref: str,
    cursor: str = "",
    back: str = "",
    member: str = "",
    done: str = "",
    confirm: str = "",
) -> Response:
    viewing = acting_on(request, session, console, ref)
    return detail(
        request,
        session,
        console,
        viewing,
        cursor=cursor,
        back=back,
        edit=member[:40],
        status=DONE.get(done),
        confirm_delete=confirm == "delete" and viewing.delegate.admin,
    )


@router.post("/organizations/{ref}/delete")
def delete_organization(
    request: Request, session: SessionDep, console: AnyRolePostDep, ref: str
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    viewing = acting_on(request, session, console, ref)
    try:
        transaction(
            organizations.delete_one,
            session,
            ref=str(viewing.organization.id),
            actor=console.actor(request),
        )
    except NotFound:
        raise refused(request, "No such organization.", console=console, status_code=404) from None
    return RedirectResponse("/admin/organizations?done=deleted", status_code=303)
