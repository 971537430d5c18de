"""Organizations, their members and the members' roles there (AUTHZ.md, "Organizations" and
"Delegated administration"): steps run by db.transaction."""

import re
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, exists, or_, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from app.core.i18n import N_
from app.core.permissions import OrgPermission
from app.crud import audit, authz, sessions
from app.crud.audit import Actor
from app.crud.pages import keyset_page
from app.errors import Conflict, Forbidden, NotFound
from app.models.authz import BUILTIN_RESOURCE_ID, ProductRole, RolePermission, RoleRef, UserRole
from app.models.common import CursorPage, PageCursor
from app.models.organization import (
    MemberRead,
    Membership,
    MembershipRole,
    MyOrganization,
    Organization,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
)
from app.models.user import User


def find(session: Session, ref: str) -> Organization | None:
    """The organization `ref` names: its id, or its slug."""
    try:
        by_id = session.get(Organization, uuid.UUID(ref))
    except ValueError:
        by_id = None
    if by_id is not None:
        return by_id
    return session.exec(select(Organization).where(col(Organization.slug) == ref)).first()


def get(session: Session, ref: str) -> Organization:
    organization = find(session, ref)
    if organization is None:
        raise NotFound("Organization not found")
    return organization


def _read(organization: Organization) -> OrganizationRead:
    return OrganizationRead.model_validate(organization, from_attributes=True)


