"""One organization as the console user may act on it (an admin: everything; a member:
what the organization permissions their roles there hold, AUTHZ.md "Delegated
administration"), and its page: members and their roles, pending invitations, the roles
the viewer may grant."""

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.core.permissions import OrgPermission, Permission
from app.crud import invitations, organizations
from app.crud.organizations import Delegate
from app.db import transaction
from app.errors import BadRequest, NotFound
from app.models.authz import RoleRead
from app.models.organization import (
    InvitationRead,
    MemberRead,
    OrganizationRead,
)
from app.web.console.access import (
    Console,
    refused,
    render,
)
from app.web.console.authz_forms import (
    PAGE_SIZE,
    keyset,
    page_link,
    role_choices,
)
from app.web.console.paging import KeysetWindow

MAX_REF = 64
DONE = {
    "created": "Organization created.",
    "member": "Member saved.",
    "removed": "Member removed: their sessions bound to this organization have ended.",
    "invited": "Invitation sent.",
    "revoked": "Invitation revoked: its link no longer works.",
    "deleted": "Organization deleted, with its memberships and invitations.",
}
NOT_YOURS = "You do not administer this organization."


@dataclass(frozen=True, slots=True)
class Viewing:
    """One organization as the console user may act on it: as an admin (everything), or as
    a member with the organization permissions their roles there hold."""

    organization: OrganizationRead
    delegate: Delegate
    held: frozenset[OrgPermission]

    def may(self, permission: OrgPermission) -> bool:
        return permission in self.held


def delegate_of(console: Console) -> Delegate:
    return Delegate(user_id=console.user.id, admin=console.can(Permission.AUTHZ_MANAGE))


def acting_on(
    request: Request,
    session: SessionDep,
    console: Console,
    ref: str,
    needed: OrgPermission | None = None,
) -> Viewing:
    """The organization `ref` as this console user sees it: a 404 page if there is none, a
    403 page if they may not administer it (or lack `needed` there)."""
    try:
        viewing = transaction(_view, session, ref[:MAX_REF], delegate_of(console))
    except NotFound:
        raise refused(request, "No such organization.", console=console, status_code=404) from None
    if not viewing.held or (needed is not None and not viewing.may(needed)):
        raise refused(
            request, NOT_YOURS if not viewing.held else "You may not do this here.", console=console
        )
    return viewing


def _view(session: Session, ref: str, delegate: Delegate) -> Viewing:
    organization = organizations.read(session, ref)
    held = (
        set(OrgPermission)
        if delegate.admin
        else organizations.delegated(
            session, user_id=delegate.user_id, organization_id=organization.id
        )
    )
    return Viewing(organization, delegate, frozenset(held))


# --- one organization ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contents:
    members: KeysetWindow[MemberRead] | None  # None: the viewer may not read the members
    invitations: list[InvitationRead]
    invitations_total: int
    roles: list[RoleRead]  # the roles the viewer may grant here


def _contents(session: Session, viewing: Viewing, cursor: str, back: str) -> Contents:
    organization_id, delegate = viewing.organization.id, viewing.delegate
    members = None
    if viewing.may(OrgPermission.MEMBERS_READ):
        members = keyset(
            cursor,
            back,
            lambda after: organizations.members_page(
                session, organization_id=organization_id, limit=PAGE_SIZE, after=after
            ),
        )
    pending: list[InvitationRead] = []
    pending_total = 0
    if viewing.may(OrgPermission.INVITATIONS_MANAGE):
        page = invitations.pending(
            session, ref=str(organization_id), delegate=delegate, limit=PAGE_SIZE * 4, after=None
        )
        pending, pending_total = page.items, page.total
    roles = role_choices(session)
    if not delegate.admin:
        allowed = organizations.grantable(
            session,
            user_id=delegate.user_id,
            organization_id=organization_id,
            role_ids=[role.id for role in roles],
        )
        roles = [role for role in roles if role.id in allowed]
    return Contents(members, pending, pending_total, roles)


def detail(
    request: Request,
    session: SessionDep,
    console: Console,
    viewing: Viewing,
    *,
    cursor: str = "",
    back: str = "",
    member_form: dict[str, Any] | None = None,
    invite_form: dict[str, Any] | None = None,
    edit: str = "",
    status_code: int = 200,
    **context: Any,
) -> Response:
    try:
        contents = transaction(_contents, session, viewing, cursor, back)
    except BadRequest as error:
        raise refused(request, error.detail, console=console, status_code=400) from None
    here = f"/admin/organizations/{viewing.organization.id}"
    members = contents.members
    if member_form is None:
        shown = members.items if members else []
        editing = next((m for m in shown if str(m.user_id) == edit), None)
        member_form = {
            "email": editing.email if editing else "",
            "roles": {str(role.id) for role in editing.roles} if editing else set(),
        }
    return render(
        request,
        "organization.html",
        console=console,
        status_code=status_code,
        organization=viewing.organization,
        viewing=viewing,
        O=OrgPermission,
        admin=viewing.delegate.admin,
        delegated_nav=not viewing.delegate.admin,
        members=members,
        next_url=page_link(here, members.next_query) if members else None,
        previous_url=page_link(here, members.previous_query) if members else None,
        invitations=contents.invitations,
        invitations_total=contents.invitations_total,
        roles=contents.roles,
        member_form=member_form,
        invite_form=invite_form or {"email": "", "roles": set()},
        **context,
    )


def done(viewing: Viewing, what: str) -> RedirectResponse:
    here = f"/admin/organizations/{viewing.organization.id}"
    return RedirectResponse(f"{here}?done={what}", status_code=303)
