"""/organizations: the product's organizations, their members and the members' roles there.
Admins (`authz:manage`) manage them all; a member whose roles there hold an organization
permission does that in that organization only (AUTHZ.md, "Delegated administration")."""

import uuid
from collections.abc import Callable
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, status
from pydantic import AfterValidator

from app.api.deps import ActorDep, CallerDep, SessionDep, require, require_account
from app.auth import mails
from app.auth.tokens import Caller
from app.core import mail
from app.core.permissions import OrgPermission, Permission, has_permission
from app.crud import invitations, organizations
from app.crud.organizations import Delegate
from app.db import transaction
from app.errors import InsufficientScope
from app.models.authz import RoleIds
from app.models.common import CursorPage, PageCursor, parse_cursor
from app.models.organization import (
    INVITATION_DAYS,
    Accepted,
    InvitationAccept,
    InvitationCreate,
    InvitationRead,
    MemberRead,
    MyOrganization,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
)

router = APIRouter(
    tags=["organizations"],
    responses={
        401: {"description": "Missing, invalid or revoked credentials"},
        403: {"description": "Not allowed, or granting what you do not hold"},
        404: {"description": "No such organization, user or member"},
        409: {"description": "The slug is taken, or you are the last member manager"},
    },
)
MANAGE = [Depends(require(Permission.AUTHZ_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[
    str | None,
    Query(max_length=64, description="A page's `next_cursor`: the page after it"),
    AfterValidator(parse_cursor),
]


def acting_as(permission: OrgPermission | None) -> Callable[[Caller], Delegate]:
    """A dependency: the caller as an admin or as a member who needs `permission` there (None:
    any member). An OAuth token must name that permission (or `account`) in its scope. As a
    dependency it answers before the body is read: a 401 or 403 comes before a 422."""

    def delegate(caller: CallerDep) -> Delegate:
        if has_permission(caller.user.role, Permission.AUTHZ_MANAGE, caller.scope):
            return Delegate(user_id=caller.user.id, admin=True)
        needed = str(permission) if permission else str(Permission.ACCOUNT)
        if caller.scope is not None and needed not in caller.scope:
            raise InsufficientScope({needed})
        return Delegate(user_id=caller.user.id, admin=False)

    return delegate


def account_caller(caller: CallerDep) -> Caller:
    return require_account(caller)


AccountCaller = Annotated[Caller, Depends(account_caller)]  # refused before the body is read
AnyMember = Annotated[Delegate, Depends(acting_as(None))]
MemberReader = Annotated[Delegate, Depends(acting_as(OrgPermission.MEMBERS_READ))]
MemberManager = Annotated[Delegate, Depends(acting_as(OrgPermission.MEMBERS_MANAGE))]
Inviter = Annotated[Delegate, Depends(acting_as(OrgPermission.INVITATIONS_MANAGE))]


@router.post(
    "/organizations",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationRead,
    dependencies=MANAGE,
)
def create_organization(
    body: OrganizationCreate, session: SessionDep, actor: ActorDep
) -> OrganizationRead:
    return transaction(organizations.create, session, body=body, actor=actor)


@router.get("/organizations", response_model=CursorPage[OrganizationRead], dependencies=MANAGE)
def list_organizations(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> CursorPage[OrganizationRead]:
    after = cast(PageCursor | None, cursor)
    return transaction(organizations.list_page, session, limit=limit, after=after)


@router.get("/organizations/{organization}", response_model=OrganizationRead)
def get_organization(organization: str, who: AnyMember, session: SessionDep) -> OrganizationRead:
    """An organization (its id or slug), for admins and its members."""
    return transaction(organizations.read_as, session, ref=organization, delegate=who)


@router.patch("/organizations/{organization}", response_model=OrganizationRead, dependencies=MANAGE)
def update_organization(
    organization: str, body: OrganizationUpdate, session: SessionDep, actor: ActorDep
) -> OrganizationRead:
    return transaction(organizations.update_one, session, ref=organization, body=body, actor=actor)


@router.delete(
    "/organizations/{organization}", status_code=status.HTTP_204_NO_CONTENT, dependencies=MANAGE
)
def delete_organization(organization: str, session: SessionDep, actor: ActorDep) -> None:
    """Delete it with its memberships."""
    transaction(organizations.delete_one, session, ref=organization, actor=actor)


@router.get("/organizations/{organization}/members", response_model=CursorPage[MemberRead])
def list_members(
    organization: str,
    who: MemberReader,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CursorPage[MemberRead]:
    return transaction(
        organizations.members_of,
        session,
        ref=organization,
        delegate=who,
        limit=limit,
        after=cast(PageCursor | None, cursor),
    )


@router.put("/organizations/{organization}/members/{user_id}", response_model=MemberRead)
def put_member(
    organization: str,
    user_id: uuid.UUID,
    body: RoleIds,
    who: MemberManager,
    session: SessionDep,
    actor: ActorDep,
) -> MemberRead:
    """Add the user as a member with these roles, or replace a member's roles."""
    return transaction(
        organizations.put_member,
        session,
        ref=organization,
        user_id=user_id,
        role_ids=body.roles,
        delegate=who,
        actor=actor,
    )


@router.delete(
    "/organizations/{organization}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT
)
def remove_member(
    organization: str, user_id: uuid.UUID, who: MemberManager, session: SessionDep, actor: ActorDep
) -> None:
    transaction(
        organizations.delete_member,
        session,
        ref=organization,
        user_id=user_id,
        delegate=who,
        actor=actor,
    )


@router.get("/users/me/organizations", response_model=CursorPage[MyOrganization])
def my_organizations(
    caller: AccountCaller, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> CursorPage[MyOrganization]:
    """The organizations the caller is a member of, with their roles there."""
    return transaction(
        organizations.my_organizations,
        session,
        user_id=caller.user.id,
        limit=limit,
        after=cast(PageCursor | None, cursor),
    )


@router.post(
    "/organizations/{organization}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationRead,
)
def invite(
    organization: str, body: InvitationCreate, who: Inviter, session: SessionDep, actor: ActorDep
) -> InvitationRead:
    """Invite an address with roles: it gets a single-use link, valid 7 days. A second
    invitation to the same address replaces the first."""
    sent = transaction(
        invitations.invite, session, ref=organization, body=body, delegate=who, actor=actor
    )
    mail.send(
        mails.invitation(
            body.email,
            sent.token,
            organization=sent.organization,
            days=INVITATION_DAYS,
            locale=mails.mail_locale(actor.language),
        )
    )
    return sent.invitation


@router.get("/organizations/{organization}/invitations", response_model=CursorPage[InvitationRead])
def list_invitations(
    organization: str, who: Inviter, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> CursorPage[InvitationRead]:
    return transaction(
        invitations.pending,
        session,
        ref=organization,
        delegate=who,
        limit=limit,
        after=cast(PageCursor | None, cursor),
    )


@router.delete(
    "/organizations/{organization}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
)
def revoke_invitation(
    organization: str,
    invitation_id: uuid.UUID,
    who: Inviter,
    session: SessionDep,
    actor: ActorDep,
) -> None:
    transaction(
        invitations.revoke,
        session,
        ref=organization,
        invitation_id=invitation_id,
        delegate=who,
        actor=actor,
    )


@router.post(
    "/invitations/accept",
    response_model=Accepted,
    responses={400: {"description": "A spent, revoked, replaced or expired invitation"}},
)
def accept_invitation(
    body: InvitationAccept, caller: AccountCaller, session: SessionDep, actor: ActorDep
) -> Accepted:
    """Join the organization, as the invited address (signed in, verified)."""
    return transaction(
        invitations.accept, session, token=body.token, user_id=caller.user.id, actor=actor
    )
