"""Everything the service holds about a person, as one JSON document (the hosted
/account/export): the profile, product roles, organizations, pending invitations, every
session (live or ended), consents, passkeys' metadata, mailed links and challenges, and the
audit events about the person or by them.

Nothing secret goes in: no password hash, TOTP secret, recovery code, token, or digest of
one (a session's refresh jti, a link's or an invitation's digest), no passkey key. Each part
is written field by field from the rows, so a column added later is left out until someone
decides it belongs here. An event another person caused (an admin's change) keeps its
actor's id but not that person's address or browser."""

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from app.crud import audit, authz, clients, mfa, organizations
from app.crud import passkeys as passkey_rows
from app.crud.audit import Actor
from app.models.action_token import ActionToken
from app.models.audit import AuditEvent
from app.models.common import PageCursor, utcnow
from app.models.organization import Invitation, Organization
from app.models.session import AuthSession
from app.models.user import User

FORMAT = "account-export/1"
PAGE = 100


def _at(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def account_export(session: Session, *, user_id: uuid.UUID, actor: Actor) -> dict[str, Any] | None:
    """The document for `user_id`, and its audit event (user.exported); None if there is no
    such user (any more)."""
    user = session.get(User, user_id, populate_existing=True)
    if user is None:
        return None
    document = {
        "format": FORMAT,
        "exported_at": _at(utcnow()),
        "profile": _profile(session, user),
        "roles": [role.model_dump(mode="json") for role in authz.user_roles(session, user.id)],
        "organizations": _organizations(session, user.id),
        "invitations": _invitations(session, user.email),
        "sessions": _sessions(session, user.id),
        "consents": _consents(session, user.id),
        "passkeys": _passkeys(session, user.id),
        "mailed_links_and_challenges": _links(session, user.id),
        "audit_events": _events(session, user.id),
    }
    audit.record(session, "user.exported", actor=actor, subject_id=user.id)
    return document


def _profile(session: Session, user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "full_name": user.full_name,
        "pending_email": user.pending_email,
        "role": user.role.value,
        "is_active": user.is_active,
        "is_verified": user.is_verified,
        "mfa_enabled": user.mfa_enabled,
        "recovery_codes_left": mfa.recovery_codes_left(session, user_id=user.id),
        "created_at": _at(user.created_at),
        "updated_at": _at(user.updated_at),
    }


def _organizations(session: Session, user_id: uuid.UUID) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after: PageCursor | None = None
    while True:
        page = organizations.my_organizations(session, user_id=user_id, limit=PAGE, after=after)
        found += [item.model_dump(mode="json") for item in page.items]
        if page.next_cursor is None:
            return found
        after = PageCursor.decode(page.next_cursor)


def _invitations(session: Session, email: str) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Invitation, Organization)
        .join(Organization, col(Organization.id) == col(Invitation.organization_id))
        .where(col(Invitation.email) == email)
        .order_by(col(Invitation.created_at))
    ).all()
    return [
        {
            "id": str(invitation.id),
            "organization": {"id": str(org.id), "name": org.name, "slug": org.slug},
            "email": invitation.email,
            "created_at": _at(invitation.created_at),
            "expires_at": _at(invitation.expires_at),
        }
        for invitation, org in rows
    ]


def _sessions(session: Session, user_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = session.exec(
        select(AuthSession)
        .where(col(AuthSession.user_id) == user_id)
        .order_by(col(AuthSession.created_at))
    ).all()
    names = clients.names(session, {row.client_id for row in rows if row.client_id})
    return [
        {
            "id": str(row.id),
            "kind": row.kind.value,
            "client_id": row.client_id,
            "client_name": names.get(row.client_id) if row.client_id else None,
            "scope": row.scope,
            "resource": row.resource,
            "organization_id": str(row.organization_id) if row.organization_id else None,
            "created_at": _at(row.created_at),
            "last_used_at": _at(row.last_used_at),
            "auth_time": _at(row.auth_time),
            "amr": row.amr,
            "expires_at": _at(row.expires_at),
            "revoked_at": _at(row.revoked_at),
            "ip": row.ip,
            "user_agent": row.user_agent,
        }
        for row in rows
    ]


def _consents(session: Session, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {
            "client_id": consent.client_id,
            "client_name": consent.name,
            "scopes": consent.scopes,
            "granted_at": _at(consent.granted_at),
            "updated_at": _at(consent.updated_at),
        }
        for consent in clients.consents_of(session, user_id)
    ]


def _passkeys(session: Session, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {
            "id": str(key.id),
            "name": key.name,
            "authenticator_aaguid": key.aaguid,
            "transports": list(key.transports),
            "created_at": _at(key.created_at),
            "last_used_at": _at(key.last_used_at),
        }
        for key in passkey_rows.of_user(session, user_id)
    ]


def _links(session: Session, user_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = session.exec(
        select(ActionToken)
        .where(col(ActionToken.user_id) == user_id)
        .order_by(col(ActionToken.created_at))
    ).all()
    return [
        {
            "purpose": row.purpose.value,
            "email": row.email,
            "created_at": _at(row.created_at),
            "expires_at": _at(row.expires_at),
            "used_at": _at(row.used_at),
        }
        for row in rows
    ]


def _events(session: Session, user_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = session.exec(
        select(AuditEvent)
        .where(or_(col(AuditEvent.subject_id) == user_id, col(AuditEvent.actor_id) == user_id))
        .order_by(col(AuditEvent.id))
    ).all()
    return [
        {
            "id": row.id,
            "at": _at(row.at),
            "event": row.event,
            "actor_id": str(row.actor_id) if row.actor_id else None,
            "subject_id": str(row.subject_id) if row.subject_id else None,
            # another person's address and browser are theirs, not this person's
            **(
                {"ip": row.ip, "user_agent": row.user_agent}
                if row.actor_id in (None, user_id)
                else {}
            ),
            "detail": row.detail,
        }
        for row in rows
    ]