def slug_of(name: str) -> str:
    """A slug from a name: ASCII letters and digits, words joined by '-' (AUTHZ.md's pattern)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:54].strip("-")
    return slug or f"org-{secrets.token_hex(4)}"


def _ensure_slug_free(
    session: Session, slug: str, organization_id: uuid.UUID | None = None
) -> None:
    taken = session.exec(select(Organization.id).where(col(Organization.slug) == slug)).first()
    if taken is not None and taken != organization_id:
        raise Conflict("An organization with this slug exists")


def create(session: Session, *, body: OrganizationCreate, actor: Actor) -> OrganizationRead:
    slug = body.slug or slug_of(body.name)
    _ensure_slug_free(session, slug)
    organization = Organization(name=body.name, slug=slug)
    session.add(organization)
    session.flush()
    audit.record(
        session, "org.created", actor=actor, organization_id=str(organization.id), slug=slug
    )
    return _read(organization)


def read(session: Session, ref: str) -> OrganizationRead:
    return _read(get(session, ref))


def update_one(
    session: Session, *, ref: str, body: OrganizationUpdate, actor: Actor
) -> OrganizationRead:
    organization = get(session, ref)
    changes = {
        field: value
        for field, value in body.model_dump(exclude_unset=True).items()
        if value is not None and getattr(organization, field) != value
    }
    if "slug" in changes:
        _ensure_slug_free(session, changes["slug"], organization.id)
    for field, value in changes.items():
        setattr(organization, field, value)
    session.add(organization)
    if changes:
        audit.record(
            session,
            "org.updated",
            actor=actor,
            organization_id=str(organization.id),
            **changes,
        )
    session.flush()
    return _read(organization)


def delete_one(session: Session, *, ref: str, actor: Actor) -> uuid.UUID:
    """Delete the organization with its memberships (and, later, its invitations)."""
    organization = get(session, ref)
    audit.record(
        session,
        "org.deleted",
        actor=actor,
        organization_id=str(organization.id),
        slug=organization.slug,
    )
    memberships = select_columns(Membership.id).where(  # type: ignore[call-overload]
        col(Membership.organization_id) == organization.id
    )
    session.exec(delete(MembershipRole).where(col(MembershipRole.membership_id).in_(memberships)))
    session.exec(delete(Membership).where(col(Membership.organization_id) == organization.id))
    session.delete(organization)
    sessions.revoke_organization(session, organization.id)
    return organization.id


def list_page(
    session: Session, *, limit: int, after: PageCursor | None
) -> CursorPage[OrganizationRead]:
    rows, total, next_cursor = keyset_page(session, Organization, limit=limit, after=after)
    return CursorPage(
        items=[_read(row) for row in rows],
        total=total,
        skip=0,
        limit=limit,
        next_cursor=next_cursor,
    )


# Members


def membership(
    session: Session, organization_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    return session.exec(
        select(Membership).where(
            col(Membership.organization_id) == organization_id, col(Membership.user_id) == user_id
        )
    ).first()


def of_user(session: Session, user_id: uuid.UUID) -> list[Organization]:
    """The organizations the user is a member of, by name (the hosted page's picker)."""
    return list(
        session.exec(
            select(Organization)
            .join(Membership, col(Membership.organization_id) == col(Organization.id))
            .where(col(Membership.user_id) == user_id)
            .order_by(col(Organization.name), col(Organization.slug))
        ).all()
    )


def is_member(session: Session, organization_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return membership(session, organization_id, user_id) is not None


def _roles_of(
    session: Session, membership_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RoleRef]]:
    roles: dict[uuid.UUID, list[RoleRef]] = {membership_id: [] for membership_id in membership_ids}
    if not membership_ids:
        return roles
    rows = session.exec(
        select(MembershipRole.membership_id, ProductRole.id, ProductRole.name)
        .join(ProductRole, col(ProductRole.id) == col(MembershipRole.role_id))
        .where(col(MembershipRole.membership_id).in_(membership_ids))
        .order_by(col(ProductRole.name))
    ).all()
    for membership_id, role_id, name in rows:
        roles[membership_id].append(RoleRef(id=role_id, name=name))
    return roles


def members_page(
    session: Session, *, organization_id: uuid.UUID, limit: int, after: PageCursor | None
) -> CursorPage[MemberRead]:
    rows, total, next_cursor = keyset_page(
        session,
        Membership,
        col(Membership.organization_id) == organization_id,
        limit=limit,
        after=after,
    )
    roles = _roles_of(session, [row.id for row in rows])
    people = {
        user.id: user
        for user in session.exec(
            select(User).where(col(User.id).in_([row.user_id for row in rows]))
        ).all()
    }
    return CursorPage(
        items=[
            MemberRead(
                user_id=row.user_id,
                email=people[row.user_id].email,
                full_name=people[row.user_id].full_name,
                roles=roles[row.id],
            )
            for row in rows
        ],
        total=total,
        skip=0,
        limit=limit,
        next_cursor=next_cursor,
    )


def my_organizations(
    session: Session, *, user_id: uuid.UUID, limit: int, after: PageCursor | None
) -> CursorPage[MyOrganization]:
    rows, total, next_cursor = keyset_page(
        session, Membership, col(Membership.user_id) == user_id, limit=limit, after=after
    )
    roles = _roles_of(session, [row.id for row in rows])
    found = {
        org.id: org
        for org in session.exec(
            select(Organization).where(
                col(Organization.id).in_([row.organization_id for row in rows])
            )
        ).all()
    }
    return CursorPage(
        items=[
            MyOrganization(
                id=row.organization_id,
                name=found[row.organization_id].name,
                slug=found[row.organization_id].slug,
                roles=roles[row.id],
            )
            for row in rows
        ],
        total=total,
        skip=0,
        limit=limit,
        next_cursor=next_cursor,
    )


def lock(session: Session, organization_id: uuid.UUID) -> None:
    """Serialise the membership changes of one organization (FOR UPDATE on PostgreSQL; on
    SQLite a no-op write takes the database's write lock): the last-manager rule and an
    invitation accepted twice at once each see the other's result."""
    if session.get_bind().dialect.name == "sqlite":
        session.exec(
            update(Organization)
            .where(col(Organization.id) == organization_id)
            .values(slug=col(Organization.slug))
        )
    else:
        session.exec(
            select(Organization.id).where(col(Organization.id) == organization_id).with_for_update()
        )


def _managers(session: Session, organization_id: uuid.UUID) -> set[uuid.UUID]:
    """The members whose roles there hold org:members:manage."""
    rows = session.exec(
        select(Membership.user_id)
        .join(MembershipRole, col(MembershipRole.membership_id) == col(Membership.id))
        .join(RolePermission, col(RolePermission.role_id) == col(MembershipRole.role_id))
        .where(
            col(Membership.organization_id) == organization_id,
            col(RolePermission.resource_id) == BUILTIN_RESOURCE_ID,
            col(RolePermission.name) == OrgPermission.MEMBERS_MANAGE.value,
        )
        .distinct()
    ).all()
    return set(rows)


def _grants_manage(session: Session, role_ids: Sequence[uuid.UUID]) -> bool:
    return (
        bool(role_ids)
        and session.exec(
            select(RolePermission.role_id).where(
                col(RolePermission.role_id).in_(role_ids),
                col(RolePermission.resource_id) == BUILTIN_RESOURCE_ID,
                col(RolePermission.name) == OrgPermission.MEMBERS_MANAGE.value,
            )
        ).first()
        is not None
    )


def _ensure_not_last_manager(
    session: Session, organization_id: uuid.UUID, *, user_id: uuid.UUID, actor: Actor, keeps: bool
) -> None:
    """The last member holding org:members:manage cannot take it from themselves (409)."""
    if actor.user_id != user_id or keeps:
        return
    if _managers(session, organization_id) == {user_id}:
        raise Conflict(N_("You are the last member who manages this organization's members"))


def set_member(
    session: Session,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    roles: list[RoleRef],
    actor: Actor,
) -> MemberRead:
    """Add the user as a member with these roles, or replace a member's roles there."""
    lock(session, organization_id)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    row = membership(session, organization_id, user_id)
    role_ids = [role.id for role in roles]
    _ensure_not_last_manager(
        session,
        organization_id,
        user_id=user_id,
        actor=actor,
        keeps=_grants_manage(session, role_ids),
    )
    if row is None:
        row = Membership(organization_id=organization_id, user_id=user_id)
        session.add(row)
        session.flush()
        before: list[str] | None = None
    else:
        before = [role.name for role in _roles_of(session, [row.id])[row.id]]
        session.exec(delete(MembershipRole).where(col(MembershipRole.membership_id) == row.id))
    session.add_all(MembershipRole(membership_id=row.id, role_id=role_id) for role_id in role_ids)
    audit.record(
        session,
        "org.member_added" if before is None else "org.member_updated",
        actor=actor,
        subject_id=user_id,
        organization_id=str(organization_id),
        **({} if before is None else {"before": before}),
        roles=[role.name for role in roles],
    )
    return MemberRead(user_id=user.id, email=user.email, full_name=user.full_name, roles=roles)


def remove_member(
    session: Session, *, organization_id: uuid.UUID, user_id: uuid.UUID, actor: Actor
) -> None:
    lock(session, organization_id)
    row = membership(session, organization_id, user_id)
    if row is None:
        raise NotFound(N_("Not a member"))
    _ensure_not_last_manager(session, organization_id, user_id=user_id, actor=actor, keeps=False)
    audit.record(
        session,
        "org.member_removed",
        actor=actor,
        subject_id=user_id,
        organization_id=str(organization_id),
    )
    session.exec(delete(MembershipRole).where(col(MembershipRole.membership_id) == row.id))
    session.delete(row)
    sessions.revoke_organization(session, organization_id, user_ids=[user_id])


# Delegated administration


@dataclass(frozen=True, slots=True)
class Delegate:
    """Who acts on an organization: an admin (`authz:manage`), or a user acting as a member."""

    user_id: uuid.UUID
    admin: bool


def access(
    session: Session, *, ref: str, delegate: Delegate, permission: OrgPermission | None
) -> Organization:
    """The organization, if `delegate` may act on it: an admin always; else a member whose
    roles there hold `permission` (None: any member). Others get 403."""
    organization = get(session, ref)
    if delegate.admin:
        return organization
    if is_member(session, organization.id, delegate.user_id) and (
        permission is None
        or (BUILTIN_RESOURCE_ID, permission.value)
        in authz.user_grants(session, user_id=delegate.user_id, organization_id=organization.id)
    ):
        return organization
    raise Forbidden()


def put_member(
    session: Session,
    *,
    ref: str,
    user_id: uuid.UUID,
    role_ids: list[uuid.UUID],
    delegate: Delegate,
    actor: Actor,
) -> MemberRead:
    """PUT a member: an admin, or a member holding org:members:manage who grants only what
    they hold themselves."""
    organization = access(
        session, ref=ref, delegate=delegate, permission=OrgPermission.MEMBERS_MANAGE
    )
    roles = authz.role_refs(session, role_ids)
    if not delegate.admin:
        ensure_may_grant(
            session, user_id=delegate.user_id, organization_id=organization.id, role_ids=role_ids
        )
    return set_member(
        session, organization_id=organization.id, user_id=user_id, roles=roles, actor=actor
    )


def delete_member(
    session: Session, *, ref: str, user_id: uuid.UUID, delegate: Delegate, actor: Actor
) -> None:
    organization = access(
        session, ref=ref, delegate=delegate, permission=OrgPermission.MEMBERS_MANAGE
    )
    remove_member(session, organization_id=organization.id, user_id=user_id, actor=actor)


def members_of(
    session: Session, *, ref: str, delegate: Delegate, limit: int, after: PageCursor | None
) -> CursorPage[MemberRead]:
    organization = access(
        session, ref=ref, delegate=delegate, permission=OrgPermission.MEMBERS_READ
    )
    return members_page(session, organization_id=organization.id, limit=limit, after=after)


def read_as(session: Session, *, ref: str, delegate: Delegate) -> OrganizationRead:
    return _read(access(session, ref=ref, delegate=delegate, permission=None))


def _lacking(
    session: Session,
    *,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    role_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, set[str]]:
    """For each of the roles, the permissions in it that the user does not hold there."""
    if not role_ids:
        return {}
    wanted = session.exec(
        select(RolePermission.role_id, RolePermission.resource_id, RolePermission.name).where(
            col(RolePermission.role_id).in_(role_ids)
        )
    ).all()
    held = authz.user_grants(session, user_id=user_id, organization_id=organization_id)
    lacking: dict[uuid.UUID, set[str]] = {}
    for role_id, resource_id, name in wanted:
        if (resource_id, name) not in held:
            lacking.setdefault(role_id, set()).add(name)
    return lacking


def ensure_may_grant(
    session: Session,
    *,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    role_ids: Sequence[uuid.UUID],
) -> None:
    """A member (not an admin) grants only roles whose every permission they hold themselves
    in that organization (403 naming one they lack)."""
    lacking = _lacking(session, user_id=user_id, organization_id=organization_id, role_ids=role_ids)
    if lacking:
        name = sorted(set().union(*lacking.values()))[0]
        raise Forbidden(f"You cannot grant a role holding {name}, which you do not hold")


def grantable(
    session: Session,
    *,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    role_ids: Sequence[uuid.UUID],
) -> set[uuid.UUID]:
    """Those of the roles that the member may grant there (ensure_may_grant's rule)."""
    lacking = _lacking(session, user_id=user_id, organization_id=organization_id, role_ids=role_ids)
    return {role_id for role_id in role_ids if role_id not in lacking}


def delegated(
    session: Session, *, user_id: uuid.UUID, organization_id: uuid.UUID
) -> set[OrgPermission]:
    """The organization permissions the user holds there as a member (none: not a member)."""
    if not is_member(session, organization_id, user_id):
        return set()
    grants = authz.user_grants(session, user_id=user_id, organization_id=organization_id)
    return {
        permission for permission in OrgPermission if (BUILTIN_RESOURCE_ID, permission) in grants
    }


def _holds_delegated(user_id: uuid.UUID) -> Any:
    """A condition on Membership: the user's roles in it, or their global roles, hold an
    organization permission (what `access` asks, for every organization at once)."""
    delegated_permission = and_(
        col(RolePermission.resource_id) == BUILTIN_RESOURCE_ID,
        col(RolePermission.name).in_([str(permission) for permission in OrgPermission]),
    )
    in_membership = (
        exists()
        .where(col(MembershipRole.membership_id) == col(Membership.id))
        .where(col(RolePermission.role_id) == col(MembershipRole.role_id), delegated_permission)
    )
    global_role = (
        exists()
        .where(col(UserRole.user_id) == user_id)
        .where(col(RolePermission.role_id) == col(UserRole.role_id), delegated_permission)
    )
    return or_(in_membership, global_role)


def administered_page(
    session: Session, *, user_id: uuid.UUID, limit: int, after: PageCursor | None
) -> CursorPage[OrganizationRead]:
    """The organizations the user may administer as a member (delegated administration)."""
    rows, total, next_cursor = keyset_page(
        session,
        Membership,
        col(Membership.user_id) == user_id,
        _holds_delegated(user_id),
        limit=limit,
        after=after,
    )
    found = {
        org.id: org
        for org in session.exec(
            select(Organization).where(
                col(Organization.id).in_([row.organization_id for row in rows])
            )
        ).all()
    }
    return CursorPage(
        items=[_read(found[row.organization_id]) for row in rows],
        total=total,
        skip=0,
        limit=limit,
        next_cursor=next_cursor,
    )
