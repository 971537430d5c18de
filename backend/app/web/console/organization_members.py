"""The forms of an organization's console page: add or update a member by email, remove one,
invite an address (mailed once committed), revoke an invitation, each through the steps of
crud/organizations.py and crud/invitations.py, as an admin or as a delegated member."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import Response

from app.api.deps import SessionDep
from app.auth import mails
from app.core import mail
from app.core.permissions import OrgPermission
from app.crud import invitations, organizations, users
from app.crud.audit import Actor
from app.crud.organizations import Delegate
from app.db import transaction
from app.errors import NotFound
from app.models.organization import (
    INVITATION_DAYS,
    InvitationCreate,
    MemberRead,
)
from app.web.console.access import (
    AnyRolePostDep,
)
from app.web.console.authz_forms import (
    Refusal,
    attempt,
    role_ids,
)
from app.web.console.organization_view import acting_on, detail, done

router = APIRouter(prefix="/admin")

MAX_EMAIL = 320
LABELS = {"email": "Email", "roles": "Roles"}


@router.post("/organizations/{ref}/members")
def put_member(
    request: Request,
    session: SessionDep,
    console: AnyRolePostDep,
    ref: str,
    email: Annotated[str, Form()] = "",
    role: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Add the user with this email as a member with the checked roles, or replace a
    member's roles there."""
    viewing = acting_on(request, session, console, ref, OrgPermission.MEMBERS_MANAGE)
    form = {"email": email[:MAX_EMAIL], "roles": set(role or [])}
    saved = attempt(
        lambda: transaction(
            _put_by_email,
            session,
            ref=str(viewing.organization.id),
            email=email.strip()[:MAX_EMAIL],
            role_ids=role_ids(role),
            delegate=viewing.delegate,
            actor=console.actor(request),
        ),
        LABELS,
        "Member",
    )
    if isinstance(saved, Refusal):
        return detail(
            request,
            session,
            console,
            viewing,
            alert=saved.alert,
            member_form=form,
            status_code=saved.status_code,
        )
    return done(viewing, "member")


def _put_by_email(
    session: Session,
    *,
    ref: str,
    email: str,
    role_ids: list[uuid.UUID],
    delegate: Delegate,
    actor: Actor,
) -> MemberRead:
    person = users.get_user_by_email(session, email)
    if person is None:
        raise NotFound("No user has this email address: invite them instead.")
    return organizations.put_member(
        session, ref=ref, user_id=person.id, role_ids=role_ids, delegate=delegate, actor=actor
    )


def _id(raw: str) -> uuid.UUID:
    """A member's or an invitation's id from the path; a forged one is not found."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None


@router.post("/organizations/{ref}/members/{user_id}/remove")
def remove_member(
    request: Request, session: SessionDep, console: AnyRolePostDep, ref: str, user_id: str
) -> Response:
    viewing = acting_on(request, session, console, ref, OrgPermission.MEMBERS_MANAGE)

    def remove() -> None:
        transaction(
            organizations.delete_member,
            session,
            ref=str(viewing.organization.id),
            user_id=_id(user_id),
            delegate=viewing.delegate,
            actor=console.actor(request),
        )

    removed = attempt(remove, LABELS, "Member")
    if isinstance(removed, Refusal):
        gone = removed.status_code == 404
        alert = "Not a member (removed already?)." if gone else removed.alert
        return detail(
            request, session, console, viewing, alert=alert, status_code=removed.status_code
        )
    return done(viewing, "removed")


@router.post("/organizations/{ref}/invitations")
def invite(
    request: Request,
    session: SessionDep,
    console: AnyRolePostDep,
    ref: str,
    email: Annotated[str, Form()] = "",
    role: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Invite an address with the checked roles; the link is mailed once committed."""
    viewing = acting_on(request, session, console, ref, OrgPermission.INVITATIONS_MANAGE)
    form = {"email": email[:MAX_EMAIL], "roles": set(role or [])}

    def send() -> tuple[str, invitations.Sent]:
        body = InvitationCreate.model_validate(
            {"email": email.strip()[:MAX_EMAIL], "roles": role_ids(role)}
        )
        sent = transaction(
            invitations.invite,
            session,
            ref=str(viewing.organization.id),
            body=body,
            delegate=viewing.delegate,
            actor=console.actor(request),
        )
        return body.email, sent

    outcome = attempt(send, LABELS, "Invitation")
    if isinstance(outcome, Refusal):
        return detail(
            request,
            session,
            console,
            viewing,
            alert=outcome.alert,
            invite_form=form,
            status_code=outcome.status_code,
        )
    address, sent = outcome
    mail.send(  # in the browser's language (the console itself stays English)
        mails.invitation(
            address,
            sent.token,
            organization=sent.organization,
            days=INVITATION_DAYS,
            locale=mails.mail_locale(console.actor(request).language),
        )
    )
    return done(viewing, "invited")


@router.post("/organizations/{ref}/invitations/{invitation_id}/revoke")
def revoke_invitation(
    request: Request, session: SessionDep, console: AnyRolePostDep, ref: str, invitation_id: str
) -> Response:
    viewing = acting_on(request, session, console, ref, OrgPermission.INVITATIONS_MANAGE)

    def revoke() -> None:
        transaction(
            invitations.revoke,
            session,
            ref=str(viewing.organization.id),
            invitation_id=_id(invitation_id),
            delegate=viewing.delegate,
            actor=console.actor(request),
        )

    revoked = attempt(revoke, LABELS, "Invitation")
    if isinstance(revoked, Refusal):
        alert = "This invitation is no longer pending."
        return detail(request, session, console, viewing, alert=alert, status_code=404)
    return done(viewing, "revoked")
