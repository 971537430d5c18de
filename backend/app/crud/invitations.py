"""Invitations to an organization (AUTHZ.md): mailed single-use links, accepted only by a
signed-in user whose verified address is the invited one. Steps run by db.transaction; the
caller mails the link once the invitation is committed."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.core.i18n import N_
from app.core.permissions import OrgPermission
from app.core.security import token_digest
from app.crud import audit, authz, organizations
from app.crud.audit import Actor
from app.crud.organizations import Delegate
from app.crud.pages import keyset_page
from app.errors import BadToken, Forbidden, NotFound
from app.models.authz import ProductRole, RoleRef
from app.models.common import CursorPage, PageCursor, utcnow
from app.models.organization import (
    INVITATION_DAYS,
    Accepted,
    Invitation,
    InvitationCreate,
    InvitationRead,
    MembershipRole,
)
from app.models.user import User

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Sent:
    """A new invitation and what its mail needs: the link's token is in no answer and no log."""

    invitation: InvitationRead
    token: str
    organization: str


def _roles(session: Session, role_ids: list[str]) -> list[RoleRef]:
    """The invitation's roles that still exist (a role deleted since is left out)."""
    if not role_ids:
        return []
    ids = [uuid.UUID(role_id) for role_id in role_ids]
    rows = session.exec(
        select(ProductRole.id, ProductRole.name)
        .where(col(ProductRole.id).in_(ids))
        .order_by(col(ProductRole.name))
    ).all()
    return [RoleRef(id=role_id, name=name) for role_id, name in rows]


def _read(session: Session, invitation: Invitation) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        email=invitation.email,
        roles=_roles(session, invitation.role_ids),
        expires_at=invitation.expires_at,
        inviter=invitation.inviter_id,
    )


def invite(
    session: Session, *, ref: str, body: InvitationCreate, delegate: Delegate, actor: Actor
) -> Sent:
    """Invite an address with roles (a member grants only what they hold); an invitation to
    the same address before it is replaced, and its link stops working."""
    organization = organizations.access(
        session, ref=ref, delegate=delegate, permission=OrgPermission.INVITATIONS_MANAGE
    )
    roles = authz.role_refs(session, body.roles)
    if not delegate.admin:
        organizations.ensure_may_grant(
            session,
            user_id=delegate.user_id,
            organization_id=organization.id,
            role_ids=body.roles,
        )
    session.exec(
        delete(Invitation).where(
            col(Invitation.organization_id) == organization.id, col(Invitation.email) == body.email
        )
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation(
        organization_id=organization.id,
        email=body.email,
        role_ids=[str(role.id) for role in roles],
        token_digest=token_digest(token),
        inviter_id=delegate.user_id,
        expires_at=utcnow() + timedelta(days=INVITATION_DAYS),
    )
    session.add(invitation)
    session.flush()
    audit.record(
        session,
        "org.invitation_sent",
        actor=actor,
        organization_id=str(organization.id),
        invitation_id=str(invitation.id),
        roles=[role.name for role in roles],
    )
    return Sent(invitation=_read(session, invitation), token=token, organization=organization.name)


def pending(
    session: Session, *, ref: str, delegate: Delegate, limit: int, after: PageCursor | None
) -> CursorPage[InvitationRead]:
    organization = organizations.access(
        session, ref=ref, delegate=delegate, permission=OrgPermission.INVITATIONS_MANAGE
    )
    rows, total, next_cursor = keyset_page(
        session,
        Invitation,
        col(Invitation.organization_id) == organization.id,
        limit=limit,
        after=after,
    )
    return CursorPage(
        items=[_read(session, row) for row in rows],
        total=total,
        skip=0,
        limit=limit,
        next_cursor=next_cursor,
    )


def revoke(
    session: Session, *, ref: str, invitation_id: uuid.UUID, delegate: Delegate, actor: Actor
) -> None:
    organization = organizations.access(
        session, ref=ref, delegate=delegate, permission=OrgPermission.INVITATIONS_MANAGE
    )
    removed = session.exec(
        delete(Invitation).where(
            col(Invitation.id) == invitation_id,
            col(Invitation.organization_id) == organization.id,
        )
    )
    if removed.rowcount != 1:
        raise NotFound(N_("Invitation not found"))
    audit.record(
        session,
        "org.invitation_revoked",
        actor=actor,
        organization_id=str(organization.id),
        invitation_id=str(invitation_id),
    )


@dataclass(frozen=True, slots=True)
class Invited:
    """A live invitation as its link's page shows it."""

    organization: str
    slug: str
    email: str
    roles: list[RoleRef]


def _live(session: Session, token: str) -> Invitation | None:
    invitation = session.exec(
        select(Invitation).where(col(Invitation.token_digest) == token_digest(token))
    ).first()
    if invitation is None or invitation.expires_at <= utcnow():
        return None
    return invitation


def by_link(session: Session, *, token: str) -> Invited | None:
    """The live invitation a link's token names, read and never spent (the link's GET); None
    when it was accepted, revoked, replaced, has expired or never was."""
    invitation = _live(session, token)
    if invitation is None:
        return None
    organization = organizations.get(session, str(invitation.organization_id))
    return Invited(
        organization=organization.name,
        slug=organization.slug,
        email=invitation.email,
        roles=_roles(session, invitation.role_ids),
    )


def accept(session: Session, *, token: str, user_id: uuid.UUID, actor: Actor) -> Accepted:
    """Accept an invitation as the signed-in user: their verified address must be the invited
    one (403, the link stays usable); a spent, revoked, replaced or expired link is 400. The
    invitation is deleted in the same statement that checks it is there, so two accepts at
    once make one membership."""
    invitation = _live(session, token)
    if invitation is None:
        raise BadToken("This invitation is no longer valid")
    user = session.get(User, user_id)
    if user is None or user.email != invitation.email or not user.is_verified:
        raise Forbidden(N_("This invitation is for another (verified) email address"))
    organizations.lock(session, invitation.organization_id)
    spent = session.exec(delete(Invitation).where(col(Invitation.id) == invitation.id))
    if spent.rowcount != 1:
        raise BadToken("This invitation is no longer valid")
    invited = _roles(session, invitation.role_ids)
    membership = organizations.membership(session, invitation.organization_id, user.id)
    role_ids = [role.id for role in invited]
    if membership is not None:  # a member already: the invited roles are added to theirs
        held = session.exec(
            select(MembershipRole.role_id).where(col(MembershipRole.membership_id) == membership.id)
        ).all()
        role_ids = list(dict.fromkeys([*held, *role_ids]))
    member = organizations.set_member(
        session,
        organization_id=invitation.organization_id,
        user_id=user.id,
        roles=authz.role_refs(session, role_ids),
        actor=actor,
    )
    audit.record(
        session,
        "org.invitation_accepted",
        actor=actor,
        subject_id=user.id,
        organization_id=str(invitation.organization_id),
        invitation_id=str(invitation.id),
    )
    return Accepted(
        organization=organizations.read(session, str(invitation.organization_id)),
        roles=member.roles,
    )
